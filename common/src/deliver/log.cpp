#include "mq/deliver/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mq/core/time.hpp"
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

std::string LogHandler::format_line(const Delivery& d, std::int64_t delivered_ms) {
    const Message& m = d.message;
    nlohmann::json line{{"id", m.id},
                        {"tenant", d.tenant},
                        {"queue", d.queue},
                        {"subscription", d.subscription},
                        {"partition", d.partition},
                        {"stream_id", d.stream_id},
                        {"attempt", d.attempt},
                        {"published_ms", m.published_ms},
                        {"delivered_ms", delivered_ms}};
    if (!m.key.empty()) line["key"] = m.key;
    if (!m.content_type.empty()) line["content_type"] = m.content_type;
    if (!m.trace_id.empty()) line["trace_id"] = m.trace_id;
    if (!m.headers_json.empty()) {
        auto h = nlohmann::json::parse(m.headers_json, nullptr, false);
        line["headers"] = h.is_discarded() ? nlohmann::json(m.headers_json) : std::move(h);
    }
    nlohmann::json payload = nlohmann::json::value_t::discarded;
    if (looks_like_json(m.content_type)) payload = nlohmann::json::parse(m.payload, nullptr, false);
    line["payload"] = payload.is_discarded() ? nlohmann::json(m.payload) : std::move(payload);
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

DeliveryResult LogHandler::deliver(const Delivery& d) {
    DeliveryResult result;
    std::string line = format_line(d, now_ms());
    line.push_back('\n');
    std::lock_guard lock(mu_);
    if (fd_ < 0) {
        if (config_.path == "-" || config_.path == "stdout") {
            fd_ = STDOUT_FILENO;
        } else if (config_.path == "stderr") {
            fd_ = STDERR_FILENO;
        } else {
            fd_ = ::open(config_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
            if (fd_ < 0) {
                result.error = "cannot open " + config_.path + ": " + std::strerror(errno);
                return result;  // kRetry: the file may become writable
            }
            owned_ = true;
        }
    }
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(fd_, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            result.error = "cannot write to " + config_.path + ": " + std::strerror(errno);
            return result;  // kRetry; a partial line may be left, the message comes again
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    result.outcome = DeliveryOutcome::kAck;
    return result;
}

}  // namespace mq
