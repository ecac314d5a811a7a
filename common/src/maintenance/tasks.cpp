#include "mq/maintenance/tasks.hpp"

namespace mq {

std::unique_ptr<MaintenanceService> make_maintenance_service(const Config& config,
                                                             std::string instance) {
    const KeyLayout keys(config.key_prefix);
    MaintenanceOptions o;
    o.redis = redis::parse_url(config.redis_url);
    o.database_url = config.database_url;
    o.keys = keys;
    o.instance = std::move(instance);
    auto service = std::make_unique<MaintenanceService>(std::move(o));
    // Plugged tasks go here, one add_queue_task/add_global_task line each, capturing
    // `keys` and `config` by value (see tasks.hpp and docs/maintenance.md).
    return service;
}

}  // namespace mq
