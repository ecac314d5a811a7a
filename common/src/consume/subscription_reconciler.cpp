#include "mq/consume/subscription_reconciler.hpp"

#include <algorithm>
#include <set>

#include "mq/consume/subscription_catalog.hpp"
#include "mq/consume/subscription_lifecycle.hpp"
#include "mq/error.hpp"
#include "mq/queue/catalog.hpp"

namespace mq {

using nlohmann::json;

namespace {

void diff_into(const std::string& prefix, const json& from, const json& to,
               std::vector<SettingChange>& out) {
    if (from.is_object() && to.is_object()) {
        std::set<std::string> keys;
        for (const auto& [k, v] : from.items()) keys.insert(k);
        for (const auto& [k, v] : to.items()) keys.insert(k);
        for (const auto& k : keys) {
            const json none;
            diff_into(prefix.empty() ? k : prefix + "." + k, from.contains(k) ? from[k] : none,
                      to.contains(k) ? to[k] : none, out);
        }
        return;
    }
    if (from != to) out.push_back({prefix, from, to});
}

std::string owner_text(const std::string& managed_by) {
    return managed_by.empty() ? "nobody (made by hand or through the API)" : "'" + managed_by + "'";
}

}  // namespace

std::string apply_owner(const std::string& scope) { return "apply:" + scope; }

const char* action_name(ReconcileAction a) {
    switch (a) {
        case ReconcileAction::kCreate:
            return "create";
        case ReconcileAction::kUpdate:
            return "update";
        case ReconcileAction::kUnchanged:
            return "unchanged";
        case ReconcileAction::kDelete:
            return "delete";
    }
    return "?";
}

int ReconcilePlan::count(ReconcileAction a) const {
    return static_cast<int>(
        std::count_if(steps.begin(), steps.end(), [a](const auto& s) { return s.action == a; }));
}

int ReconcilePlan::blocked() const {
    return static_cast<int>(std::count_if(
        steps.begin(), steps.end(), [](const ReconcileStep& s) { return !s.blocked.empty(); }));
}

int ReconcilePlan::changes() const {
    return count(ReconcileAction::kCreate) + count(ReconcileAction::kUpdate) +
           count(ReconcileAction::kDelete);
}

json declared_settings(const Subscription& s) {
    json j = to_json(s);
    for (const char* k : {"id", "tenant", "created_at", "updated_at", "status", "managed_by",
                          "origin", "created_by"})
        j.erase(k);
    return j;
}

ReconcilePlan SubscriptionReconciler::plan(const SubscriptionDeclaration& d) {
    ReconcilePlan out;
    Catalog catalog(db_);
    std::vector<std::string> missing;
    for (const auto& e : d.entries) {
        if (out.queues.count(e.sub.queue)) continue;
        if (auto q = catalog.find_queue(d.tenant, e.sub.queue))
            out.queues.emplace(e.sub.queue, *q);
        else if (std::find(missing.begin(), missing.end(), e.sub.queue) == missing.end())
            missing.push_back(e.sub.queue);
    }
    if (!missing.empty() && !d.report_conflicts) {
        std::string names, where;
        for (const auto& q : missing) names += (names.empty() ? "'" : ", '") + q + "'";
        for (const auto& e : d.entries)
            if (std::find(missing.begin(), missing.end(), e.sub.queue) != missing.end()) {
                where = e.where;
                break;
            }
        throw Error(ErrorCode::kQueueNotFound,
                    (where.empty() ? "" : where + ": ") + "queue " + names +
                        " not found in tenant '" + d.tenant +
                        "'; nothing was applied. Create it first: mqctl queue create " +
                        missing.front(),
                    {{"queues", missing}, {"tenant", d.tenant}});
    }

    std::map<std::pair<std::string, std::string>, Subscription> stored;
    for (auto& s : SubscriptionCatalog(db_).list(d.tenant))
        if (!is_cross_tenant(s))  // declarations name the tenant's own queues only
            stored.emplace(std::make_pair(s.queue, s.name), s);

    std::vector<std::string> conflicts;
    std::set<std::pair<std::string, std::string>> listed;
    for (const auto& e : d.entries) {
        const auto key = std::make_pair(e.sub.queue, e.sub.name);
        listed.insert(key);
        auto it = stored.find(key);
        if (it == stored.end()) {
            Subscription want = e.sub;
            want.managed_by = d.owner;
            want.origin = kOriginOperator;  // the declaration is an operator's file
            want.created_by = d.owner;
            ReconcileStep step{ReconcileAction::kCreate, want, e.where, {}, {}};
            if (std::find(missing.begin(), missing.end(), e.sub.queue) != missing.end())
                step.blocked = "queue '" + e.sub.queue + "' not found in tenant '" + d.tenant +
                               "' (mqctl queue create " + e.sub.queue + ")";
            out.steps.push_back(std::move(step));
            continue;
        }
        const Subscription& have = it->second;
        Subscription want = e.sub;
        want.id = have.id;
        want.status = have.status;  // operators pause at run time; a declaration leaves it
        want.created_at = have.created_at;
        want.managed_by = d.owner;
        want.origin = kOriginOperator;
        want.created_by = d.owner;
        ReconcileStep step{ReconcileAction::kUnchanged, want, e.where, {}, {}};
        diff_into("", declared_settings(have), declared_settings(want), step.changes);
        // A handler set through the API (or before origins were recorded) that the file
        // declares as it is becomes the operator's: what runs is what the file says.
        if (have.origin != kOriginOperator)
            step.changes.push_back({"origin", have.origin, kOriginOperator});
        if (have.managed_by != d.owner) {
            if (!d.adopt && d.report_conflicts)
                step.blocked = "owned by " + owner_text(have.managed_by) +
                               (d.conflict_hint ? "; " + d.conflict_hint(1) : std::string());
            else if (!d.adopt)
                conflicts.push_back((e.where.empty() ? "" : e.where + ": ") + e.sub.queue + "/" +
                                    e.sub.name + " is owned by " + owner_text(have.managed_by));
            step.changes.push_back(
                {"managed_by", have.managed_by.empty() ? json() : json(have.managed_by), d.owner});
        }
        if (!step.changes.empty()) step.action = ReconcileAction::kUpdate;
        out.steps.push_back(std::move(step));
    }
    if (!conflicts.empty()) {
        std::string text;
        for (const auto& c : conflicts) text += (text.empty() ? "" : "; ") + c;
        text += "; nothing was applied";
        if (d.conflict_hint) text += ". " + d.conflict_hint(conflicts.size());
        throw Error(ErrorCode::kConflict, text, {{"conflicts", conflicts}});
    }
    if (d.prune)
        for (const auto& [key, s] : stored)
            if (s.managed_by == d.owner && !listed.count(key))
                out.steps.push_back({ReconcileAction::kDelete, s, "", {}, {}});
    return out;
}

void SubscriptionReconciler::apply(const ReconcilePlan& plan, redis::Connection& redis,
                                   const KeyLayout& keys) {
    // A dry run's plan may carry blocked steps; it is for showing, never for carrying out.
    if (plan.blocked() > 0)
        throw Error(ErrorCode::kConflict, "the plan has " + std::to_string(plan.blocked()) +
                                              " blocked step(s); nothing was applied");
    SubscriptionCatalog subs(db_);
    for (const auto& s : plan.steps) {
        const std::string id = s.sub.queue + "/" + s.sub.name;
        if (s.action == ReconcileAction::kCreate) {
            auto created = create_subscription(db_, redis, keys, plan.queues.at(s.sub.queue), s.sub)
                               .subscription;
            tell_workers(redis, keys, "changed", created, "created subscription " + id);
        } else if (s.action == ReconcileAction::kUpdate) {
            auto updated = subs.update(s.sub, /*vouch_for_handler=*/true);
            tell_workers(redis, keys, "changed", updated, "updated subscription " + id);
        } else if (s.action == ReconcileAction::kDelete) {
            delete_subscription(db_, redis, keys, s.sub);
            tell_workers(redis, keys, "deleted", s.sub, "deleted subscription " + id);
        }
    }
}

}  // namespace mq
