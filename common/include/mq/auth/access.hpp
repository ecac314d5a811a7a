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
    kMonitor,            ///< metrics and status of the caller's own tenant
    kMonitorAll,         ///< global metrics/status across tenants
    kManageDeadLetters,  ///< list, show, replay and purge a queue's dead letters
    kReadAudit,          ///< the audit log of the caller's own tenant
    kReadAuditAll,       ///< the audit log of every tenant (?scope=all)
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

/// Separates tenant and principal in an allowed_consumers entry naming a principal of
/// another tenant ("globex/ledger"); tenant names never contain it.
inline constexpr char kForeignPrincipalSeparator = '/';
/// A body's "tenantId" (the seeds' clients send one), when it has one: accepted when it is
/// the caller's own tenant, otherwise (empty too) Error(kForbidden) with one message and no
/// details, the same
/// whether or not the named tenant exists, so the answer reveals nothing about it.
void check_claimed_tenant(const Principal& principal, std::string_view claimed);

/// "<tenant>/<principal name>": how a queue's allowed_consumers names `principal` when
/// the queue belongs to another tenant.
std::string foreign_principal_entry(const Principal& principal);

/// Consuming from `queue` (pull, subscriptions on it). As authorize_publish with
/// allowed_consumers, except that an is_public queue may be consumed by a consumer,
/// tenant-admin or admin of any tenant. For them a non-empty allowed_consumers must list
/// foreign_principal_entry(principal), whatever the role (Forbidden otherwise); plain
/// entries name the owning tenant's principals.
void authorize_consume(const Principal& principal, const Queue& queue);

}  // namespace mq
