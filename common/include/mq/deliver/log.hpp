#pragma once

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "mq/deliver/handler.hpp"

namespace mq {

/// Where a log handler writes its lines.
struct LogConfig {
    /// "-" (or "stdout"): the worker's standard output; "stderr"; otherwise a file path,
    /// opened for appending (created 0644) at the first delivery. "/dev/null" discards.
    std::string path = "-";
};

/// Reads a handler object: {"path": "-" | "stderr" | "/var/log/mq/orders.jsonl"}. "type" is
/// accepted and ignored; any other field is an error. Throws ValidationError with details
/// {"field": name} on bad input.
LogConfig log_config_from_json(const nlohmann::json& j);

/// Writes every message as one JSON line and acks it: for auditing, debugging a queue,
/// draining one into a file, or as the trivial handler of a benchmark.
///
/// Line: {"id", "tenant", "queue", "subscription", "partition", "stream_id", "attempt",
/// "published_ms", "delivered_ms", "key", "content_type", "trace_id", "headers", "payload"}
/// (key, content_type, trace_id and headers only when set). The payload is embedded as
/// JSON when it parses as JSON, otherwise as a string (invalid UTF-8 replaced by U+FFFD).
/// Each line goes out with one write(2) before deliver() returns, so an acked message is
/// in the file (the OS's page cache; no fsync). A failed write retries the message.
/// Thread-safe; lines never interleave.
class LogHandler : public Handler {
public:
    explicit LogHandler(LogConfig config);
    ~LogHandler() override;
    LogHandler(const LogHandler&) = delete;
    LogHandler& operator=(const LogHandler&) = delete;

    DeliveryResult deliver(const Delivery& delivery) override;
    bool in_process() const override { return true; }

    /// The line deliver() writes for `delivery`, without the newline.
    static std::string format_line(const Delivery& delivery, std::int64_t delivered_ms);

private:
    LogConfig config_;
    std::mutex mu_;
    int fd_ = -1;       ///< opened on first use; 1 or 2 for stdout/stderr
    bool owned_ = false;  ///< fd_ is ours to close
};

}  // namespace mq
