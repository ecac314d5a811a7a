#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace mq {

/// A YAML document as JSON, with the line of every value, so schema errors can name
/// file:line. Keys of `lines` are JSON pointers ("/subscriptions/0/handler/url").
struct YamlDocument {
    nlohmann::json json;
    std::map<std::string, int> lines;  ///< 1-based
    std::string file;

    /// "file:line" of the value at `pointer`, or of its nearest parent that has one.
    std::string where(const std::string& pointer) const;
};

/// Reads a YAML file. Scalars become strings, numbers or booleans as YAML 1.2 core
/// would read them; `~`/empty become null. Throws ValidationError with file:line on a
/// syntax error or an unreadable file.
YamlDocument load_yaml(const std::string& path);
YamlDocument parse_yaml(const std::string& text, const std::string& name);

/// Validates `doc` against a JSON Schema (draft 7 subset, valijson). Throws
/// ValidationError naming file:line, the field and the rule for the first errors (up to
/// 10 in `details.errors`).
void validate_schema(const YamlDocument& doc, const nlohmann::json& schema);

}  // namespace mq
