// Durations ("90s") and RFC 3339 timestamps as users type them.

#include "mq/core/time.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <ctime>
#include <string>

#include "mq/error.hpp"

using Catch::Matchers::Contains;
using std::chrono::milliseconds;

namespace {

// Unix ms of a UTC civil time, computed by the C library rather than by mq.
std::int64_t utc_ms(int year, int month, int day, int hour, int minute, int second) {
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

}  // namespace

// ---- parse_duration --------------------------------------------------------------------

TEST_CASE("parse_duration_reads_every_unit", "[time]") {
    CHECK(mq::parse_duration("250ms") == milliseconds(250));
    CHECK(mq::parse_duration("90s") == milliseconds(90'000));
    CHECK(mq::parse_duration("5m") == milliseconds(300'000));
    CHECK(mq::parse_duration("1h") == milliseconds(3'600'000));
    CHECK(mq::parse_duration("2d") == milliseconds(172'800'000));
}

TEST_CASE("parse_duration_reads_a_bare_number_as_milliseconds", "[time]") {
    CHECK(mq::parse_duration("0") == milliseconds(0));
    CHECK(mq::parse_duration("1500") == milliseconds(1500));
    CHECK(mq::parse_duration("0s") == milliseconds(0));
    CHECK(mq::parse_duration("0ms") == milliseconds(0));
}

TEST_CASE("parse_duration_accepts_up_to_100_years", "[time]") {
    CHECK(mq::parse_duration("36500d") == mq::kMaxDuration);
    CHECK(mq::parse_duration("3153600000000") == mq::kMaxDuration);
    CHECK(mq::parse_duration("876000h") == mq::kMaxDuration);
}

// Issue 11: `mqctl publish --delay 9223372036854775807ms` was accepted (exit 0).
TEST_CASE("parse_duration_refuses_more_than_100_years_naming_the_flag", "[time][security]") {
    CHECK_THROWS_WITH(mq::parse_duration("9223372036854775807ms", "--delay"),
                      Catch::Contains("--delay") && Catch::Contains("longer than 100 years"));
    CHECK_THROWS_AS(mq::parse_duration("36501d"), mq::ValidationError);
    CHECK_THROWS_AS(mq::parse_duration("3153600000001"), mq::ValidationError);
}

TEST_CASE("parse_duration_refuses_malformed_text", "[time]") {
    for (const char* text : {"", "5x", "-1s", "-1", "1.5s", "s", "ms", " 5s", "5s ", "5 s", "5S",
                             "5sec", "1h30m", "+5s", "0x10", "five"}) {
        INFO("'" << text << "'");
        CHECK_THROWS_AS(mq::parse_duration(text), mq::ValidationError);
    }
}

TEST_CASE("parse_duration_refuses_values_that_overflow", "[time]") {
    CHECK_THROWS_AS(mq::parse_duration("99999999999999999999d"), mq::ValidationError);
    CHECK_THROWS_AS(mq::parse_duration("99999999999999999999"), mq::ValidationError);
    CHECK_THROWS_AS(mq::parse_duration("9223372036854775807s"), mq::ValidationError);
    CHECK_THROWS_AS(mq::parse_duration("106751991168d"), mq::ValidationError);
}

TEST_CASE("parse_duration_error_names_the_setting_and_the_value", "[time]") {
    try {
        mq::parse_duration("5x", "visibility timeout");
        FAIL("parse_duration accepted '5x'");
    } catch (const mq::ValidationError& e) {
        CHECK_THAT(std::string(e.what()), Contains("visibility timeout"));
        CHECK_THAT(std::string(e.what()), Contains("'5x'"));
        CHECK(e.details()["field"] == "visibility timeout");
        CHECK(e.details()["value"] == "5x");
    }
    CHECK_THROWS_WITH(mq::parse_duration(""), Contains("invalid duration"));
}

// ---- format_duration -------------------------------------------------------------------

TEST_CASE("format_duration_gives_the_short_human_form", "[time]") {
    CHECK(mq::format_duration(milliseconds(0)) == "0s");
    CHECK(mq::format_duration(milliseconds(90)) == "90ms");
    CHECK(mq::format_duration(milliseconds(999)) == "999ms");
    CHECK(mq::format_duration(milliseconds(1000)) == "1s");
    CHECK(mq::format_duration(milliseconds(1500)) == "1.5s");
    CHECK(mq::format_duration(milliseconds(90'000)) == "1m30s");
    CHECK(mq::format_duration(milliseconds(300'000)) == "5m");
    CHECK(mq::format_duration(milliseconds(3'600'000)) == "1h");
    CHECK(mq::format_duration(milliseconds(5'400'000)) == "1h30m");
    CHECK(mq::format_duration(milliseconds(7 * 86'400'000LL)) == "7d");
    CHECK(mq::format_duration(milliseconds(86'400'000LL + 3'600'000 + 60'000 + 1000)) ==
          "1d1h1m1s");
}

TEST_CASE("format_duration_of_a_single_unit_parses_back", "[time]") {
    for (std::int64_t ms : {0LL, 1LL, 90LL, 999LL, 1000LL, 59'000LL, 60'000LL, 3'600'000LL,
                            86'400'000LL, 7 * 86'400'000LL}) {
        const std::string text = mq::format_duration(milliseconds(ms));
        INFO(ms << " -> " << text);
        CHECK(mq::parse_duration(text) == milliseconds(ms));
    }
}

// ---- parse_rfc3339 ---------------------------------------------------------------------

TEST_CASE("parse_rfc3339_reads_utc_to_the_exact_millisecond", "[time]") {
    const std::int64_t expected = utc_ms(2026, 11, 21, 10, 0, 0);
    REQUIRE(expected == 1'795'255'200'000);
    CHECK(mq::parse_rfc3339("2026-11-21T10:00:00Z") == expected);
    CHECK(mq::parse_rfc3339("1970-01-01T00:00:00Z") == 0);
    CHECK(mq::parse_rfc3339("2000-01-01T00:00:00Z") == utc_ms(2000, 1, 1, 0, 0, 0));
    CHECK(mq::parse_rfc3339("2024-02-29T23:59:59Z") == utc_ms(2024, 2, 29, 23, 59, 59));
    CHECK(mq::parse_rfc3339("2100-12-31T12:34:56Z") == utc_ms(2100, 12, 31, 12, 34, 56));
    CHECK(mq::parse_rfc3339("1969-12-31T23:59:59Z") == -1000);
}

TEST_CASE("parse_rfc3339_reads_fractions_to_milliseconds", "[time]") {
    const std::int64_t base = utc_ms(2026, 11, 21, 10, 0, 0);
    CHECK(mq::parse_rfc3339("2026-11-21T10:00:00.5Z") == base + 500);
    CHECK(mq::parse_rfc3339("2026-11-21T10:00:00.25Z") == base + 250);
    CHECK(mq::parse_rfc3339("2026-11-21T10:00:00.250Z") == base + 250);
    CHECK(mq::parse_rfc3339("2026-11-21T10:00:00.123456Z") == base + 123);
    CHECK(mq::parse_rfc3339("2026-11-21T10:00:00.999999999Z") == base + 999);
    CHECK(mq::parse_rfc3339("2026-11-21T10:00:00.000Z") == base);
}

TEST_CASE("parse_rfc3339_applies_the_utc_offset", "[time]") {
    const std::int64_t base = utc_ms(2026, 11, 21, 10, 0, 0);
    // 10:00 at +01:00 is 09:00 UTC; 10:00 at -05:30 is 15:30 UTC.
    CHECK(mq::parse_rfc3339("2026-11-21T10:00:00+01:00") == base - 3'600'000);
    CHECK(mq::parse_rfc3339("2026-11-21T10:00:00-05:30") == base + 19'800'000);
    CHECK(mq::parse_rfc3339("2026-11-21T10:00:00+00:00") == base);
    CHECK(mq::parse_rfc3339("2026-11-21T10:00:00-00:00") == base);
    CHECK(mq::parse_rfc3339("2026-11-21T11:00:00.250+01:00") == base + 250);
    CHECK(mq::parse_rfc3339("2026-11-22T00:30:00+14:30") == base);
}

TEST_CASE("parse_rfc3339_accepts_lowercase_t_and_z", "[time]") {
    const std::int64_t base = utc_ms(2026, 11, 21, 10, 0, 0);
    CHECK(mq::parse_rfc3339("2026-11-21t10:00:00z") == base);
    CHECK(mq::parse_rfc3339("2026-11-21t10:00:00.5z") == base + 500);
}

TEST_CASE("parse_rfc3339_refuses_malformed_timestamps", "[time]") {
    for (const char* text : {
             "",
             "2026-11-21T10:00:00",         // missing zone
             "2026-11-21T10:00:00.5",       // missing zone after fraction
             "2026-11-21",                  // date only
             "2026-13-21T10:00:00Z",        // month 13
             "2026-00-21T10:00:00Z",        // month 0
             "2026-11-32T10:00:00Z",        // day 32
             "2026-11-00T10:00:00Z",        // day 0
             "2026-04-31T10:00:00Z",        // April has 30 days
             "2026-02-30T10:00:00Z",        // February never has 30
             "2026-11-21T24:00:00Z",        // hour 24
             "2026-11-21T10:60:00Z",        // minute 60
             "2026-11-21T10:00:00Zjunk",    // garbage suffix
             "2026-11-21T10:00:00Z ",       // trailing space
             "2026-11-21T10:00:00+01:00x",  // garbage after offset
             "2026-11-21T10:00:00.Z",       // empty fraction
             "2026-11-21T10:00:00+01",      // short offset
             "2026-11-21T10:00:00+0100",    // offset without colon
             "2026-11-21T10:00:00+24:00",   // offset hour out of range
             "2026-11-21X10:00:00Z",        // bad separator
             "2026/11/21T10:00:00Z",        // bad date separator
             "26-11-21T10:00:00Z",          // two-digit year
             "2026-1-21T10:00:00Z",         // one-digit month
             "tomorrow",
         }) {
        INFO("'" << text << "'");
        CHECK_THROWS_AS(mq::parse_rfc3339(text), mq::ValidationError);
    }
}

TEST_CASE("parse_rfc3339_error_names_the_field", "[time]") {
    try {
        mq::parse_rfc3339("2026-13-01T00:00:00Z", "deliver_at");
        FAIL("parse_rfc3339 accepted month 13");
    } catch (const mq::ValidationError& e) {
        CHECK_THAT(std::string(e.what()), Contains("deliver_at"));
        CHECK_THAT(std::string(e.what()), Contains("RFC 3339"));
        CHECK(e.details()["field"] == "deliver_at");
    }
}

// ---- format_rfc3339 --------------------------------------------------------------------

TEST_CASE("format_rfc3339_writes_utc_with_milliseconds", "[time]") {
    CHECK(mq::format_rfc3339(0) == "1970-01-01T00:00:00.000Z");
    CHECK(mq::format_rfc3339(1'795'255'200'000) == "2026-11-21T10:00:00.000Z");
    CHECK(mq::format_rfc3339(1'795'255'200'250) == "2026-11-21T10:00:00.250Z");
    CHECK(mq::format_rfc3339(1'795'255'200'007) == "2026-11-21T10:00:00.007Z");
    CHECK(mq::format_rfc3339(-1) == "1969-12-31T23:59:59.999Z");
}

TEST_CASE("format_rfc3339_round_trips_through_parse_rfc3339", "[time]") {
    const std::int64_t now = mq::now_ms();
    for (std::int64_t ms : {std::int64_t{0}, std::int64_t{1}, std::int64_t{-1}, std::int64_t{999},
                            std::int64_t{1'709'164'800'000}, std::int64_t{1'795'255'200'250},
                            std::int64_t{4'102'444'799'999}, now}) {
        const std::string text = mq::format_rfc3339(ms);
        INFO(ms << " -> " << text);
        CHECK(mq::parse_rfc3339(text) == ms);
    }
}

TEST_CASE("parse_then_format_normalises_offsets_to_utc", "[time]") {
    CHECK(mq::format_rfc3339(mq::parse_rfc3339("2026-11-21T11:00:00.5+01:00")) ==
          "2026-11-21T10:00:00.500Z");
    CHECK(mq::format_rfc3339(mq::parse_rfc3339("2026-11-21T04:30:00-05:30")) ==
          "2026-11-21T10:00:00.000Z");
}

TEST_CASE("now_ms_follows_the_system_clock", "[time]") {
    const auto before = std::chrono::duration_cast<milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const std::int64_t now = mq::now_ms();
    const auto after = std::chrono::duration_cast<milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    CHECK(now >= before);
    CHECK(now <= after);
}
