#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "mq/core/keys.hpp"
#include "mq/pg/database.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/queue/catalog.hpp"
#include "mq/queue/payload_schema.hpp"
#include "mq/redis/client.hpp"
#include "mq/schedule/schedule_catalog.hpp"

namespace mq {

class Keyring;

/// Settings of a ScheduleTicker. Durations state what zero means where it matters.
struct TickerOptions {
    PublishLimits limits;  ///< as for any publish (MAX_MESSAGE_SIZE)
    /// A tick published at most this late counts as on time; older due ticks are "missed"
    /// and follow the schedule's misfire policy.
    std::chrono::milliseconds misfire_grace{60000};
    /// The dedup window of a tick's idempotency key is at least this long, whatever the
    /// queue's: it bounds how late a crash between publish and the PostgreSQL update can be
    /// repaired without a duplicate.
    std::chrono::milliseconds min_dedup_window{std::chrono::hours(24)};
    /// Keys for queues with encryption; nullptr: ticks to encrypted queues fail (logged).
    const Keyring* keyring = nullptr;
    std::size_t batch = 100;  ///< schedules handled per run_due() call at most
    /// Empty: every tenant's schedules. Set, only this tenant's (tests; sharding).
    std::string only_tenant;
};

/// Publishes the due ticks of every tenant's cron schedules. Each tick publishes at most
/// once across instances and restarts: its message carries the idempotency key
/// `schedule:<name>:<tick unix ms>` and the tick is then recorded with a compare-and-set
/// on next_tick_at in PostgreSQL. Meant to be called about once a second (under the
/// maintenance lease, though two tickers at once are safe too).
class ScheduleTicker {
  public:
    ScheduleTicker(pg::Database& db, redis::Connection& redis, KeyLayout keys,
                   TickerOptions options = {});

    /// Handles every schedule due at `now`; returns the messages this call stored (a tick
    /// another instance or an earlier run already published is not counted). Never throws for a
    /// backend outage: PostgreSQL or Redis down means no ticks now (logged once per outage) and
    /// catching up, per misfire policy, on a later call.
    std::int64_t run_due(std::chrono::system_clock::time_point now);

  private:
    bool tick(const Schedule& s, std::int64_t now_ms);
    PublishOutcome publish(const Schedule& s, std::int64_t tick_ms, std::int64_t missed);
    void backend_down(const char* which, bool& flag, const Error& e);

    ScheduleCatalog schedules_;
    Catalog queues_;
    Publisher publisher_;
    TickerOptions options_;
    std::shared_ptr<PayloadSchemaCache> schemas_ = std::make_shared<PayloadSchemaCache>();
    bool pg_down_ = false;
    bool redis_down_ = false;
};

/// The idempotency key of a schedule's tick: "schedule:<name>:<tick unix ms>".
std::string schedule_tick_key(const std::string& name, std::int64_t tick_ms);

}  // namespace mq
