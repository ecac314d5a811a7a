#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mq/core/keys.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

// Definitions (docs/metrics.md says the same for users):
//   pending  entries delivered to a subscription and not yet acked (its PEL)
//   lag      entries of the stream not yet delivered to the subscription
//   backlog  entries the subscription has not finished: lag + pending
//   queue backlog: per partition the backlog of the slowest subscription (the stream length
//            when the partition has none), summed; max_length bounds it plus delayed. The
//            slowest has the largest backlog; on a tie, the fewest pending (delivered least).

/// One consumer of a subscription, summed over the partitions it reads.
struct ConsumerFigures {
    std::string name;
    std::int64_t pending = 0;
    std::int64_t idle_ms = 0;  ///< smallest idle time over the partitions
};

/// One subscription (consumer group) on one partition.
struct GroupFigures {
    std::string name;
    std::int64_t consumers = 0;
    std::int64_t pending = 0;
    std::optional<std::int64_t> lag;  ///< nullopt when Redis cannot tell (entries deleted)
    std::int64_t backlog = 0;  ///< pending + lag; pending + stream length when lag is unknown
    std::string last_delivered_id;
    std::optional<std::int64_t> oldest_pending_ms;  ///< Unix ms of the oldest pending entry
    std::int64_t expired = 0;  ///< entries dropped by retention before this group finished them
    std::vector<ConsumerFigures> consumer_list;  ///< when InspectOptions::consumers
};

/// What is in one partition right now.
struct PartitionFigures {
    int partition = 0;
    std::int64_t length = 0;                ///< entries in the stream (finished ones until trimmed)
    std::int64_t delayed = 0;               ///< entries waiting in the delayed set
    std::int64_t dead_letters = 0;          ///< entries in the dead-letter stream
    std::int64_t history_buffered = 0;      ///< history events not yet written to PostgreSQL
    std::optional<std::int64_t> oldest_ms;  ///< Unix ms of the oldest stream entry
    std::optional<std::int64_t> next_due_ms;  ///< earliest delayed entry
    std::vector<GroupFigures> groups;
    /// Backlog of the slowest group, or the stream length when there is no group.
    std::int64_t backlog() const;
};

/// One subscription summed over the partitions it has a group on.
struct SubscriptionFigures {
    std::string name;
    int partitions = 0;  ///< partitions with the group
    std::int64_t consumers = 0;
    std::int64_t pending = 0;
    std::int64_t lag = 0;   ///< sum of the known lags
    bool lag_known = true;  ///< false when any partition's lag is unknown
    std::int64_t backlog = 0;
    std::int64_t expired = 0;
    std::optional<std::int64_t> oldest_pending_ms;
    std::vector<ConsumerFigures> consumer_list;  ///< by name; when InspectOptions::consumers
};

/// Everything mq reports about one queue, measured in one round trip.
struct QueueFigures {
    std::string tenant;
    std::string name;
    std::int64_t measured_ms = 0;  ///< Unix ms of the measurement (ages are relative to it)
    std::int64_t length = 0;
    std::int64_t delayed = 0;
    std::int64_t dead_letters = 0;
    std::int64_t history_buffered = 0;  ///< history events waiting in Redis (docs/history.md)
    std::int64_t pending = 0;           ///< summed over subscriptions
    std::int64_t lag = 0;               ///< summed over subscriptions (known lags)
    std::int64_t backlog = 0;           ///< slowest subscription per partition, summed (see above)
    std::int64_t ready = 0;             ///< the part of `backlog` not yet delivered
    std::int64_t in_flight = 0;         ///< the part of `backlog` delivered and not acked
    std::int64_t groups = 0;            ///< consumer groups over all partitions
    std::int64_t consumers = 0;         ///< consumers over all groups and partitions
    std::optional<std::int64_t> oldest_ms;
    std::optional<std::int64_t> oldest_pending_ms;
    std::optional<std::int64_t> next_due_ms;
    std::vector<PartitionFigures> partitions;
    std::vector<SubscriptionFigures> subscriptions;  ///< by name

    /// Age at measurement time of a Unix ms timestamp (never negative); nullopt stays nullopt.
    std::optional<std::int64_t> age_ms(std::optional<std::int64_t> unix_ms) const;
    const SubscriptionFigures* subscription(const std::string& group) const;
};

struct InspectOptions {
    bool consumers = false;  ///< also read XINFO CONSUMERS per group (ConsumerFigures)
};

/// The one place queue figures are computed: mqctl stats, the API's JSON metrics and
/// /status, and the Prometheus endpoints of mq-api and mq-worker all call it.
class QueueInspector {
  public:
    QueueInspector(redis::Connection& redis, KeyLayout keys)
        : redis_(redis), keys_(std::move(keys)) {}

    /// One pipelined round trip (one script per partition). Throws BackendUnavailable when
    /// Redis cannot be reached.
    QueueFigures inspect(const Queue& queue, InspectOptions options = {});
    /// Several queues in one round trip.
    std::vector<QueueFigures> inspect(const std::vector<const Queue*>& queues,
                                      InspectOptions options = {});

  private:
    redis::Connection& redis_;
    KeyLayout keys_;
};

/// Queue figures of every queue for a scrape endpoint (mq-api's /metrics), measured by a
/// thread of its own at most once per `every` and only while scrapes keep asking: however
/// often scrapes come, Redis sees at most one walk of the queues per `every`. A scrape gets
/// the snapshot when it is younger than `every`, else it waits (bounded) for the one
/// refresh every waiting scrape shares. `every` zero: a refresh per scrape (tests).
class QueueFiguresCache {
  public:
    /// Every queue to measure, asked before each refresh.
    using QueueList = std::function<std::vector<std::shared_ptr<const Queue>>()>;

    struct Snapshot {
        std::vector<QueueFigures> figures;
        std::int64_t measured_ms = 0;  ///< Unix ms; 0 before the first success
        bool up = false;               ///< false when the last refresh failed (Redis down)
        std::uint64_t refreshes = 0;   ///< successful refreshes so far
    };

    /// Queues are inspected in pipelines of at most `kQueuesPerRoundTrip`.
    QueueFiguresCache(redis::Endpoint endpoint, KeyLayout keys, QueueList queues,
                      std::chrono::milliseconds every, redis::ConnectOptions options = {});
    ~QueueFiguresCache();  ///< stops the thread
    QueueFiguresCache(const QueueFiguresCache&) = delete;
    QueueFiguresCache& operator=(const QueueFiguresCache&) = delete;

    /// The snapshot, refreshed first when it is older than `every` (waiting at most `wait`
    /// for that; then the older one).
    std::shared_ptr<const Snapshot> latest(
        std::chrono::milliseconds wait = std::chrono::milliseconds(3000));

    static constexpr std::size_t kQueuesPerRoundTrip = 200;

  private:
    void run();

    redis::Endpoint endpoint_;
    redis::ConnectOptions options_;
    KeyLayout keys_;
    QueueList queues_;
    std::chrono::milliseconds every_;

    std::mutex mu_;
    std::condition_variable cv_;  // wakes the thread (asked_/stop_) and first waiters
    std::shared_ptr<const Snapshot> snapshot_ = std::make_shared<Snapshot>();
    std::chrono::steady_clock::time_point refreshed_at_{};
    std::uint64_t started_ = 0;   // refreshes begun
    std::uint64_t finished_ = 0;  // refreshes done (success or failure)
    bool asked_ = false;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace mq
