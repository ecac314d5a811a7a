#include "mq/consume/control.hpp"

namespace mq {

std::string control_channel(const KeyLayout& keys) { return keys.prefix() + "control"; }

std::int64_t announce(redis::Connection& redis, const KeyLayout& keys, const std::string& event,
                      const std::string& tenant, const std::string& queue, const std::string& subscription,
                      const std::string& queue_tenant) {
    nlohmann::json msg = {{"event", event},
                          {"tenant", tenant},
                          {"queue", queue},
                          {"subscription", subscription},
                          {"queue_tenant", queue_tenant.empty() ? tenant : queue_tenant}};
    return redis.command({"PUBLISH", control_channel(keys), msg.dump()}).as_integer();
}

}  // namespace mq
