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
                      const std::string& tenant, const std::string& queue, const std::string& subscription,
                      const std::string& queue_tenant = {});

}  // namespace mq
