#include "mq/deliver/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "mq/core/codec.hpp"
#include "mq/core/time.hpp"
#include "mq/core/trace_context.hpp"
#include "mq/error.hpp"

namespace mq {

namespace {

[[noreturn]] void invalid(const std::string& field, const std::string& why) {
    throw ValidationError("log handler: " + field + " " + why, {{"field", field}});
}

bool looks_like_json(const std::string& content_type) {
    return content_type.empty() || content_type.find("json") != std::string::npos;
}

}  // namespace

LogConfig log_config_from_json(const nlohmann::json& j) {
    if (j.is_null()) return {};
    if (!j.is_object()) invalid("handler", "must be an object");
    LogConfig c;
    for (const auto& [field, v] : j.items()) {
        if (field == "type") continue;
        if (field == "path") {
            if (!v.is_string() || v.get_ref<const std::string&>().empty())
                invalid(field, "must be \"-\", \"stderr\" or a file path");
            c.path = v.get<std::string>();
        } else {
            invalid(field, "is not a log handler setting (only \"path\")");
        }
    }
    return c;
}

LogHandler::LogHandler(LogConfig config) : config_(std::move(config)) {
    if (config_.path.empty()) invalid("path", "must not be empty");
}

LogHandler::~LogHandler() {
    if (owned_ && fd_ >= 0) ::close(fd_);
}

namespace {

template <class Int>
void append_int(std::string& out, Int v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// Appends `text` as JSON when it is JSON (as-is when on one line, else compacted),
// otherwise as a string.
void append_json_or_string(std::string& out, const std::string& text, bool try_json) {
    if (try_json && !text.empty()) {
        // accept() checks the syntax and UTF-8 without building a document.
        if (nlohmann::json::accept(text)) {
            if (text.find_first_of("\r\n") == std::string::npos) {
                out += text;
            } else {
                out += nlohmann::json::parse(text).dump(-1, ' ', false,
                                                        nlohmann::json::error_handler_t::replace);
            }
            return;
        }
    }
    codec::append_json_string(out, text);
}

}  // namespace

void LogHandler::append_line(std::string& out, const Delivery& d, std::int64_t delivered_ms) {
    const Message& m = d.message;
    out += "{\"id\":";
    codec::append_json_string(out, m.id);
    out += ",\"tenant\":";
    codec::append_json_string(out, d.tenant);
    out += ",\"queue\":";
    codec::append_json_string(out, d.queue);
    out += ",\"subscription\":";
    codec::append_json_string(out, d.subscription);
    out += ",\"partition\":";
    append_int(out, d.partition);
    out += ",\"stream_id\":";
    codec::append_json_string(out, d.stream_id);
    out += ",\"attempt\":";
    append_int(out, d.attempt);
    out += ",\"published_ms\":";
    append_int(out, m.published_ms);
    out += ",\"delivered_ms\":";
    append_int(out, delivered_ms);
    if (!m.key.empty()) {
        out += ",\"key\":";
        codec::append_json_string(out, m.key);
    }
    if (!m.content_type.empty()) {
        out += ",\"content_type\":";
        codec::append_json_string(out, m.content_type);
    }
    if (!m.trace_id.empty()) {
        out += ",\"trace_id\":";
        codec::append_json_string(out, m.trace_id);
        if (auto trace = trace::handoff(m); !trace.traceparent.empty()) {
            out += ",\"traceparent\":";
            codec::append_json_string(out, trace.traceparent);
            if (!trace.tracestate.empty()) {
                out += ",\"tracestate\":";
                codec::append_json_string(out, trace.tracestate);
            }
        }
    }
    if (!m.headers_json.empty()) {
        out += ",\"headers\":";
        append_json_or_string(out, m.headers_json, true);
    }
    out += ",\"payload\":";
    append_json_or_string(out, m.payload, looks_like_json(m.content_type));
    out.push_back('}');
}

std::string LogHandler::format_line(const Delivery& d, std::int64_t delivered_ms) {
    std::string line;
    append_line(line, d, delivered_ms);
    return line;
}

std::string LogHandler::write_all(const std::string& data) {
    if (fd_ < 0) {
        if (config_.path == "-" || config_.path == "stdout") {
            fd_ = STDOUT_FILENO;
        } else if (config_.path == "stderr") {
            fd_ = STDERR_FILENO;
        } else {
            fd_ = ::open(config_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
            if (fd_ < 0)
                return "cannot open " + config_.path + ": " +
                       std::strerror(errno);  // may become writable
            owned_ = true;
        }
    }
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(fd_, p, left);
        if (n < 0 && errno == EINTR) continue;
        // A partial line may be left; the message(s) come again.
        if (n <= 0) return "cannot write to " + config_.path + ": " + std::strerror(errno);
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    return {};
}

DeliveryResult LogHandler::deliver(const Delivery& d) {
    DeliveryResult result;
    if (batch_thread_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
        append_line(batch_, d, now_ms());
        batch_.push_back('\n');
        result.outcome = DeliveryOutcome::kAck;  // provided end_batch() succeeds
        return result;
    }
    std::string line;
    line.reserve(256 + d.message.payload.size());
    append_line(line, d, now_ms());
    line.push_back('\n');
    std::lock_guard lock(mu_);
    result.error = write_all(line);
    if (result.error.empty()) result.outcome = DeliveryOutcome::kAck;
    return result;
}

void LogHandler::begin_batch() {
    batch_.clear();
    batch_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
}

std::string LogHandler::end_batch() {
    batch_thread_.store(std::thread::id{}, std::memory_order_relaxed);
    if (batch_.empty()) return {};
    std::string error;
    {
        std::lock_guard lock(mu_);
        error = write_all(batch_);
    }
    batch_.clear();
    return error;
}

}  // namespace mq
