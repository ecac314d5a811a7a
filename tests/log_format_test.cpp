// Log formats (LOG_FORMAT): every JSON line parses whatever the message holds (quotes,
// newlines, control characters, invalid UTF-8, megabytes), carries time/level/service/
// message and the thread's log context as fields; the text line is spdlog's default plus
// a "[key=value]" suffix.
#include "mq/core/log_format.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mq/core/log_context.hpp"

using namespace std::string_literals;
using Catch::Matchers::Contains;

namespace {

// 2026-12-03T16:36:21.123Z
const auto kTime = std::chrono::system_clock::time_point(std::chrono::milliseconds(1796315781123));

spdlog::details::log_msg message(std::string_view text,
                                 spdlog::level::level_enum level = spdlog::level::warn) {
    return spdlog::details::log_msg(kTime, spdlog::source_loc{}, "mq-test", level,
                                    spdlog::string_view_t(text.data(), text.size()));
}

std::string format_with(spdlog::formatter& f, const spdlog::details::log_msg& msg) {
    spdlog::memory_buf_t buf;
    f.format(msg, buf);
    return std::string(buf.data(), buf.size());
}

// The line JsonLogFormatter writes: exactly one '\n', at the end, and strict JSON before it
// (nlohmann refuses invalid UTF-8 and raw control characters).
nlohmann::json parse_line(const std::string& line) {
    REQUIRE_FALSE(line.empty());
    CHECK(line.back() == '\n');
    CHECK(line.find('\n') == line.size() - 1);
    CHECK(std::none_of(line.begin(), line.end() - 1,
                       [](char c) { return static_cast<unsigned char>(c) < 0x20; }));
    return nlohmann::json::parse(line.substr(0, line.size() - 1));
}

nlohmann::json json_of(std::string_view text) {
    mq::JsonLogFormatter f;
    return parse_line(format_with(f, message(text)));
}

// A logger writing into a string, as setup_logging sets one up (synchronous).
struct CapturedLog {
    std::ostringstream out;
    std::shared_ptr<spdlog::logger> logger;
    explicit CapturedLog(const std::string& format) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
        logger = std::make_shared<spdlog::logger>("mq-test", sink);
        logger->set_formatter(mq::make_log_formatter(format));
        logger->set_level(spdlog::level::trace);
    }
    std::vector<std::string> lines() const {
        std::vector<std::string> v;
        std::istringstream in(out.str());
        for (std::string l; std::getline(in, l);) v.push_back(l + "\n");
        return v;
    }
};

}  // namespace

TEST_CASE("json_log_lines_stay_valid_json_whatever_the_message_holds", "[logging]") {
    const std::vector<std::pair<std::string, std::string>> kept{
        {"quotes", R"(webhook said {"error": "bad \"input\""})"},
        {"backslashes", R"(C:\path\to\file \\server\share \u0041)"},
        {"newlines", "line one\nline two\r\n{\"forged\":\"line\"}\n"},
        {"tabs and form feeds", "a\tb\fc\bd"},
        {"control bytes", "\x01\x02\x1b[31mred\x1b[0m\x7f"},
        {"a NUL inside", "before\0after"s},
        {"valid UTF-8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"empty", ""},
    };
    for (const auto& [what, text] : kept) {
        INFO(what);
        auto j = json_of(text);
        CHECK(j["message"] == text);  // escaped and read back unchanged
    }
}

TEST_CASE("json_log_lines_replace_invalid_utf8_instead_of_failing", "[logging]") {
    const std::string kReplacement = "\xef\xbf\xbd";
    const std::vector<std::pair<std::string, std::string>> bad{
        {"lone continuation byte", "a\x80z"},   {"0xff and 0xfe", "a\xff\xfez"},
        {"truncated sequence", "a\xe2\x82"},    {"overlong slash", "a\xc0\xafz"},
        {"UTF-16 surrogate", "a\xed\xa0\x80z"}, {"above U+10FFFF", "a\xf4\x90\x80\x80z"},
    };
    for (const auto& [what, text] : bad) {
        INFO(what);
        auto j = json_of(text);
        auto m = j["message"].get<std::string>();
        CHECK(m.front() == 'a');
        CHECK_THAT(m, Contains(kReplacement));
    }
    // Around the bad bytes, the good text stays.
    CHECK(json_of("ok \xff ok")["message"] == "ok " + kReplacement + " ok");
}

TEST_CASE("json_log_lines_carry_a_very_long_hostile_message_on_one_line", "[logging]") {
    std::string text;
    for (int i = 0; i < 100000; ++i) text += "\"\n\x01\xff\\ ";  // 600 kB of the worst
    auto j = json_of(text);
    CHECK(j["message"].get<std::string>().size() > text.size());  // \xff -> 3 bytes
    CHECK(j["level"] == "warning");
}

TEST_CASE("json_log_lines_have_time_level_service_and_message_fields", "[logging]") {
    mq::JsonLogFormatter f;
    auto j = parse_line(format_with(f, message("hello", spdlog::level::info)));
    CHECK(j["time"] == "2026-12-03T16:36:21.123Z");
    CHECK(j["level"] == "info");
    CHECK(j["service"] == "mq-test");
    CHECK(j["message"] == "hello");
    CHECK(j.size() == 4);
    CHECK(parse_line(format_with(f, message("x", spdlog::level::err)))["level"] == "error");
    CHECK(parse_line(format_with(f, message("x", spdlog::level::critical)))["level"] == "critical");
    // The time of a real line is RFC 3339 UTC with milliseconds.
    CapturedLog log("json");
    log.logger->info("now");
    auto now = parse_line(log.lines().at(0));
    CHECK(std::regex_match(now["time"].get<std::string>(),
                           std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
}

TEST_CASE("json_log_lines_carry_the_thread_context_as_fields", "[logging]") {
    CapturedLog log("json");
    {
        mq::LogScope sub{{"tenant", "acme"}, {"queue", "orders"}, {"subscription", "billing"}};
        log.logger->info("subscription line");
        {
            mq::LogScope msg{{"message_id", "0190-abc"}, {"attempt", 3}, {"queue", "inner"}};
            log.logger->warn("message line");
        }
        log.logger->info("after the inner scope");
    }
    log.logger->info("no context");
    auto lines = log.lines();
    REQUIRE(lines.size() == 4);

    auto a = parse_line(lines[0]);
    CHECK(a["tenant"] == "acme");
    CHECK(a["queue"] == "orders");
    CHECK(a["subscription"] == "billing");
    CHECK_FALSE(a.contains("message_id"));

    auto b = parse_line(lines[1]);
    CHECK(b["message_id"] == "0190-abc");
    CHECK(b["attempt"] == 3);                             // a number, not a text
    CHECK(b["queue"] == "inner");                         // the inner scope wins...
    CHECK(lines[1].find("orders") == std::string::npos);  // ...and the key appears once
    CHECK(b["tenant"] == "acme");

    auto c = parse_line(lines[2]);
    CHECK(c["queue"] == "orders");
    CHECK_FALSE(c.contains("message_id"));

    CHECK(parse_line(lines[3]).size() == 4);
}

TEST_CASE("hostile_context_values_and_keys_stay_valid_json_and_cannot_replace_fixed_fields",
          "[logging]") {
    CapturedLog log("json");
    {
        mq::LogScope hostile{{"tenant", "a\"b\nc\x01\xff"},
                             {"message", "forged"},
                             {"level", "debug"},
                             {"we\"ird\nkey", "v"},
                             {"duration_ms", 12.5},
                             {"nan", std::numeric_limits<double>::quiet_NaN()}};
        log.logger->error("real");
    }
    auto j = parse_line(log.lines().at(0));
    CHECK(j["message"] == "real");
    CHECK(j["level"] == "error");
    CHECK(j["tenant"] == "a\"b\nc\x01\xef\xbf\xbd");
    CHECK(j["we\"ird\nkey"] == "v");
    CHECK(j["duration_ms"] == 12.5);
    CHECK(j["nan"] == "nan");  // no JSON number: a text
}

TEST_CASE("log_context_is_per_thread", "[logging]") {
    CapturedLog log("json");
    mq::LogScope here{{"tenant", "main-thread"}};
    std::thread other([&] {
        mq::LogScope there{{"queue", "other-thread"}};
        log.logger->info("from the other thread");
    });
    other.join();
    log.logger->info("from this thread");
    auto lines = log.lines();
    REQUIRE(lines.size() == 2);
    auto a = parse_line(lines[0]);
    CHECK(a["queue"] == "other-thread");
    CHECK_FALSE(a.contains("tenant"));
    auto b = parse_line(lines[1]);
    CHECK(b["tenant"] == "main-thread");
    CHECK_FALSE(b.contains("queue"));
}

TEST_CASE("text_log_lines_are_spdlogs_default_with_a_context_suffix", "[logging]") {
    auto text = mq::make_text_log_formatter();
    spdlog::pattern_formatter spdlog_default;
    auto msg = message("plain line", spdlog::level::info);
    // Without context: exactly spdlog's default line.
    CHECK(format_with(*text, msg) == format_with(spdlog_default, msg));

    std::string with;
    {
        mq::LogScope scope{{"tenant", "acme"}, {"queue", "orders"}};
        mq::LogScope odd{{"subscription", "has space \"q\""}, {"attempt", 2}};
        with = format_with(*text, msg);
    }
    auto plain = format_with(spdlog_default, msg);
    plain.pop_back();  // the newline
    CHECK(with ==
          plain + R"( [tenant=acme queue=orders subscription="has space \"q\"" attempt=2])" + "\n");

    // JSON-only fields (mq-api's, whose text lines already say them) stay out of text.
    {
        mq::LogScope json_only(mq::LogScope::Show::kJsonOnly, {{"request_id", "r-1"}});
        CHECK(format_with(*text, msg) == format_with(spdlog_default, msg));
        mq::JsonLogFormatter json;
        CHECK(parse_line(format_with(json, msg))["request_id"] == "r-1");
    }
}

TEST_CASE("make_log_formatter_picks_json_only_for_json", "[logging]") {
    auto msg = message("x");
    auto json = mq::make_log_formatter("json");
    CHECK(parse_line(format_with(*json, msg))["message"] == "x");
    auto text = mq::make_log_formatter("text");
    CHECK(format_with(*text, msg).front() == '[');
    // Clones (one per sink) format the same.
    CHECK(format_with(*json->clone(), msg) == format_with(*json, msg));
    CHECK(mq::json_log_line(msg) + "\n" == format_with(*json, msg));
}
