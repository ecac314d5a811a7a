#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string>

#include "mq/core/message.hpp"

namespace mq {

/// What a handler decided about one delivery attempt.
enum class DeliveryOutcome {
    kAck,    ///< handled: acknowledge (XACK)
    kRetry,  ///< failed, may succeed later: leave pending for redelivery after backoff
    kDead,   ///< failed for good (e.g. HTTP 410): dead-letter now, no more attempts
};

struct DeliveryResult {
    DeliveryOutcome outcome = DeliveryOutcome::kRetry;
    std::string error;  ///< why it failed; empty on ack
    /// The handler asked for a pause before the next attempt (HTTP Retry-After).
    std::optional<std::chrono::milliseconds> retry_after;
    std::chrono::milliseconds duration{0};  ///< time spent in the handler
};

/// One delivery attempt as a handler sees it.
struct Delivery {
    Message message;
    std::string tenant;
    std::string queue;
    std::string subscription;
    int partition = 0;
    std::string stream_id;
    int attempt = 1;  ///< 1 for the first delivery
    /// Set by a stopping worker at its shutdown deadline: deliver() gives up as soon as it
    /// can (an exec command is terminated, a webhook request aborted) and reports a retry;
    /// the worker then leaves the entry pending for redelivery. Null: never abandoned.
    const std::atomic<bool>* abandoned = nullptr;
};

/// Delivers messages to something outside mq. Implementations are thread-safe unless
/// they say otherwise; the worker calls deliver() from several threads. deliver() must
/// return promptly once Delivery::abandoned is set: the worker joins every delivery
/// thread when it stops.
class Handler {
  public:
    virtual ~Handler() = default;
    virtual DeliveryResult deliver(const Delivery& delivery) = 0;
    /// True for a handler that works inside the worker process and returns quickly (no
    /// network, no child process): with concurrency 1 the runner calls it on the fetcher
    /// thread and acks each fetched batch with one XACK, skipping the hand-off to a pool.
    virtual bool in_process() const { return false; }
    /// Batching, used by the runner's inline mode: after begin_batch(), deliver() calls
    /// made by the same thread may only stage their work (e.g. append a line to a buffer)
    /// and answer kAck; end_batch() completes everything staged (e.g. with one write(2))
    /// and returns why that failed, empty when it did not. When it fails, none of the
    /// staged deliveries counts as done: the runner retries each. Other threads' deliver()
    /// calls are not affected. The default stages nothing.
    virtual void begin_batch() {}
    virtual std::string end_batch() { return {}; }
};

}  // namespace mq
