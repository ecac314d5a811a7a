#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mq/consume/subscription.hpp"
#include "mq/pg/database.hpp"
#include "mq/queue/queue.hpp"

namespace mq {

/// Subscriptions in PostgreSQL (message_subscriptions), scoped by the subscriber's tenant.
/// A subscription is named by (tenant, queue, name) plus the queue's tenant, which is the
/// subscriber's own unless it subscribes to another tenant's public queue; an empty
/// `queue_tenant` below means `tenant`.
class SubscriptionCatalog {
  public:
    explicit SubscriptionCatalog(pg::Database& db) : db_(db) {}

    /// Inserts `s` (validated). QueueNotFound when its queue does not exist in the queue's
    /// tenant, or is another tenant's and not is_public; Conflict when the queue already
    /// has a subscription of that name in the subscriber's tenant. The consumer_group
    /// column records consumer_group(s).
    /// `before_commit` (when set) runs with the new row, inside the transaction: if it
    /// throws, nothing is stored. Records "subscription.create" in the audit log.
    Subscription create(const Subscription& s,
                        const std::function<void(const Subscription&)>& before_commit = {});
    /// Replaces every setting of an existing subscription with those of `s`. `s.origin` and
    /// `s.created_by` name the writer: stored when type or handler change, or when
    /// `vouch_for_handler` (an operator confirming the handler as it is); otherwise the
    /// stored ones stay.
    Subscription update(const Subscription& s, bool vouch_for_handler = false);
    /// The tenant's subscriptions, also those on other tenants' queues; `queue` (when not
    /// empty) names one of the tenant's own queues.
    std::vector<Subscription> list(const std::string& tenant, const std::string& queue = {});
    /// Active and paused subscriptions of the tenants (every tenant when empty).
    std::vector<Subscription> list_all(const std::vector<std::string>& tenants = {});
    /// Every subscription on `queue`, of every tenant: for keeping consumer groups in step
    /// with the queue (partitions added). Never to be shown to the queue's owner as is.
    std::vector<Subscription> list_on_queue(const Queue& queue);
    std::optional<Subscription> find(const std::string& tenant, const std::string& queue,
                                     const std::string& name, const std::string& queue_tenant = {});
    /// Throws Error(kSubscriptionNotFound).
    Subscription get(const std::string& tenant, const std::string& queue, const std::string& name,
                     const std::string& queue_tenant = {});
    /// By uuid, within the tenant: an id that is not a uuid, or another tenant's, is nullopt.
    std::optional<Subscription> find_by_id(const std::string& tenant, const std::string& id);
    /// Throws Error(kSubscriptionNotFound).
    Subscription get_by_id(const std::string& tenant, const std::string& id);
    /// Returns the deleted row; throws kSubscriptionNotFound.
    Subscription remove(const std::string& tenant, const std::string& queue,
                        const std::string& name, const std::string& queue_tenant = {});
    /// "active" or "paused"; returns the updated subscription.
    Subscription set_status(const std::string& tenant, const std::string& queue,
                            const std::string& name, const std::string& status,
                            const std::string& queue_tenant = {});

  private:
    pg::Database& db_;
};

Error subscription_not_found(const std::string& tenant, const std::string& queue,
                             const std::string& name);
Error subscription_id_not_found(const std::string& tenant, const std::string& id);

/// A uuid in its text form (8-4-4-4-12 hex digits, any case).
bool is_uuid_text(const std::string& text);

}  // namespace mq
