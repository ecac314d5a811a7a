#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace mq {

/// Bounds on one YAML file. Aliases count every time they are used, so a "billion laughs"
/// file is refused before it is expanded (docs/security.md, "Untrusted schemas and YAML").
struct YamlLimits {
    std::size_t max_bytes = 1024 * 1024;  ///< the file as read
    std::size_t max_nodes = 100'000;      ///< scalars and collections, aliases expanded
    std::size_t max_depth = 64;           ///< nesting, aliases expanded
};

/// The one way mq reads YAML (worker config, mqctl apply, keyrings, settings files). Parses
/// `text` as exactly one YAML document and refuses, with ValidationError "name:line: ...":
/// a syntax error, a second document ("---"), a recursive alias (`a: &a [*a]`), and text
/// beyond `limits`. Checks with an event pass (YAML::Parser) before yaml-cpp builds nodes.
/// An empty text is a null node.
YAML::Node load_yaml_text(std::string_view text, const std::string& name,
                          const YamlLimits& limits = {});

/// Reads `path` (at most limits.max_bytes, so /dev/zero or a huge file is refused) and calls
/// load_yaml_text with the path as the name. ValidationError "cannot read <path>" when it
/// cannot be opened.
YAML::Node load_yaml_file(const std::string& path, const YamlLimits& limits = {});

}  // namespace mq
