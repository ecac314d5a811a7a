#include "mq/consume/subscription_lifecycle.hpp"

#include "mq/consume/consumer.hpp"
#include "mq/consume/control.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/deliver/exec.hpp"
#include "mq/deliver/log.hpp"
#include "mq/deliver/webhook.hpp"
#include "mq/error.hpp"
#include "mq/queue/catalog.hpp"

namespace mq {

void validate_handler_for_type(const Subscription& s) {
    if (s.type == "webhook") webhook_config_from_json(s.handler);
    if (s.type == "exec") exec_config_from_json(s.handler);
    if (s.type == "log") log_config_from_json(s.handler);
}

void authorize_api_handler(const Subscription& want, const Subscription* current,
                           const DestinationPolicy& policy) {
    auto refuse = [](const Subscription& s, const std::string& what) {
        throw Error(ErrorCode::kHandlerForbidden,
                    what + " subscription '" + s.name + "' " +
                        (s.type == "exec" ? "runs a command" : "writes to a file") +
                        " on worker hosts: only an operator can set such a handler (a worker's "
                        "YAML file, mqctl sub create/update or mqctl apply), never an API token",
                    {{"field", s.type == "exec" ? "type" : "handler"},
                     {"type", s.type},
                     {"subscription", s.name}});
    };
    if (current && is_operator_only(*current)) refuse(*current, "The");
    if (is_operator_only(want)) refuse(want, current ? "The changed" : "The new");
    const bool handler_new =
        !current || current->type != want.type || current->handler != want.handler;
    if (want.type == "webhook" && handler_new) {
        const auto& url = want.handler.is_object() ? want.handler.value("url", nlohmann::json())
                                                   : nlohmann::json();
        if (url.is_string()) policy.check_url(url.get<std::string>());
    }
}

CreatedSubscription create_subscription(pg::Database& db, redis::Connection& redis,
                                        const KeyLayout& keys, const Queue& queue,
                                        const Subscription& s) {
    SubscriptionCatalog subs(db);
    ConsumerGroups groups(redis, keys);  // Redis down: nothing stored yet

    // The groups are created inside the row's transaction: if Redis fails the row (and its
    // audit row) roll back, so nothing half-exists. A row without its groups would look
    // healthy but never deliver.
    CreatedSubscription out;
    bool creating_groups = false;
    try {
        out.subscription = subs.create(s, [&](const Subscription& created) {
            creating_groups = true;
            out.new_groups = groups.ensure(queue, created);
        });
    } catch (const std::exception&) {
        if (creating_groups) {
            try {
                groups.destroy(queue, consumer_group(s));
            } catch (const std::exception&) {
                // Redis is the failing side; groups it did create are harmless without a row.
            }
        }
        throw;
    }
    return out;
}

std::optional<Queue> delete_subscription(pg::Database& db, redis::Connection& redis,
                                         const KeyLayout& keys, const Subscription& s) {
    // A queue whose deletion was interrupted still has streams to clean.
    // Also a queue of another tenant that is no longer public: the group is still ours.
    auto q = Catalog(db).find_queue(queue_owner(s), s.queue, /*include_deleting=*/true);
    if (q) ConsumerGroups(redis, keys).destroy(*q, consumer_group(s));
    SubscriptionCatalog(db).remove(s.tenant, s.queue, s.name, queue_owner(s));
    return q;
}

// Repeating the command (or restarting the workers, which re-read state) makes a missed
// announcement take effect.
void tell_workers(redis::Connection& redis, const KeyLayout& keys, const std::string& event,
                  const Subscription& s, const std::string& done) {
    try {
        announce(redis, keys, event, s.tenant, s.queue, s.name, queue_owner(s));
    } catch (const Error& e) {
        throw Error(e.code(),
                    done + ", but running workers were not told (" + e.what() +
                        "); run the command again once Redis is reachable, or restart the workers",
                    e.details());
    }
}

}  // namespace mq
