#pragma once

#include <memory>
#include <string>

#include "mq/config/config.hpp"
#include "mq/maintenance/service.hpp"

namespace mq {

/// The maintenance service as mq-api, mq-worker and `mqctl maintenance run` run it: the
/// built-in delayed mover and dead-letter archiver plus every plugged task, wired here
/// once so the three processes do the same work. `instance` names the process in lease
/// values and logs (e.g. "mq-api@host-42"). Not started. A plugged task is one line:
///   service->add_queue_task("trim", 5s, [k = keys](redis::Connection& r, const Queue& q) {
///       Trimmer(r, k).trim(q); });
///   service->add_global_task("cron", 1s, [k = keys](redis::Connection& r, pg::Database& db) {
///       ScheduleTicker(db, r, k).run_due(std::chrono::system_clock::now()); });
std::unique_ptr<MaintenanceService> make_maintenance_service(const Config& config,
                                                             std::string instance);

}  // namespace mq
