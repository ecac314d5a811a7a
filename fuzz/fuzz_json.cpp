// mq::parse_json, the one parser for untrusted JSON: never deeper than its limit, never a
// crash, and what it accepts is what nlohmann accepts (same value).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mq/core/json.hpp"
#include "mq/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        nlohmann::json j = mq::parse_json(text, "fuzz", {16, 0});
        auto reference = nlohmann::json::parse(text, nullptr, false);
        if (reference.is_discarded() || reference != j) __builtin_trap();
        j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } catch (const mq::Error& e) {
        e.to_json().dump();
    }
    return 0;
}
