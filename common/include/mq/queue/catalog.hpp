#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mq/config/config.hpp"
#include "mq/pg/database.hpp"
#include "mq/queue/queue.hpp"

namespace mq {

/// A tenant row.
struct Tenant {
    std::string id;
    std::string display_name;
    std::string status;
    std::string created_at;
};

/// The error for a queue `name` that `tenant` cannot see, missing or another tenant's:
/// one message for both, so a 404 never tells whether the name exists elsewhere.
Error queue_not_found(const std::string& tenant, const std::string& name);

/// Tenants and queue configuration in PostgreSQL (tenants, message_topics). Every query
/// is scoped by tenant; another tenant's queue is indistinguishable from a missing one.
class Catalog {
  public:
    explicit Catalog(pg::Database& db) : db_(db) {}

    /// Creates a tenant; Conflict when it exists, unless `if_not_exists` (then false).
    bool create_tenant(const std::string& id, const std::string& display_name, bool if_not_exists);
    std::vector<Tenant> list_tenants();
    /// Throws NotFound naming the tenant and how to create it.
    void require_tenant(const std::string& id);

    /// Inserts a queue with defaults from `config` (schema, encryption, access lists and
    /// is_public stored as given). Conflict when the name is taken;
    /// NotFound when the tenant does not exist.
    Queue create_queue(const std::string& tenant, const QueueSpec& spec, const Config& config);
    std::vector<Queue> list_queues(const std::string& tenant);
    /// Every active queue of every tenant (for the delayed-entry mover).
    std::vector<Queue> all_queues();
    /// Throws QueueNotFound. Queues being deleted count as missing.
    Queue get_queue(const std::string& tenant, const std::string& name);
    /// By the queue's uuid, within the tenant. Throws QueueNotFound (also for a malformed id).
    Queue get_queue_by_id(const std::string& tenant, const std::string& id);
    /// `include_deleting` also finds a queue whose deletion was interrupted, to finish it.
    std::optional<Queue> find_queue(const std::string& tenant, const std::string& name,
                                    bool include_deleting = false);
    /// Applies `changes`; partition_count may only grow (fewer partitions would strand
    /// the entries of the removed ones). Returns the updated queue. Changing encryption
    /// affects new messages only: entries keep their "ek" and open with it.
    /// `before_commit` (when set) runs with the row locked, after the checks and before the
    /// commit, with the queue as it was and as it will be; if it throws, nothing changes.
    /// update_queue() in mq/consume/queue_update.hpp uses it to create consumer groups on
    /// new partitions before any publisher can route to them.
    Queue update_queue(
        const std::string& tenant, const std::string& name, const QueueChanges& changes,
        const std::function<void(const Queue& before, const Queue& after)>& before_commit = {});
    /// The owning tenant's subscriptions on the queue. Other tenants' subscriptions on a
    /// public queue are not counted: the owner cannot delete them, and they go with the
    /// queue (ON DELETE CASCADE).
    int subscription_count(const Queue& queue);
    /// Marks the queue 'deleting' so publishers refuse it while its data is removed.
    void mark_deleting(const Queue& queue);
    /// Deletes the row and records "queue.delete" (audit log) in the same transaction, with
    /// `outcome` (what else went: subscriptions, keys) as its "after".
    void delete_queue_row(const Queue& queue, const nlohmann::json& outcome = nullptr);

  private:
    pg::Database& db_;
};

}  // namespace mq
