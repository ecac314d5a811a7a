#include "mq/worker/worker_reload.hpp"

#include <map>

#include "mq/config/changed_settings.hpp"
#include "mq/worker/supervisor.hpp"

namespace mq {

ReconcilePlan declare_worker_subscriptions(const WorkerConfig& config, bool adopt, pg::Database& db,
                                           redis::Connection& redis) {
    SubscriptionDeclaration decl;
    decl.tenant = config.base.tenant;
    decl.owner = kWorkerOwner;
    decl.adopt = adopt;
    for (std::size_t i = 0; i < config.subscriptions.size(); ++i)
        decl.entries.push_back(
            {config.subscriptions[i], i < config.where.size() ? config.where[i] : ""});
    decl.conflict_hint = [](std::size_t n) {
        const char* them = n == 1 ? "it" : "them";
        return std::string("Rename ") + them +
               " in the worker file, or start with --adopt to take " + them + " over";
    };
    SubscriptionReconciler reconciler(db);
    auto plan = reconciler.plan(decl);
    reconciler.apply(plan, redis, KeyLayout(config.base.key_prefix));
    return plan;
}

WorkerReload plan_worker_reload(const WorkerConfig& running, const WorkerConfig& next) {
    WorkerReload r;
    for (auto& name : changed_settings(running.base, next.base)) {
        if (name == "LOG_LEVEL")
            r.log_level = next.base.log_level;
        else
            r.needs_restart.push_back(std::move(name));
    }
    // Everything but the subscriptions and the log level stays as it runs.
    r.config = running;
    r.config.base.log_level = next.base.log_level;
    r.config.subscriptions.clear();
    r.config.where = next.where;
    std::map<std::string, const Subscription*> before;
    for (const auto& s : running.subscriptions) before[subscription_key(s)] = &s;
    for (auto s : next.subscriptions) {
        s.tenant = running.base.tenant;  // MQ_TENANT needs a restart: the running one holds
        const std::string name = s.queue + "/" + s.name;
        auto it = before.find(subscription_key(s));
        if (it == before.end())
            r.added.push_back(name);
        else if (declared_settings(*it->second) != declared_settings(s))
            r.changed.push_back(name);
        else
            ++r.unchanged;
        if (it != before.end()) before.erase(it);
        r.config.subscriptions.push_back(std::move(s));
    }
    for (const auto& [key, s] : before) r.removed.push_back(s->queue + "/" + s->name);
    return r;
}

}  // namespace mq
