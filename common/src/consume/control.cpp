#include "mq/consume/control.hpp"

namespace mq {

std::string control_channel(const KeyLayout& keys) { return keys.prefix() + "control"; }

std::int64_t announce(redis::Connection& redis, const KeyLayout& keys, const std::string& event,
                      const std::string& tenant, const std::string& queue,
                      const std::string& subscription, const std::string& queue_tenant) {
    nlohmann::json msg = {{"event", event},
                          {"tenant", tenant},
                          {"queue", queue},
                          {"subscription", subscription},
                          {"queue_tenant", queue_tenant.empty() ? tenant : queue_tenant}};
    return redis.command({"PUBLISH", control_channel(keys), msg.dump()}).as_integer();
}

std::int64_t announce_queue_changed(redis::Connection& redis, const KeyLayout& keys,
                                    const std::string& tenant, const std::string& queue) {
    nlohmann::json msg = {{"event", "queue_changed"},
                          {"tenant", tenant},
                          {"queue", queue},
                          {"subscription", ""},
                          {"queue_tenant", tenant}};
    return redis.command({"PUBLISH", control_channel(keys), msg.dump()}).as_integer();
}

ControlEvent parse_control_event(const std::string& text) {
    ControlEvent e;
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) return e;
    auto str = [&](const char* field, std::string& out) {
        auto it = j.find(field);
        if (it == j.end()) return true;
        if (!it->is_string()) return false;
        out = it->get<std::string>();
        return true;
    };
    if (!str("event", e.event) || !str("tenant", e.tenant) || !str("queue", e.queue) ||
        !str("subscription", e.subscription) || !str("queue_tenant", e.queue_tenant))
        return e;
    if (e.queue_tenant.empty()) e.queue_tenant = e.tenant;
    static const char* const kEvents[] = {"pause", "resume", "changed", "deleted", "queue_changed"};
    for (const char* k : kEvents) e.valid = e.valid || e.event == k;
    e.valid = e.valid && !e.tenant.empty() && !e.queue.empty();
    return e;
}

}  // namespace mq
