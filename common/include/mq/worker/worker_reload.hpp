#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mq/consume/subscription_reconciler.hpp"
#include "mq/worker/worker_config.hpp"

namespace mq {

/// Declares a worker file's subscriptions in PostgreSQL as owner "worker" (the reconciler
/// behind `mqctl apply`): creates what is missing (row and consumer groups), updates what
/// the file changed, never deletes. A listed subscription owned by someone else is a
/// conflict (Error kConflict) unless `adopt`. Used at start and on every reload.
ReconcilePlan declare_worker_subscriptions(const WorkerConfig& config, bool adopt, pg::Database& db,
                                           redis::Connection& redis);

/// What re-reading the worker file (SIGHUP) changes in a running worker
/// (docs/operations.md, "Signals and health").
struct WorkerReload {
    /// The file's subscriptions from now on, tenant and owner those of the running worker.
    WorkerConfig config;
    std::vector<std::string> added;    ///< "queue/name" of subscriptions new in the file
    std::vector<std::string> changed;  ///< settings changed: they drain, then start again
    std::vector<std::string> removed;  ///< gone from the file: they stop after draining
    std::size_t unchanged = 0;         ///< keep running untouched
    /// Settings that changed but apply only at the next start (REDIS_URL, DATABASE_URL,
    /// metrics_port...): the running values stay.
    std::vector<std::string> needs_restart;
    /// LOG_LEVEL's new value when it changed (applied at once).
    std::optional<std::string> log_level;
};

/// Compares the running configuration with the re-read one (`next`, loaded and validated
/// like at start). Settings that need a restart keep their running values in the result.
WorkerReload plan_worker_reload(const WorkerConfig& running, const WorkerConfig& next);

}  // namespace mq
