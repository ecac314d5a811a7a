#include "mq/consume/queue_update.hpp"

#include "mq/consume/consumer.hpp"
#include "mq/consume/control.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/error.hpp"
#include "mq/queue/catalog.hpp"

namespace mq {

UpdatedQueue update_queue(pg::Database& db, const std::function<redis::Connection&()>& redis,
                          const KeyLayout& keys, const std::string& tenant, const std::string& name,
                          const QueueChanges& changes) {
    // Listed before the row lock (one connection, one transaction at a time); a
    // subscription created meanwhile is covered by the second pass below, and by the start
    // rule of ConsumerGroups::ensure() in any worker that runs it.
    std::vector<Subscription> subs;
    if (changes.partition_count)
        if (auto q = Catalog(db).find_queue(tenant, name))
            subs = SubscriptionCatalog(db).list_on_queue(*q);

    UpdatedQueue out;
    out.queue = Catalog(db).update_queue(
        tenant, name, changes, [&](const Queue& before, const Queue& after) {
            out.old_partitions = before.partition_count;
            if (after.partition_count <= before.partition_count) return;
            try {
                ConsumerGroups groups(redis(), keys);
                for (const auto& s : subs)
                    out.groups_created +=
                        groups.ensure_partitions(after, s, before.partition_count);
            } catch (const Error& e) {
                throw Error(ErrorCode::kBackendUnavailable,
                            "queue '" + name +
                                "' was not changed: cannot create the consumer groups on its new "
                                "partitions (" +
                                e.what() + "); run the command again once Redis is reachable");
            }
        });
    if (out.queue.partition_count <= out.old_partitions) return out;

    try {
        ConsumerGroups groups(redis(), keys);
        for (const auto& s : SubscriptionCatalog(db).list_on_queue(out.queue))
            out.groups_created += groups.ensure_partitions(out.queue, s, out.old_partitions);
        announce_queue_changed(redis(), keys, out.queue.tenant, out.queue.name);
    } catch (const Error& e) {
        out.workers_told = false;
        out.announce_error = e.what();
    }
    return out;
}

}  // namespace mq
