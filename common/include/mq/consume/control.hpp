#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "mq/core/keys.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// The Redis Pub/Sub channel running workers listen on for control events (pause,
/// resume, config change), so they react within a second without polling PostgreSQL.
std::string control_channel(const KeyLayout& keys);

/// PUBLISH {"event": "pause"|"resume"|"changed"|"deleted", "tenant", "queue",
/// "subscription", "queue_tenant"}: `tenant` is the subscriber's, `queue_tenant` the
/// queue's owner (empty: `tenant`). Returns how many listeners got it. Workers also
/// re-read state on start, so an event nobody heard is not lost.
std::int64_t announce(redis::Connection& redis, const KeyLayout& keys, const std::string& event,
                      const std::string& tenant, const std::string& queue,
                      const std::string& subscription, const std::string& queue_tenant = {});

/// PUBLISH {"event": "queue_changed", "tenant", "queue", "queue_tenant"} (tenant and
/// queue_tenant both the queue's owner): a queue's settings changed (e.g. partitions
/// added); workers restart the runners of its subscriptions.
std::int64_t announce_queue_changed(redis::Connection& redis, const KeyLayout& keys,
                                    const std::string& tenant, const std::string& queue);

/// A control event as a listener reads it; `valid` is false for a message that is not
/// a JSON object with a known event and string fields (it is ignored).
struct ControlEvent {
    bool valid = false;
    std::string event;  ///< pause | resume | changed | deleted | queue_changed
    std::string tenant;
    std::string queue;
    std::string subscription;  ///< empty for queue_changed
    std::string queue_tenant;  ///< never empty once parsed: defaults to tenant
};
ControlEvent parse_control_event(const std::string& text);

}  // namespace mq
