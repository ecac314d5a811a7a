#pragma once

#include <string_view>

#include "mq/auth/token.hpp"
#include "mq/queue/queue.hpp"

namespace mq {

/// What a request does, as far as roles are concerned.
enum class Action {
    kReadQueues,
    kManageQueues,
    kPublish,
    kReadSubscriptions,
    kManageSubscriptions,
    kConsume,
    kMonitor,     ///< metrics and status of the caller's own tenant
    kMonitorAll,  ///< global metrics/status across tenants
};

/// "read-queues", "manage-queues", ...: for messages and docs.
std::string_view action_name(Action action);

/// Whether `role` may perform `action` at all (the role matrix, docs/auth.md).
bool role_allows(Role role, Action action);

/// Throws Error(kForbidden) when the role may not perform the action at all.
void authorize(const Principal& principal, Action action);

/// Publishing to `queue`. Another tenant's queue throws exactly what a missing queue
/// throws (queue_not_found, 404); a principal missing from a non-empty allowed_producers
/// list gets Forbidden, except the admin role.
void authorize_publish(const Principal& principal, const Queue& queue);

/// Consuming from `queue` (pull, subscriptions on it). As authorize_publish with
/// allowed_consumers, except that an is_public queue may be consumed by a consumer,
/// tenant-admin or admin of any tenant (its allowed_consumers list binds only the owning
/// tenant's principals).
void authorize_consume(const Principal& principal, const Queue& queue);

}  // namespace mq
