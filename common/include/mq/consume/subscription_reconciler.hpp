#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mq/consume/subscription.hpp"
#include "mq/core/keys.hpp"
#include "mq/pg/database.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// Ownership model of declared subscriptions (docs/live-subscriptions.md): every row
/// carries `managed_by`, the owner that declared it:
///   - empty: made by hand (`mqctl sub create`) or through the REST API;
///   - "apply:<scope>": `mqctl apply -f` with that scope;
///   - "worker": a worker's YAML file (every worker file shares it).
/// A declaration creates what is missing and updates what its owner already owns. A
/// listed subscription owned by anyone else is a conflict: reported (Error kConflict, with
/// every conflict named), never silently overwritten, unless the caller adopts it. Prune
/// deletes only rows of the same owner that the declaration no longer lists. Status
/// (active/paused) is never declared: operators pause at run time.
inline constexpr const char* kWorkerOwner = "worker";
std::string apply_owner(const std::string& scope);

/// One subscription a declaration lists (tenant and managed_by filled in, validated).
struct DeclaredSubscription {
    Subscription sub;
    std::string where;  ///< file:line, for messages
};

struct SubscriptionDeclaration {
    std::string tenant;
    std::string owner;  ///< the managed_by value of what it creates and owns
    std::vector<DeclaredSubscription> entries;
    bool prune = false;  ///< delete the owner's rows that are not listed
    bool adopt = false;  ///< take over listed rows owned by someone else
    /// A dry run's plan: missing queues and conflicts are marked on their steps
    /// (ReconcileStep::blocked) instead of thrown, so the whole plan can be shown.
    bool report_conflicts = false;
    /// Appended to the conflict error, given how many conflicts there are (e.g. "Use
    /// --adopt to take it over for scope 'x'"); none when unset.
    std::function<std::string(std::size_t conflicts)> conflict_hint;
};

struct SettingChange {
    std::string field;  ///< "max_attempts", "handler.url", "managed_by"
    nlohmann::json from;
    nlohmann::json to;
};

enum class ReconcileAction { kCreate, kUpdate, kUnchanged, kDelete };
const char* action_name(ReconcileAction a);

struct ReconcileStep {
    ReconcileAction action;
    Subscription sub;   ///< the desired state; for kDelete the stored one
    std::string where;  ///< empty for kDelete
    std::vector<SettingChange> changes;
    /// Why the step cannot be carried out (owned by someone else, queue missing); empty
    /// when it can. Only set with SubscriptionDeclaration::report_conflicts.
    std::string blocked;
};

struct ReconcilePlan {
    std::vector<ReconcileStep> steps;
    std::map<std::string, Queue> queues;  ///< queue name -> queue, of the tenant
    int count(ReconcileAction a) const;
    int changes() const;  ///< creates + updates + deletes
    int blocked() const;  ///< steps that cannot be carried out (report_conflicts only)
};

/// The settings a declaration manages: everything but identity, timestamps, status and owner.
nlohmann::json declared_settings(const Subscription& s);

/// Plans and carries out a declaration; the one reconciler behind `mqctl apply` and the
/// worker's YAML registration.
class SubscriptionReconciler {
  public:
    explicit SubscriptionReconciler(pg::Database& db) : db_(db) {}

    /// Compares the declaration with PostgreSQL. Throws, with nothing changed,
    /// Error(kQueueNotFound) naming every missing queue, or Error(kConflict) naming every
    /// listed subscription owned by someone else (unless adopt).
    ReconcilePlan plan(const SubscriptionDeclaration& d);

    /// Creates (row and consumer groups), updates and deletes in plan order, announcing
    /// each change on the control channel so running workers follow at once. A failing
    /// step throws; the steps before it stay applied and the same declaration finishes it.
    void apply(const ReconcilePlan& plan, redis::Connection& redis, const KeyLayout& keys);

  private:
    pg::Database& db_;
};

}  // namespace mq
