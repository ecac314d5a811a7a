#pragma once

// The transactional outbox (docs/outbox.md): a service adds messages to mq.outbox with
// mq.enqueue() in the transaction of its own write; a relay publishes committed rows in id
// order through the publish use case and deletes them once Redis accepted them.

#include <prometheus/metric_family.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mq/config/config.hpp"
#include "mq/core/keys.hpp"
#include "mq/crypto/keyring.hpp"
#include "mq/pg/database.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// The channel mq.outbox's trigger notifies when an inserting transaction commits.
inline constexpr const char* kOutboxChannel = "mq_outbox";

/// One row of mq.outbox as `mqctl outbox list` shows it (the payload only by its size).
struct OutboxRow {
    std::int64_t id = 0;
    std::string tenant;  ///< empty: the source's
    std::string queue;
    std::int64_t payload_bytes = 0;
    std::string key;
    std::string created_at;  ///< RFC 3339
    int attempts = 0;
    std::string next_attempt_at;  ///< empty: now
    std::string failed_at;        ///< empty: pending
    std::string last_error;
};

/// How many rows wait, how many failed, and the age of the oldest pending one.
struct OutboxCounts {
    std::int64_t pending = 0;
    std::int64_t failed = 0;
    std::int64_t oldest_pending_age_ms = 0;  ///< 0 when nothing is pending
};

/// mq.outbox of one database (a service's own, or mq's), for operators. Every call is
/// one transaction.
class OutboxStore {
  public:
    explicit OutboxStore(pg::Database& db) : db_(db) {}

    /// Applies the outbox SQL (migration 011, idempotent) to this database: schema mq, the
    /// table, the trigger and mq.enqueue(). Nothing else of mq's schema.
    void install();
    /// Throws NotFound when mq.outbox does not exist here ("run mqctl outbox install").
    void require_installed();
    /// Rows in id order after `after_id`, at most `limit` (1-1000); only failed ones when
    /// `failed_only`.
    std::vector<OutboxRow> list(bool failed_only, std::int64_t after_id, int limit);
    /// Makes failed rows pending again (attempts reset) and wakes the relays; `ids` empty
    /// means every failed row. Returns how many rows changed; an id that is not a failed
    /// row is not counted.
    std::int64_t retry(const std::vector<std::int64_t>& ids);
    /// Deletes failed rows (`ids` empty: all of them) and returns how many.
    std::int64_t discard(const std::vector<std::int64_t>& ids);
    OutboxCounts counts();

  private:
    pg::Database& db_;
};

/// What a relay needs: where rows come from and where they go.
struct OutboxRelayOptions {
    OutboxSource source;       ///< its database and the tenant its rows publish as
    std::string database_url;  ///< mq's own database (queue catalog)
    redis::Endpoint redis;
    KeyLayout keys;
    PublishLimits limits;
    std::string keyring_file;  ///< for encrypted queues; empty: none (such rows fail)
    int batch_size = 100;
    std::chrono::milliseconds poll_interval{1000};     ///< without a notification
    std::chrono::milliseconds max_backoff{5000};       ///< longest pause while a backend is down
    std::chrono::milliseconds queue_full_retry{1000};  ///< a row refused as QUEUE_FULL waits
};

/// What one batch (or a drain) did.
struct OutboxPass {
    std::int64_t claimed = 0;
    std::int64_t relayed = 0;     ///< stored in Redis (including duplicates) and deleted
    std::int64_t duplicates = 0;  ///< of relayed: already published (a relay died after XADD)
    std::int64_t failed = 0;      ///< marked failed: cannot be published as they are
    std::int64_t deferred = 0;    ///< queue full: retried later
};

/// A relay's counters, for metrics; a snapshot.
struct OutboxRelayStats {
    std::string tenant;
    std::string source;  ///< host:port/db of the source database (never a password)
    std::int64_t relayed = 0;
    std::int64_t failed = 0;
    std::int64_t deferred = 0;
    std::int64_t errors = 0;  ///< batches that failed on a backend
    OutboxCounts counts;      ///< as of the last look (at most a second old while running)
    bool up = false;          ///< the last batch reached both backends
};

/// Moves committed rows of one source's mq.outbox to their queues. A batch claims up to
/// batch_size due rows in id order (FOR UPDATE SKIP LOCKED, so several relays share a
/// source without publishing a row twice at once), admits and publishes them per queue
/// through PublishUseCase and Publisher with idempotency key "outbox-<db id>-<row id>",
/// then, in the same transaction, deletes the published rows, marks the unpublishable
/// ones failed (unknown queue, refused payload, other tenant) and delays the QUEUE_FULL
/// ones. A backend failure rolls the batch back: rows stay, and a row Redis already stored
/// is found a duplicate on the next try (within the queue's dedup window).
///
/// start() runs it on a thread: LISTEN mq_outbox wakes it at once, polling every
/// poll_interval is the safety net, a backend outage is retried with backoff and logged
/// once. Not copyable; stop() (or the destructor) joins.
class OutboxRelay {
  public:
    explicit OutboxRelay(OutboxRelayOptions options);
    ~OutboxRelay();
    OutboxRelay(const OutboxRelay&) = delete;
    OutboxRelay& operator=(const OutboxRelay&) = delete;

    /// One batch on the caller's thread. Throws BackendUnavailable (nothing changed then).
    OutboxPass relay_batch();
    /// Batches until no due row is left (`mqctl outbox relay --once`). Throws as
    /// relay_batch(); what earlier batches did stays done.
    OutboxPass drain();

    void start();
    /// Stops promptly (a batch in progress is finished). Idempotent.
    void stop();
    OutboxRelayStats stats() const;

  private:
    struct Backends;
    struct Listener;
    void loop();
    bool wait(std::chrono::milliseconds d, Listener* listener);  // false when stopping
    void refresh_counts(bool force);

    OutboxRelayOptions options_;
    std::shared_ptr<const Keyring> keyring_;  // loaded at construction: a bad file fails fast
    std::unique_ptr<Backends> backends_;      // connected on first use
    std::thread thread_;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mu_;  // wake_, counts_
    std::condition_variable wake_;
    OutboxCounts counts_;
    std::chrono::steady_clock::time_point counts_at_{};
    std::atomic<std::int64_t> relayed_{0};
    std::atomic<std::int64_t> failed_{0};
    std::atomic<std::int64_t> deferred_{0};
    std::atomic<std::int64_t> errors_{0};
    std::atomic<bool> up_{false};
};

/// One relay per configured source (config.outbox.sources), not started.
std::vector<std::unique_ptr<OutboxRelay>> make_outbox_relays(const Config& config);

/// mq_outbox_* families (docs/metrics.md) of `relays`, labelled by tenant and source.
std::vector<prometheus::MetricFamily> outbox_families(
    const std::vector<std::unique_ptr<OutboxRelay>>& relays);

}  // namespace mq
