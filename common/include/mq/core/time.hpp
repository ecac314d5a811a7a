#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace mq {

/// Unix time in milliseconds from the system clock.
std::int64_t now_ms();

/// "250ms", "90s", "5m", "1h", "2d", or a bare number of milliseconds. Throws
/// ValidationError naming `what` on anything else, negative or overflowing values.
std::chrono::milliseconds parse_duration(std::string_view text, std::string_view what = "duration");

/// Short human form: "1h30m", "90ms", "7d".
std::string format_duration(std::chrono::milliseconds d);

/// RFC 3339 timestamp ("2026-11-21T10:00:00Z", "...T10:00:00.250+01:00") to Unix ms.
/// Throws ValidationError naming `what` when malformed.
std::int64_t parse_rfc3339(std::string_view text, std::string_view what = "time");

/// Unix ms to RFC 3339 in UTC with milliseconds.
std::string format_rfc3339(std::int64_t unix_ms);

}  // namespace mq
