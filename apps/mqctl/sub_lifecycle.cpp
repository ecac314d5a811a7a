#include "sub_lifecycle.hpp"

#include "mq/consume/consumer.hpp"
#include "mq/consume/control.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/deliver/exec.hpp"
#include "mq/deliver/webhook.hpp"
#include "mq/error.hpp"

namespace mqctl {

// (Belongs in mq::validate(const Subscription&); kept here until common/ does it.)
void validate_handler_for_type(const mq::Subscription& s) {
    if (s.type == "webhook") mq::webhook_config_from_json(s.handler);
    if (s.type == "exec") mq::exec_config_from_json(s.handler);
}

CreatedSubscription create_subscription(Context& ctx, const mq::Queue& queue,
                                        const mq::Subscription& s) {
    mq::SubscriptionCatalog subs(ctx.db());
    mq::ConsumerGroups groups(ctx.redis(), ctx.keys());  // Redis down: nothing stored yet

    CreatedSubscription out{subs.create(s), 0};
    const mq::Subscription& created = out.subscription;
    try {
        out.new_groups = groups.ensure(queue, created);
    } catch (const std::exception& e) {
        // Nothing may half-exist: a row without its groups looks healthy but never delivers.
        try {
            groups.destroy(queue, created.name);
        } catch (const std::exception&) {
            // Redis is the failing side; groups it did create are harmless without a row.
        }
        try {
            subs.remove(created.tenant, created.queue, created.name);
        } catch (const mq::Error& undo) {
            throw mq::Error(undo.code(),
                            std::string("cannot create the consumer groups (") + e.what() +
                                ") and cannot remove the new subscription row either (" +
                                undo.what() + "); remove it with: mqctl sub delete " +
                                created.queue + " " + created.name + " --yes");
        }
        throw;
    }
    return out;
}

std::optional<mq::Queue> delete_subscription(Context& ctx, const mq::Subscription& s) {
    // A queue whose deletion was interrupted still has streams to clean.
    auto q = mq::Catalog(ctx.db()).find_queue(s.tenant, s.queue, /*include_deleting=*/true);
    if (q) mq::ConsumerGroups(ctx.redis(), ctx.keys()).destroy(*q, s.name);
    mq::SubscriptionCatalog(ctx.db()).remove(s.tenant, s.queue, s.name);
    return q;
}

// Repeating the command (or restarting the workers, which re-read state) makes a missed
// announcement take effect.
void tell_workers(Context& ctx, const std::string& event, const mq::Subscription& s,
                  const std::string& done) {
    try {
        mq::announce(ctx.redis(), ctx.keys(), event, s.tenant, s.queue, s.name);
    } catch (const mq::Error& e) {
        throw mq::Error(
            e.code(),
            done + ", but running workers were not told (" + e.what() +
                "); run the command again once Redis is reachable, or restart the workers",
            e.details());
    }
}

}  // namespace mqctl
