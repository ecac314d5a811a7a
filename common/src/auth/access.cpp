#include "mq/auth/access.hpp"

#include <algorithm>
#include <array>

#include "mq/queue/catalog.hpp"

namespace mq {

namespace {

constexpr std::size_t kRoles = 4;
constexpr std::size_t kActions = 11;

/// The role matrix, written once. Columns: admin, tenant-admin, producer, consumer.
/// Every role acts only inside its own tenant; kMonitorAll is the one global action.
struct MatrixRow {
    Action action;
    std::string_view name;
    std::array<bool, kRoles> allowed;
};
// clang-format off: a table reads better aligned
constexpr std::array<MatrixRow, kActions> kMatrix{{
    //                                                         admin  t-admin producer consumer
    {Action::kReadQueues, "read-queues", {true, true, true, true}},
    {Action::kManageQueues, "manage-queues", {true, true, false, false}},
    {Action::kPublish, "publish", {true, true, true, false}},
    {Action::kReadSubscriptions, "read-subscriptions", {true, true, false, true}},
    {Action::kManageSubscriptions, "manage-subscriptions", {true, true, false, false}},
    {Action::kConsume, "consume", {true, true, false, true}},
    {Action::kMonitor, "monitor", {true, true, true, true}},
    {Action::kMonitorAll, "monitor-all", {true, false, false, false}},
    {Action::kManageDeadLetters, "manage-dead-letters", {true, true, false, false}},
    {Action::kReadAudit, "read-audit", {true, true, false, false}},
    {Action::kReadAuditAll, "read-audit-all", {true, false, false, false}},
}};
// clang-format on

const MatrixRow& row_of(Action action) {
    for (const auto& row : kMatrix)
        if (row.action == action) return row;
    return kMatrix.back();  // unreachable: every Action has a row (checked in auth_test)
}

bool listed(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

Error not_allowed(const Principal& p, const Queue& q, std::string_view verb,
                  std::string_view list) {
    return Error(ErrorCode::kForbidden,
                 "principal '" + p.name + "' may not " + std::string(verb) + " queue '" + q.name +
                     "': it is not in the queue's " + std::string(list),
                 {{"queue", q.name}, {"principal", p.name}});
}

}  // namespace

std::string_view action_name(Action action) { return row_of(action).name; }

bool role_allows(Role role, Action action) {
    return row_of(action).allowed[static_cast<std::size_t>(role)];
}

void authorize(const Principal& principal, Action action) {
    if (!role_allows(principal.role, action))
        throw Error(ErrorCode::kForbidden,
                    "role '" + std::string(role_name(principal.role)) + "' may not " +
                        std::string(action_name(action)),
                    {{"role", std::string(role_name(principal.role))},
                     {"action", std::string(action_name(action))}});
}

void check_claimed_tenant(const Principal& principal, std::string_view claimed) {
    if (claimed == principal.tenant) return;
    throw Error(ErrorCode::kForbidden, "tenantId must name the tenant of the token");
}

void authorize_publish(const Principal& principal, const Queue& queue) {
    authorize(principal, Action::kPublish);
    if (queue.tenant != principal.tenant) throw queue_not_found(principal.tenant, queue.name);
    if (principal.role == Role::kAdmin || queue.allowed_producers.empty()) return;
    if (!listed(queue.allowed_producers, principal.name))
        throw not_allowed(principal, queue, "publish to", "allowed_producers");
}

std::string foreign_principal_entry(const Principal& principal) {
    return principal.tenant + kForeignPrincipalSeparator + principal.name;
}

void authorize_consume(const Principal& principal, const Queue& queue) {
    authorize(principal, Action::kConsume);
    if (queue.tenant != principal.tenant) {
        if (!queue.is_public) throw queue_not_found(principal.tenant, queue.name);
        // The owner's list names other tenants' principals as "<tenant>/<principal>"; no
        // role of another tenant bypasses it (its admin is not the owner's admin).
        if (queue.allowed_consumers.empty() ||
            listed(queue.allowed_consumers, foreign_principal_entry(principal)))
            return;
        throw Error(ErrorCode::kForbidden,
                    "principal '" + principal.name + "' of tenant '" + principal.tenant +
                        "' may not consume from queue '" + queue.name +
                        "': the queue's allowed_consumers does not list '" +
                        foreign_principal_entry(principal) + "'",
                    {{"queue", queue.name}, {"principal", principal.name}});
    }
    if (principal.role == Role::kAdmin || queue.allowed_consumers.empty()) return;
    if (!listed(queue.allowed_consumers, principal.name))
        throw not_allowed(principal, queue, "consume from", "allowed_consumers");
}

}  // namespace mq
