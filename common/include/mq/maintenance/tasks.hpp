#pragma once

#include <memory>
#include <string>

#include "mq/config/config.hpp"
#include "mq/maintenance/service.hpp"

namespace mq {

/// The maintenance service as mq-api, mq-worker and `mqctl maintenance run` run it, wired
/// here once so the three processes do the same work: the built-in delayed mover and
/// dead-letter archiver, the retention trimmer (every second per queue; off with
/// RETENTION_TRIM=off), the PostgreSQL dead-letter archive's retention (every 10 minutes)
/// and the cron schedule ticker (every second, one instance). `instance` names the process
/// in lease values and logs (e.g. "mq-api@host-42"). Not started. Throws ValidationError
/// when MQ_KEYRING_FILE is set but cannot be loaded.
std::unique_ptr<MaintenanceService> make_maintenance_service(const Config& config,
                                                             std::string instance);

}  // namespace mq
