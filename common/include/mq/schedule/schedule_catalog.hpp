#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mq/pg/database.hpp"
#include "mq/schedule/schedule.hpp"

namespace mq {

/// The error for a schedule `name` that `tenant` cannot see, missing or another tenant's.
Error schedule_not_found(const std::string& tenant, const std::string& name);

/// Cron schedules in PostgreSQL (message_schedules), every query scoped by tenant except
/// the ticker's two. No NOTIFY: nothing caches schedules; the ticker reads due rows.
class ScheduleCatalog {
  public:
    explicit ScheduleCatalog(pg::Database& db) : db_(db) {}

    /// Inserts `spec` (validated by the caller) with its first tick after `now_ms`.
    /// Conflict when the name is taken in the tenant.
    Schedule create(const std::string& tenant, const ScheduleSpec& spec, std::int64_t now_ms);
    std::vector<Schedule> list(const std::string& tenant);
    std::optional<Schedule> find(const std::string& tenant, const std::string& name);
    /// Throws schedule_not_found.
    Schedule get(const std::string& tenant, const std::string& name);
    /// Applies `changes`; a new cron or time zone restarts the ticks after `now_ms`.
    Schedule update(const std::string& tenant, const std::string& name,
                    const ScheduleChanges& changes, std::int64_t now_ms);
    /// Pausing stops ticks; resuming starts again with the first tick after `now_ms` (ticks
    /// that fell in the pause are not published, whatever the misfire policy).
    Schedule set_paused(const std::string& tenant, const std::string& name, bool paused,
                        std::int64_t now_ms);
    /// Throws schedule_not_found.
    void remove(const std::string& tenant, const std::string& name);

    /// For the ticker: active schedules of every tenant with a tick due at `now_ms`,
    /// oldest tick first, at most `limit`; only `tenant`'s when it is not empty.
    std::vector<Schedule> due(std::int64_t now_ms, std::size_t limit,
                              const std::string& tenant = {});
    /// Compare-and-set after a tick: only when the row is still active with next tick
    /// `expected_next_ms` (another instance, an update or a pause did not move it). Returns
    /// whether this call moved it.
    bool record_tick(const std::string& id, std::int64_t expected_next_ms, std::int64_t tick_ms,
                     std::optional<std::int64_t> next_ms, const std::string& message_id,
                     const std::string& error);

  private:
    pg::Database& db_;
};

/// The create use case (mqctl and mq-api): validates `spec` against `limits`, requires its
/// queue in the tenant (QueueNotFound otherwise) and the payload to match the queue's
/// schema, then inserts. The caller checks who may publish to the queue.
Schedule create_schedule(pg::Database& db, const std::string& tenant, const ScheduleSpec& spec,
                         const PublishLimits& limits, std::int64_t now_ms);
/// The update use case: the same checks for what `changes` sets (a new queue must exist).
Schedule update_schedule(pg::Database& db, const std::string& tenant, const std::string& name,
                         const ScheduleChanges& changes, const PublishLimits& limits,
                         std::int64_t now_ms);

}  // namespace mq
