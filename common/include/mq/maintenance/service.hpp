#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "mq/core/keys.hpp"
#include "mq/pg/database.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// Queues are split into this many maintenance shards, by `maintenance_shard`. Fixed: every
/// instance must agree on it, or two could work one queue under different shard numbers.
constexpr int kMaintenanceShards = 16;

/// The shard of a queue: FNV-1a 64 of "<tenant>/<queue>" modulo kMaintenanceShards.
int maintenance_shard(std::string_view tenant, std::string_view queue);

/// Settings of a MaintenanceService. The defaults are the documented ones
/// (docs/maintenance.md); tests shorten them.
struct MaintenanceOptions {
    redis::Endpoint redis;
    std::string database_url;
    KeyLayout keys;
    /// Names this instance in lease values and logs ("mq-api@host-pid"); a random suffix
    /// is always added, so two processes given one name never share a lease.
    std::string instance;
    std::chrono::milliseconds lease_ttl{5000};    ///< a dead holder's shards move after this
    std::chrono::milliseconds lease_renew{1000};  ///< renew (and take free shards) this often
    std::chrono::milliseconds mover_interval{200};
    std::chrono::milliseconds archive_interval{2000};
    std::chrono::milliseconds queue_refresh{5000};  ///< re-read the queue list from PostgreSQL
    /// Longest pause between retries while a backend is down.
    std::chrono::milliseconds max_backoff{5000};
    /// Release leases on stop(). Off only to imitate a crash in tests.
    bool release_on_stop = true;
};

/// One task's counters, as MaintenanceService::stats() reports them.
struct MaintenanceTaskStats {
    std::string name;
    std::int64_t runs = 0;         ///< finished passes
    std::int64_t errors = 0;       ///< failed calls (one per queue for a per-queue task)
    std::int64_t last_run_ms = 0;  ///< Unix ms when the last pass finished; 0: never
};

/// Counters for metrics; a snapshot.
struct MaintenanceStats {
    std::int64_t moved = 0;         ///< delayed entries moved into streams
    std::int64_t archived = 0;      ///< dead letters written to PostgreSQL
    std::int64_t task_errors = 0;   ///< all tasks
    std::int64_t lease_losses = 0;  ///< leases found taken by someone else at renewal
    int leases_held = 0;            ///< shards this instance works now
    bool global_lease = false;      ///< runs the global tasks now
    int instances = 0;              ///< live instances seen at the last lease round
    std::int64_t queues = 0;        ///< queues in the last list read from PostgreSQL
    bool redis_available = true;
    bool postgres_available = true;
    std::vector<MaintenanceTaskStats> tasks;
};

/// What one `run_once()` pass did.
struct MaintenancePass {
    std::int64_t queues = 0;  ///< queues in the list
    std::int64_t moved = 0;
    std::int64_t archived = 0;
    std::int64_t errors = 0;          ///< failed task calls (logged)
    std::vector<int> shards_done;     ///< shards whose lease this pass took and worked
    std::vector<int> shards_skipped;  ///< shards held by running instances: their work
    std::int64_t queues_skipped = 0;  ///< queues in the skipped shards
    bool global_done = false;         ///< global tasks ran (false: none, or held elsewhere)
    bool global_skipped = false;      ///< the global lease was held by a running instance
};

/// Background maintenance for every queue of every tenant: the delayed/scheduled mover,
/// the dead-letter archiver, and tasks plugged in by add_queue_task/add_global_task.
///
/// Queues are split into kMaintenanceShards shards; a shard is worked only by the holder
/// of its lease in Redis (SET NX PX, renewed by a compare-and-PEXPIRE script, released by a
/// compare-and-DEL script), so N instances share the work and each shard is done by one of
/// them at a time. Each instance takes at most its fair share (shards / live instances,
/// rounded up) and hands extra shards back, one per round, when others join. A holder
/// that fails to renew in time stops working the shard at once (its local validity is
/// TTL minus one renew interval from the start of the last successful renewal).
///
/// Failure behaviour: during a PostgreSQL outage the last queue list is kept and the
/// Redis-only tasks go on; during a Redis outage every thread backs off and retries; each
/// outage is logged once when it starts and once when it ends. Never throws out of its
/// threads. Not copyable; stop() (or the destructor) joins every thread and releases the
/// leases.
class MaintenanceService {
  public:
    using QueueTask = std::function<void(redis::Connection&, const Queue&)>;
    using GlobalTask = std::function<void(redis::Connection&, pg::Database&)>;

    explicit MaintenanceService(MaintenanceOptions options);
    ~MaintenanceService();
    MaintenanceService(const MaintenanceService&) = delete;
    MaintenanceService& operator=(const MaintenanceService&) = delete;

    /// A task run for every queue of the shards this instance holds, every `interval`, on
    /// its own thread and Redis connection. Call before start(). Example (the trimmer):
    ///   svc.add_queue_task("trim", 5s, [k = keys](auto& r, const Queue& q) { Trimmer(r,
    ///   k).trim(q); });
    void add_queue_task(std::string name, std::chrono::milliseconds interval, QueueTask task);
    /// A task run every `interval` by the one instance holding the global lease, with a
    /// Redis and a PostgreSQL connection of its own thread. Call before start().
    void add_global_task(std::string name, std::chrono::milliseconds interval, GlobalTask task);

    /// Starts the threads. Backends may be down: the service waits for them.
    void start();
    /// Stops every thread (promptly: sleeps are interruptible; a task call in progress is
    /// finished), then releases the leases. Idempotent.
    void stop();

    /// One pass of every task over every queue, for `mqctl maintenance run --once`: takes
    /// each shard's lease for the pass and releases it after; shards held by running
    /// instances are skipped (they do that work). Runs on the caller's thread and throws
    /// on backend errors (BackendUnavailable) before or between shards.
    MaintenancePass run_once();

    /// Re-read the queue list now (e.g. on a config-change notification) instead of at the
    /// next refresh interval. Thread-safe, cheap, coalesced; a no-op when stopped.
    void refresh_queues();

    MaintenanceStats stats() const;
    /// The lease owner value this instance writes ("<instance>:<random>").
    const std::string& owner() const { return owner_; }
    /// Whether this instance holds `shard`'s lease now (by its local validity).
    bool holds(int shard) const;

  private:
    struct Task;
    struct Outage;

    void lease_loop();
    void refresh_loop();
    void mover_loop(Task& task);
    void task_loop(Task& task);
    int lease_round(redis::Connection& redis);  // -> live instances
    void release_all();
    std::int64_t move_held(redis::Connection& redis);
    std::shared_ptr<const std::vector<Queue>> queues() const;
    bool sleep_for(std::chrono::milliseconds d);  // false when stopping
    std::unique_ptr<redis::Connection> connect_redis() const;
    void backend_failed(redis::Connection* redis, const std::exception& e,
                        const std::string& doing);
    void backend_ok(bool redis, bool postgres);

    MaintenanceOptions options_;
    std::string owner_;
    std::vector<std::unique_ptr<Task>> tasks_;
    std::vector<std::thread> threads_;

    mutable std::mutex mutex_;  // queues_, wake_
    std::condition_variable wake_;
    std::shared_ptr<const std::vector<Queue>> queues_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> refresh_requested_{false};
    bool started_ = false;

    // Local lease validity per shard (and the global lease last), steady_clock ns; 0: not held.
    std::unique_ptr<std::atomic<std::int64_t>[]> valid_until_;
    std::atomic<std::int64_t> moved_{0};
    std::atomic<std::int64_t> archived_{0};
    std::atomic<std::int64_t> task_errors_{0};
    std::atomic<std::int64_t> lease_losses_{0};
    std::atomic<int> instances_{0};
    std::atomic<std::int64_t> queue_count_{0};
    std::unique_ptr<Outage> redis_outage_;
    std::unique_ptr<Outage> pg_outage_;
};

}  // namespace mq
