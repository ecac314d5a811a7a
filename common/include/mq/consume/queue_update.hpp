#pragma once

#include <functional>
#include <string>

#include "mq/core/keys.hpp"
#include "mq/pg/database.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// What update_queue() did.
struct UpdatedQueue {
    Queue queue;                 ///< as stored now
    int old_partitions = 0;      ///< partition_count before the update
    int groups_created = 0;      ///< consumer groups created on new partitions
    bool workers_told = true;    ///< false: the control event could not be published
    std::string announce_error;  ///< why, when !workers_told
};

/// The one way to change a queue's settings (`mqctl queue update`, PUT
/// /api/v1/mq/queues/{name}). Shrinking partitions is refused (ValidationError). Growing
/// them creates the consumer group of every subscription on the queue (of every tenant)
/// on each new partition at id 0, while the row is still locked and before the new
/// partition_count is committed, so no publisher routes a message to a partition that a
/// subscription would skip. Then it announces "queue_changed" on the control channel, so
/// running workers add fetchers for the new partitions at once (a worker that misses the
/// event picks the change up at its next full reconcile). Redis down while growing:
/// nothing changes (the error says so); Redis down only for the announcement: the update
/// stands and `workers_told` is false. `redis` is called only when partitions grow, so
/// other changes work while Redis is down.
UpdatedQueue update_queue(pg::Database& db, const std::function<redis::Connection&()>& redis,
                          const KeyLayout& keys, const std::string& tenant, const std::string& name,
                          const QueueChanges& changes);

}  // namespace mq
