#include "mq/core/log_format.hpp"

#include <spdlog/pattern_formatter.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "mq/core/codec.hpp"
#include "mq/core/log_context.hpp"

namespace mq {

namespace {

constexpr std::array<std::string_view, 4> kFixedKeys{"time", "level", "service", "message"};

bool is_fixed_key(std::string_view key) {
    for (auto k : kFixedKeys)
        if (k == key) return true;
    return false;
}

// RFC 3339 in UTC with milliseconds: 2026-12-03T16:36:21.123Z
void append_time(std::string& out, spdlog::log_clock::time_point time) {
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
    auto seconds = static_cast<std::time_t>(ms / 1000);
    int millis = static_cast<int>(ms % 1000);
    if (millis < 0) {
        millis += 1000;
        --seconds;
    }
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buffer[40];
    int n = std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                          tm.tm_sec, millis);
    out.append(buffer, static_cast<std::size_t>(n > 0 ? n : 0));
}

void build_json_line(std::string& out, const spdlog::details::log_msg& msg) {
    out += "{\"time\":\"";
    append_time(out, msg.time);
    out += "\",\"level\":";
    auto level = spdlog::level::to_string_view(msg.level);
    codec::append_json_string(out, std::string_view(level.data(), level.size()));
    out += ",\"service\":";
    codec::append_json_string(out,
                              std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    out += ",\"message\":";
    codec::append_json_string(out, std::string_view(msg.payload.data(), msg.payload.size()));
    for_each_log_field([&](const LogContextField& f) {
        if (f.key.empty() || is_fixed_key(f.key)) return;
        out += ',';
        codec::append_json_string(out, f.key);
        out += ':';
        if (f.number)
            out += f.value;
        else
            codec::append_json_string(out, f.value);
    });
    out += '}';
}

bool needs_quotes(std::string_view value) {
    if (value.empty()) return true;
    for (unsigned char c : value)
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == ']' || c >= 0x7f) return true;
    return false;
}

// %* in the text pattern: " [key=value ...]" for the context fields shown in text.
class ContextSuffix final : public spdlog::custom_flag_formatter {
  public:
    void format(const spdlog::details::log_msg&, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        thread_local std::string text;
        text.clear();
        for_each_log_field([&](const LogContextField& f) {
            if (!f.in_text || f.key.empty()) return;
            text += text.empty() ? " [" : " ";
            text += f.key;
            text += '=';
            if (!f.number && needs_quotes(f.value))
                codec::append_json_string(text, f.value);
            else
                text += f.value;
        });
        if (text.empty()) return;
        text += ']';
        dest.append(text.data(), text.data() + text.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<ContextSuffix>();
    }
};

}  // namespace

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
    thread_local std::string line;
    line.clear();
    build_json_line(line, msg);
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
    return std::make_unique<JsonLogFormatter>();
}

std::string json_log_line(const spdlog::details::log_msg& msg) {
    std::string line;
    build_json_line(line, msg);
    return line;
}

std::unique_ptr<spdlog::formatter> make_text_log_formatter() {
    // spdlog's default pattern ("%+") spelled out, so the context can follow the message.
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<ContextSuffix>('*').set_pattern(
        "[%Y-%m-%d %H:%M:%S.%e] [%n] [%^%l%$] %v%*");
    return formatter;
}

std::unique_ptr<spdlog::formatter> make_log_formatter(std::string_view format) {
    if (format == "json") return std::make_unique<JsonLogFormatter>();
    return make_text_log_formatter();
}

}  // namespace mq
