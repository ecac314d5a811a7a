#pragma once

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

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
/// (key, content_type, trace_id and headers only when set). The payload (and the headers)
/// is embedded as JSON, byte for byte, when it is valid JSON on one line (content type
/// empty or naming json); valid JSON spread over several lines is compacted; anything
/// else is embedded as a string (invalid UTF-8 replaced by U+FFFD).
/// Outside a batch each line goes out with one write(2) before deliver() returns; inside
/// one (begin_batch()/end_batch(), the runner's inline mode) the lines are staged and
/// end_batch() writes them all with one write(2), before the runner acks any of them.
/// Either way an acked message is in the file (the OS's page cache; no fsync), and a
/// failed write retries the message(s). Thread-safe; lines never interleave.
class LogHandler : public Handler {
  public:
    explicit LogHandler(LogConfig config);
    ~LogHandler() override;
    LogHandler(const LogHandler&) = delete;
    LogHandler& operator=(const LogHandler&) = delete;

    DeliveryResult deliver(const Delivery& delivery) override;
    bool in_process() const override { return true; }
    void begin_batch() override;
    std::string end_batch() override;

    /// The line deliver() writes for `delivery`, without the newline.
    static std::string format_line(const Delivery& delivery, std::int64_t delivered_ms);
    /// Appends that line, without the newline, to `out`.
    static void append_line(std::string& out, const Delivery& delivery, std::int64_t delivered_ms);

  private:
    /// Opens the file on first use and writes all of `data`; returns the error, empty on success.
    std::string write_all(const std::string& data);

    LogConfig config_;
    std::mutex mu_;
    int fd_ = -1;         ///< opened on first use; 1 or 2 for stdout/stderr
    bool owned_ = false;  ///< fd_ is ours to close
    /// The thread between begin_batch() and end_batch(); no thread outside a batch.
    std::atomic<std::thread::id> batch_thread_{};
    std::string batch_;  ///< lines staged by batch_thread_
};

}  // namespace mq
