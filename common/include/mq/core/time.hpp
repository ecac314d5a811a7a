#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace mq {

/// Unix time in milliseconds from the system clock.
std::int64_t now_ms();

/// Longest duration mq reads (100 years): no timeout, delay or retention is longer, and
/// now + kMaxDuration never overflows Unix ms.
inline constexpr std::chrono::milliseconds kMaxDuration{100LL * 365 * 86'400'000};

/// "250ms", "90s", "5m", "1h", "2d", or a bare number of milliseconds (decimal digits
/// only). Throws ValidationError naming `what` on anything else, negative values or more
/// than kMaxDuration.
std::chrono::milliseconds parse_duration(std::string_view text, std::string_view what = "duration");

/// Short human form: "1h30m", "90ms", "7d".
std::string format_duration(std::chrono::milliseconds d);

/// RFC 3339 timestamp ("2026-11-21T10:00:00Z", "...T10:00:00.250+01:00") to Unix ms.
/// Throws ValidationError naming `what` when malformed. Times before 1970 are negative;
/// callers that store a time (a delivery time) refuse them.
std::int64_t parse_rfc3339(std::string_view text, std::string_view what = "time");

/// Unix ms to RFC 3339 in UTC with milliseconds.
std::string format_rfc3339(std::int64_t unix_ms);

}  // namespace mq
