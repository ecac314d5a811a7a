// The YAML loader (worker configs, `mqctl apply` files, keyrings) on arbitrary text.
// Recursive aliases and alias bombs are being bounded in the loader (issue 11, item 7);
// until then this target finds them at once, so run it only as a smoke test.
#include <cstddef>
#include <cstdint>
#include <string>

#include "mq/config/yaml_json.hpp"
#include "mq/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 64 * 1024) return 0;
    std::string text(reinterpret_cast<const char*>(data), size);
    try {
        mq::YamlDocument doc = mq::parse_yaml(text, "fuzz.yaml");
        doc.json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        for (const auto& [pointer, line] : doc.lines) doc.where(pointer);
    } catch (const mq::Error&) {
    }
    return 0;
}
