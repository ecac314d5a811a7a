// Cron expressions: fields, lists, ranges, steps, names, macros, the day-of-month /
// day-of-week rule, leap years, DST gaps and overlaps, and refusals with field and position.
#include "mq/schedule/cron.hpp"

#include <catch2/catch.hpp>

#include "mq/core/time.hpp"
#include "mq/error.hpp"

using Clock = std::chrono::system_clock;

namespace {

Clock::time_point at(const std::string& rfc3339) {
    return Clock::time_point(std::chrono::milliseconds(mq::parse_rfc3339(rfc3339)));
}

std::string fmt(Clock::time_point t) {
    return mq::format_rfc3339(
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

/// The next `n` fire times after `from`, as RFC 3339 UTC strings.
std::vector<std::string> fires(const std::string& expr, const std::string& tz,
                               const std::string& from, int n) {
    mq::CronSchedule c(expr, tz);
    std::vector<std::string> out;
    auto t = at(from);
    for (int i = 0; i < n; ++i) {
        auto next = c.next_after(t);
        REQUIRE(next);
        out.push_back(fmt(*next));
        t = *next;
    }
    return out;
}

using V = std::vector<std::string>;

std::string refusal(const std::string& expr, const std::string& tz = "UTC") {
    try {
        mq::CronSchedule c(expr, tz);
    } catch (const mq::ValidationError& e) {
        CHECK(e.code() == mq::ErrorCode::kValidation);
        return e.what();
    }
    FAIL("accepted: '" << expr << "' in " << tz);
    return {};
}

}  // namespace

TEST_CASE("cron_steps_ranges_and_lists", "[unit][cron]") {
    CHECK(fires("*/5 * * * *", "UTC", "2026-12-03T10:02:30Z", 3) ==
          V{"2026-12-03T10:05:00.000Z", "2026-12-03T10:10:00.000Z", "2026-12-03T10:15:00.000Z"});
    CHECK(fires("1-10/3 8 * * *", "UTC", "2026-12-03T08:00:00Z", 5) ==
          V{"2026-12-03T08:01:00.000Z", "2026-12-03T08:04:00.000Z", "2026-12-03T08:07:00.000Z",
            "2026-12-03T08:10:00.000Z", "2026-12-04T08:01:00.000Z"});
    CHECK(fires("0,30 9,17 * * *", "UTC", "2026-12-03T09:00:00Z", 4) ==
          V{"2026-12-03T09:30:00.000Z", "2026-12-03T17:00:00.000Z", "2026-12-03T17:30:00.000Z",
            "2026-12-04T09:00:00.000Z"});
    // "a/n" runs from a to the end of the field.
    CHECK(fires("50/5 23 * * *", "UTC", "2026-12-03T00:00:00Z", 3) ==
          V{"2026-12-03T23:50:00.000Z", "2026-12-03T23:55:00.000Z", "2026-12-04T23:50:00.000Z"});
    // Exactly on a fire time: the next one, strictly after.
    CHECK(fires("0 * * * *", "UTC", "2026-12-03T10:00:00Z", 1) == V{"2026-12-03T11:00:00.000Z"});
    // Blanks around and between fields are fine.
    CHECK(fires("  0   12 * * *\t", "UTC", "2026-12-03T00:00:00Z", 1) ==
          V{"2026-12-03T12:00:00.000Z"});
}

TEST_CASE("cron_month_and_weekday_names_any_case_and_sunday_as_7", "[unit][cron]") {
    // 2026-12-03 is a Thursday.
    CHECK(fires("0 9 * JAN-mar Mon-FRI", "UTC", "2026-12-03T00:00:00Z", 2) ==
          V{"2027-01-01T09:00:00.000Z", "2027-01-04T09:00:00.000Z"});
    CHECK(fires("0 0 * * 7", "UTC", "2026-12-03T00:00:00Z", 1) ==
          fires("0 0 * * sun", "UTC", "2026-12-03T00:00:00Z", 1));
    CHECK(fires("0 0 * * 0", "UTC", "2026-12-03T00:00:00Z", 1) == V{"2026-12-06T00:00:00.000Z"});
    CHECK(fires("0 0 * * 5-7", "UTC", "2026-12-03T00:00:00Z", 3) ==
          V{"2026-12-04T00:00:00.000Z", "2026-12-05T00:00:00.000Z", "2026-12-06T00:00:00.000Z"});
}

TEST_CASE("cron_day_of_month_or_day_of_week_when_both_restricted", "[unit][cron]") {
    // Both restricted: the 13th OR a Friday.
    CHECK(fires("0 0 13 * fri", "UTC", "2026-12-03T00:00:00Z", 4) ==
          V{"2026-12-04T00:00:00.000Z", "2026-12-11T00:00:00.000Z", "2026-12-13T00:00:00.000Z",
            "2026-12-18T00:00:00.000Z"});
    // One is '*': the other decides.
    CHECK(fires("0 0 13 * *", "UTC", "2026-12-03T00:00:00Z", 1) == V{"2026-12-13T00:00:00.000Z"});
    CHECK(fires("0 0 * * fri", "UTC", "2026-12-03T00:00:00Z", 1) == V{"2026-12-04T00:00:00.000Z"});
    // A field starting with '*' counts as unrestricted, so both must match: odd-day Fridays.
    CHECK(fires("0 0 */2 * fri", "UTC", "2026-12-03T00:00:00Z", 2) ==
          V{"2026-12-11T00:00:00.000Z", "2026-12-25T00:00:00.000Z"});
}

TEST_CASE("cron_macros", "[unit][cron]") {
    const std::string from = "2026-12-03T10:20:00Z";
    CHECK(fires("@hourly", "UTC", from, 1) == V{"2026-12-03T11:00:00.000Z"});
    CHECK(fires("@daily", "UTC", from, 1) == V{"2026-12-04T00:00:00.000Z"});
    CHECK(fires("@midnight", "UTC", from, 1) == V{"2026-12-04T00:00:00.000Z"});
    CHECK(fires("@weekly", "UTC", from, 1) == V{"2026-12-06T00:00:00.000Z"});
    CHECK(fires("@monthly", "UTC", from, 1) == V{"2027-01-01T00:00:00.000Z"});
    CHECK(fires("@yearly", "UTC", from, 1) == V{"2027-01-01T00:00:00.000Z"});
    CHECK(fires("@annually", "UTC", from, 2) ==
          V{"2027-01-01T00:00:00.000Z", "2028-01-01T00:00:00.000Z"});
    CHECK(fires("@daily", "Europe/Berlin", from, 1) == V{"2026-12-03T23:00:00.000Z"});
}

TEST_CASE("cron_leap_years_and_month_ends", "[unit][cron]") {
    CHECK(fires("0 0 29 2 *", "UTC", "2026-12-03T00:00:00Z", 2) ==
          V{"2028-02-29T00:00:00.000Z", "2032-02-29T00:00:00.000Z"});
    // 2100 is not a leap year: eight years between two Feb 29ths.
    CHECK(fires("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", 1) == V{"2104-02-29T00:00:00.000Z"});
    CHECK(fires("0 0 31 * *", "UTC", "2027-01-31T12:00:00Z", 2) ==
          V{"2027-03-31T00:00:00.000Z", "2027-05-31T00:00:00.000Z"});
}

TEST_CASE("cron_dst_gap_fires_once_at_the_end_of_the_gap_berlin", "[unit][cron][dst]") {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist.
    CHECK(fires("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2) ==
          V{"2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"});
    // Every skipped minute of the gap maps to the same instant: it fires once.
    CHECK(fires("*/15 2 * * *", "Europe/Berlin", "2026-03-28T23:00:00Z", 2) ==
          V{"2026-03-29T01:00:00.000Z", "2026-03-30T00:00:00.000Z"});
    // A job at 03:00 and one in the gap do not fire twice at 03:00.
    CHECK(fires("30 2,3 * * *", "Europe/Berlin", "2026-03-28T23:00:00Z", 3) ==
          V{"2026-03-29T01:00:00.000Z", "2026-03-29T01:30:00.000Z", "2026-03-30T00:30:00.000Z"});
}

TEST_CASE("cron_dst_repeated_hour_fires_once_berlin", "[unit][cron][dst]") {
    // 2026-10-25: 03:00 CEST goes back to 02:00 CET (01:00 UTC); 02:30 happens twice.
    CHECK(fires("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2) ==
          V{"2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"});
    // Hourly across the overlap: 02:00 CEST, then 03:00 CET, not 02:00 CET again.
    CHECK(fires("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 3) ==
          V{"2026-10-25T00:00:00.000Z", "2026-10-25T02:00:00.000Z", "2026-10-25T03:00:00.000Z"});
    // Asked from inside the second pass, nothing of the repeated hour fires again.
    CHECK(fires("30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", 1) ==
          V{"2026-10-26T01:30:00.000Z"});
}

TEST_CASE("cron_dst_new_york_gap_and_overlap", "[unit][cron][dst]") {
    // 2026-03-08: 02:00 EST -> 03:00 EDT (07:00 UTC).
    CHECK(fires("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2) ==
          V{"2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"});
    // 2026-11-01: 02:00 EDT -> 01:00 EST (06:00 UTC); 01:30 fires once, in EDT.
    CHECK(fires("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2) ==
          V{"2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"});
    // A job at 09:00 local stays at 09:00 local on both sides.
    CHECK(fires("0 9 * * *", "America/New_York", "2026-10-31T00:00:00Z", 2) ==
          V{"2026-10-31T13:00:00.000Z", "2026-11-01T14:00:00.000Z"});
}

TEST_CASE("cron_refuses_bad_expressions_naming_field_and_position", "[unit][cron]") {
    CHECK_THAT(refusal(""), Catch::Contains("empty"));
    CHECK_THAT(refusal("* * * *"), Catch::Contains("expected 5 fields"));
    CHECK_THAT(refusal("* * * * * *"), Catch::Contains("got 6"));
    CHECK_THAT(refusal("60 * * * *"), Catch::Contains("minute field at position 1") &&
                                          Catch::Contains("out of range 0-59"));
    CHECK_THAT(refusal("0 24 * * *"), Catch::Contains("hour field at position 3"));
    CHECK_THAT(refusal("0 0 0 * *"), Catch::Contains("day-of-month field at position 5"));
    CHECK_THAT(refusal("0 0 * 13 *"), Catch::Contains("month field at position 7"));
    CHECK_THAT(refusal("0 0 * * 8"), Catch::Contains("day-of-week field at position 9"));
    CHECK_THAT(refusal("*/0 * * * *"), Catch::Contains("step"));
    CHECK_THAT(refusal("*/x * * * *"), Catch::Contains("not a number"));
    CHECK_THAT(refusal("5-1 * * * *"), Catch::Contains("backwards"));
    CHECK_THAT(refusal("1,,2 * * * *"),
               Catch::Contains("empty list item") && Catch::Contains("position 3"));
    CHECK_THAT(refusal("0 0 * foo *"), Catch::Contains("unknown name 'foo'"));
    CHECK_THAT(refusal("0 0 * * funday"), Catch::Contains("unknown name"));
    CHECK_THAT(refusal("jan * * * *"), Catch::Contains("numbers only"));
    CHECK_THAT(refusal("-1 * * * *"), Catch::Contains("minute"));
    CHECK_THAT(refusal("@reboot"), Catch::Contains("unknown macro"));
    CHECK_THAT(refusal("0 0 30 2 *"), Catch::Contains("never fires"));
    CHECK_THAT(refusal(std::string(300, '*')), Catch::Contains("too long"));
    CHECK_THAT(refusal("0 0 * * *\x01"), Catch::Contains("\\x01"));
    try {
        mq::CronSchedule("0 99 * * *");
        FAIL("accepted");
    } catch (const mq::ValidationError& e) {
        CHECK(e.details()["field"] == "cron");
        CHECK(e.details()["cron_field"] == "hour");
        CHECK(e.details()["position"] == 3);
    }
}

TEST_CASE("cron_refuses_unknown_time_zones", "[unit][cron]") {
    for (const std::string tz : {"Mars/Olympus_Mons", "Europe/Berlinn", "../../etc/passwd",
                                 "/etc/localtime", "EST5EDT "}) {
        INFO(tz);
        CHECK_THAT(refusal("* * * * *", tz), Catch::Contains("unknown time zone"));
    }
    CHECK_NOTHROW(mq::CronSchedule("* * * * *", ""));
    CHECK_NOTHROW(mq::validate_time_zone("Asia/Kolkata"));
    CHECK_THROWS_AS(mq::validate_time_zone("Nowhere"), mq::ValidationError);
    // Half-hour offsets work like any other zone.
    CHECK(fires("0 9 * * *", "Asia/Kolkata", "2026-12-03T00:00:00Z", 1) ==
          V{"2026-12-03T03:30:00.000Z"});
}
