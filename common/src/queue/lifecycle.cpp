#include "mq/queue/lifecycle.hpp"

#include "mq/audit/audit_log.hpp"

namespace mq {

DeletedQueue delete_queue(Catalog& catalog, QueueStreams& streams, const std::string& tenant,
                          const std::string& name, bool force) {
    auto q = catalog.find_queue(tenant, name, /*include_deleting=*/true);
    if (!q)
        throw Error(ErrorCode::kQueueNotFound,
                    "queue '" + name + "' not found in tenant '" + tenant + "'", {{"queue", name}});
    DeletedQueue out{*q, catalog.subscription_count(*q), 0};
    if (out.subscriptions > 0 && !force)
        throw Error(ErrorCode::kConflict,
                    "queue '" + name + "' has " + std::to_string(out.subscriptions) +
                        " subscription(s); delete them first or pass --force to delete them too",
                    {{"queue", name}, {"subscriptions", out.subscriptions}});
    catalog.mark_deleting(*q);
    out.keys_removed = streams.drop(*q);
    catalog.delete_queue_row(
        *q, {{"deleted", true}, {"subscriptions_deleted", out.subscriptions}, {"force", force}});
    return out;
}

QueueStreams::Purged purge_queue(pg::Database& db, QueueStreams& streams, const Queue& queue) {
    return audit::run_recorded(
        db, {queue.tenant, "queue.purge", "queue", queue.name, nullptr, nullptr},
        [&] { return streams.purge(queue); },
        [](const QueueStreams::Purged& p) {
            return nlohmann::json{
                {"purged", p.entries + p.delayed}, {"entries", p.entries}, {"delayed", p.delayed}};
        });
}

}  // namespace mq
