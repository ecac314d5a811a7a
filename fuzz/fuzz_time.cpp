// Durations ("90s", "5m") and RFC 3339 times as flags, envelopes and YAML give them. What
// parses must be in range (durations) and survive a round trip through the formatter.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mq/core/time.hpp"
#include "mq/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        auto d = mq::parse_duration(text, "--delay");
        if (d.count() < 0) __builtin_trap();
        mq::format_duration(d);
    } catch (const mq::Error&) {
    }
    try {
        std::int64_t ms = mq::parse_rfc3339(text, "--at");
        std::string back = mq::format_rfc3339(ms);
        if (mq::parse_rfc3339(back, "--at") != ms) __builtin_trap();
    } catch (const mq::Error&) {
    }
    return 0;
}
