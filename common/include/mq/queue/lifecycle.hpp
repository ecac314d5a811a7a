#pragma once

#include <string>

#include "mq/queue/catalog.hpp"
#include "mq/queue/streams.hpp"

namespace mq {

struct DeletedQueue {
    Queue queue;
    int subscriptions = 0;
    std::int64_t keys_removed = 0;
};

/// Deletes a queue across both stores. Refuses (Conflict) while subscriptions of its own
/// tenant exist unless `force`; other tenants' subscriptions on a public queue never block
/// it and are deleted with it. Order: mark 'deleting' (publishers now refuse it), remove the Redis
/// keys, then delete the row. A run interrupted half-way leaves a 'deleting' queue that
/// the same command finishes.
DeletedQueue delete_queue(Catalog& catalog, QueueStreams& streams, const std::string& tenant,
                          const std::string& name, bool force);

/// Removes every message of `queue` (streams, delayed entries), keeping the queue. An
/// action in Redis only: refused while PostgreSQL cannot record it in the audit log
/// (BackendUnavailable, nothing removed); recorded as "queue.purge" once done.
QueueStreams::Purged purge_queue(pg::Database& db, QueueStreams& streams, const Queue& queue);

}  // namespace mq
