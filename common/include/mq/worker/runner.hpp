#pragma once

#include <prometheus/histogram.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mq/consume/consumer.hpp"
#include "mq/crypto/keyring.hpp"
#include "mq/deliver/handler.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// Counters of one subscription runner, read by the metrics endpoint.
struct RunnerMetrics {
    std::atomic<std::uint64_t> acked{0};
    std::atomic<std::uint64_t> failed{0};  ///< attempts that will be retried
    std::atomic<std::uint64_t> dead_lettered{0};
    std::atomic<std::uint64_t> dropped{0};    ///< max attempts reached, dead letters off
    std::atomic<std::uint64_t> filtered{0};   ///< acked without delivery: filter did not match
    std::atomic<std::uint64_t> reclaimed{0};  ///< taken back after backoff or visibility timeout
    std::atomic<std::uint64_t> moved_delayed{0};  ///< delayed entries moved into the stream
    std::atomic<std::int64_t> in_flight{0};
    std::atomic<std::uint64_t> backend_errors{0};
    /// Time spent in the handler per delivery, seconds (mq_worker_handler_duration_seconds).
    prometheus::Histogram duration{
        prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30}};
    void observe(std::chrono::microseconds d);
};

class RateLimiter;

struct RunnerOptions {
    redis::Endpoint endpoint;
    KeyLayout keys;
    Queue queue;
    Subscription subscription;
    std::string consumer;  ///< this process's consumer name, unique per worker
    std::shared_ptr<Handler> handler;
    /// Opens sealed payloads (entries with "ek") before the handler sees them; null or
    /// empty: such entries fail delivery (retried, then dead-lettered still sealed).
    std::shared_ptr<const Keyring> keyring;
    /// XREADGROUP BLOCK per fetch; bounds how long a stop or pause waits for a fetcher.
    std::chrono::milliseconds fetch_block{500};
    std::chrono::milliseconds reclaim_interval{100};
    bool move_delayed = true;  ///< also run the delayed-entry mover for the queue
};

/// Delivers one subscription: a fetcher per partition (XREADGROUP BLOCK), `concurrency`
/// handler threads, and a maintenance thread that reclaims due retries and entries of
/// dead consumers, extends the leases of deliveries in progress, and moves due delayed
/// entries. Each thread has its own Redis connection; a Redis outage is logged and
/// retried, never fatal. Acks of handler threads that finish at about the same time go
/// out as one XACK per partition (the first thread to finish sends them).
///
/// Inline mode: with concurrency 1 and an in-process handler (Handler::in_process(), e.g.
/// `log`), there are no handler threads: each fetcher delivers its batch itself, one
/// message at a time (a mutex keeps deliveries of all partitions one at a time), inside
/// Handler::begin_batch()/end_batch() (the log handler writes the batch's lines with one
/// write(2) there), and acks the delivered ones with one XACK sent in the same round trip
/// as the next XREADGROUP (as a plain read + ack loop does); the maintenance thread
/// delivers what it reclaims. Semantics are the same: ack only after the handler (and
/// end_batch()) succeeded, pause stops between two messages (acks of delivered ones go
/// out before pausing), stop hands back the rest of a batch.
class SubscriptionRunner {
  public:
    SubscriptionRunner(RunnerOptions options, std::shared_ptr<RunnerMetrics> metrics);
    ~SubscriptionRunner();
    SubscriptionRunner(const SubscriptionRunner&) = delete;
    SubscriptionRunner& operator=(const SubscriptionRunner&) = delete;

    /// Creates the consumer groups when missing, then starts the threads.
    void start();
    /// Paused: no new deliveries start (fetched entries wait, their leases kept).
    void set_paused(bool paused);
    bool paused() const { return paused_; }
    /// Graceful stop: stop fetching, let running deliveries finish until `deadline`,
    /// hand entries not yet started back for immediate redelivery. Deliveries still
    /// running at the deadline are abandoned (Delivery::abandoned: exec commands get
    /// SIGTERM, then SIGKILL after their kill_grace; webhook requests are aborted) and left
    /// pending for redelivery after the visibility timeout. Joins every thread before it
    /// returns, so the runner may be destroyed at once. Returns false when something was
    /// abandoned. Idempotent.
    bool stop(std::chrono::steady_clock::time_point deadline);

    const RunnerOptions& options() const { return options_; }
    std::shared_ptr<RunnerMetrics> metrics() const { return metrics_; }
    /// True while every thread could reach Redis on its last try.
    bool healthy() const { return healthy_; }

  private:
    struct PendingAck {
        int partition;
        std::string stream_id;
        bool filtered;
        std::string message_id;  ///< for the history (queue with record_messages)
        int attempt = 0;
        std::int64_t duration_ms = -1;
    };
    /// The history event of a delivery attempt of `f` by this runner's consumer.
    HistoryEvent attempt_event(const Fetched& f, const std::string& outcome,
                               const std::string& error) const;
    /// The events of `acks` (empty when the queue does not record messages).
    std::vector<HistoryEvent> ack_events(const std::vector<PendingAck>& acks, int partition) const;

    void fetch_loop(int partition);
    void handle_loop();
    void maintenance_loop();
    void inline_fetch_loop(int partition);
    /// XACK of `acks` (then cleared and counted) and XREADGROUP of up to batch_size new
    /// entries of `partition`, in one round trip.
    std::vector<Fetched> ack_and_read(redis::Connection& conn, int partition,
                                      std::vector<PendingAck>& acks);
    /// Delivers `batch` on the calling thread (inline mode) and appends the acks of what
    /// succeeded to `acks` (the caller sends them). Stops early when pausing or stopping:
    /// the rest waits in queue_ (stop() hands it back). `all` ignores pause and stop
    /// (reclaimed entries).
    void deliver_inline(ConsumerGroups& groups, std::vector<Fetched>& batch, bool all,
                        std::vector<PendingAck>& acks);
    /// What to do with an entry after deliver_one: ack it (delivered, or skipped by the
    /// filter) or nothing (retry, dead letter and drop are already recorded).
    enum class Settled { kAck, kFiltered, kRecorded };
    Settled deliver_one(ConsumerGroups& groups, Fetched& f);
    /// Records a failed or rejected attempt (retry later, dead letter or drop); kAck for an ack.
    Settled record(ConsumerGroups& groups, const Fetched& f, const DeliveryResult& result);
    /// Queues an ack; the first thread to find no ack in flight sends every queued one
    /// (one XACK per partition) until none is left.
    void ack_soon(ConsumerGroups& groups, const Fetched& f, Settled settled);
    void backend_error(const char* where, const std::exception& e);

    RunnerOptions options_;
    std::shared_ptr<RunnerMetrics> metrics_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> fetching_{true};
    std::atomic<bool> paused_{false};
    std::atomic<bool> healthy_{true};
    /// stop() passed its deadline: running deliveries give up.
    std::atomic<bool> abandoned_{false};
    std::atomic<bool> group_gone_logged_{false};  ///< NOGROUP reported once

    std::mutex mu_;
    std::condition_variable cv_;        ///< work arrived, pause lifted, or stopping
    std::condition_variable space_cv_;  ///< room in the queue
    std::condition_variable idle_cv_;   ///< a handler finished (stop() waits for none busy)
    std::deque<Fetched> queue_;
    std::size_t capacity_;
    std::map<std::pair<int, std::string>, int> in_progress_;  ///< (partition, id) -> count
    int busy_handlers_ = 0;
    bool inline_ = false;   ///< deliver on the fetcher threads (see the class comment)
    std::mutex inline_mu_;  ///< one inline delivery at a time
    /// The batch an inline delivery holds (leases extended like in_progress_); under mu_.
    const std::vector<Fetched>* inline_batch_ = nullptr;
    std::mutex ack_mu_;
    std::vector<PendingAck> acks_;  ///< delivered, XACK not sent yet
    bool acking_ = false;           ///< a handler thread is sending acks_
    /// XACK per partition of `acks`, then counts them as acked or filtered.
    void send_acks(ConsumerGroups& groups, const std::vector<PendingAck>& acks);

    std::unique_ptr<RateLimiter> limiter_;  ///< set when the subscription has a rate limit
    std::vector<std::thread> fetchers_;
    std::vector<std::thread> handlers_;
    std::thread maintenance_;
};

}  // namespace mq
