#pragma once

#include <bitset>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace mq {

/// A standard five-field cron expression (minute hour day-of-month month day-of-week) or
/// one of @hourly, @daily (@midnight), @weekly, @monthly, @yearly (@annually), evaluated in
/// an IANA time zone. Rules (docs/schedules.md):
/// - `*`, lists `a,b`, ranges `a-b`, steps `*/n`, `a-b/n`, `a/n`; month and weekday names
///   (jan..dec, sun..sat, any case); weekday 0 and 7 are Sunday.
/// - Day of month and day of week (Vixie cron): when both are restricted (neither starts
///   with `*`) a day matches when either matches; otherwise it must match both.
/// - DST: a local time skipped by a spring-forward fires once, at the first instant after
///   the gap; a local time repeated by a fall-back fires once, at its first occurrence.
class CronSchedule {
  public:
    /// Parses `expression` in time zone `tz` ("" means UTC). Throws ValidationError naming
    /// the field and 1-based position for a bad expression, and the zone when unknown.
    CronSchedule(std::string_view expression, std::string_view tz = "UTC");

    using TimePoint = std::chrono::system_clock::time_point;

    /// The first fire time strictly after `t` (whole minutes). nullopt only for an
    /// expression that cannot fire within the search horizon (refused at parse time).
    std::optional<TimePoint> next_after(TimePoint t) const;

    const std::string& expression() const { return expression_; }
    const std::string& time_zone() const { return tz_name_; }

    struct Fields {
        std::bitset<60> minutes;
        std::bitset<24> hours;
        std::bitset<32> days;     ///< 1..31
        std::bitset<13> months;   ///< 1..12
        std::bitset<7> weekdays;  ///< 0..6, Sunday = 0
        bool day_star = false;    ///< day-of-month field starts with '*'
        bool weekday_star = false;
    };
    const Fields& fields() const { return fields_; }

  private:
    std::string expression_;
    std::string tz_name_;
    Fields fields_;
    struct Zone;
    std::shared_ptr<const Zone> zone_;
};

/// `unix_ms` as local time in `tz`: "2026-12-04 09:00:00 CET" (for operators).
std::string format_in_zone(std::int64_t unix_ms, std::string_view tz);

/// Throws ValidationError unless `tz` names a zone the system's tz database has (IANA
/// names such as "Europe/Berlin", or "UTC").
void validate_time_zone(std::string_view tz);

}  // namespace mq
