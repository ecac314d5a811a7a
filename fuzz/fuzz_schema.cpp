// A queue's JSON Schema as a tenant sends it, then one payload checked against it: the
// input is "<schema JSON>\n<payload>". Hostile schemas ($ref loops, std::regex patterns)
// are being bounded by the schema loader (issue 11, item 7); smoke-test only until then.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mq/core/json.hpp"
#include "mq/error.hpp"
#include "mq/queue/payload_schema.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 64 * 1024) return 0;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto nl = text.find('\n');
    std::string_view schema_text = text.substr(0, nl);
    std::string_view payload = nl == std::string_view::npos ? "{}" : text.substr(nl + 1);
    try {
        nlohmann::json schema = mq::parse_json(schema_text, "schema");
        mq::validate_payload_schema(schema);
        mq::PayloadSchema compiled(schema);
        compiled.check(payload);
    } catch (const mq::Error&) {
    }
    return 0;
}
