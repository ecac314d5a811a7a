#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mq/consume/subscription.hpp"
#include "mq/pg/database.hpp"

namespace mq {

/// Subscriptions in PostgreSQL (message_subscriptions), scoped by tenant like queues.
class SubscriptionCatalog {
public:
    explicit SubscriptionCatalog(pg::Database& db) : db_(db) {}

    /// Inserts `s` (validated). QueueNotFound when its queue does not exist in the
    /// tenant; Conflict when the queue already has a subscription of that name.
    Subscription create(const Subscription& s);
    /// Replaces every setting of an existing subscription with those of `s`.
    Subscription update(const Subscription& s);
    std::vector<Subscription> list(const std::string& tenant, const std::string& queue = {});
    /// Active and paused subscriptions of the tenants (every tenant when empty).
    std::vector<Subscription> list_all(const std::vector<std::string>& tenants = {});
    std::optional<Subscription> find(const std::string& tenant, const std::string& queue,
                                     const std::string& name);
    /// Throws Error(kSubscriptionNotFound).
    Subscription get(const std::string& tenant, const std::string& queue, const std::string& name);
    /// By uuid, within the tenant: an id that is not a uuid, or another tenant's, is nullopt.
    std::optional<Subscription> find_by_id(const std::string& tenant, const std::string& id);
    /// Throws Error(kSubscriptionNotFound).
    Subscription get_by_id(const std::string& tenant, const std::string& id);
    /// Returns the deleted row; throws kSubscriptionNotFound.
    Subscription remove(const std::string& tenant, const std::string& queue, const std::string& name);
    /// "active" or "paused"; returns the updated subscription.
    Subscription set_status(const std::string& tenant, const std::string& queue,
                            const std::string& name, const std::string& status);

private:
    pg::Database& db_;
};

Error subscription_not_found(const std::string& tenant, const std::string& queue, const std::string& name);
Error subscription_id_not_found(const std::string& tenant, const std::string& id);

/// A uuid in its text form (8-4-4-4-12 hex digits, any case).
bool is_uuid_text(const std::string& text);

}  // namespace mq
