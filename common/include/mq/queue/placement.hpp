#pragma once

// Where the partitions of a queue live on Redis: the hash-tag slot of each partition and,
// on a Redis Cluster, the master that serves it (`mqctl queue show`, docs/cluster.md).

#include <string>
#include <vector>

#include "mq/core/keys.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// One partition's place: its slot (CRC16 of `{tenant:queue:p}`, modulo 16384) and the node
/// serving that slot ("host:port"; on a single Redis, that server).
struct PartitionPlacement {
    int partition = 0;
    int slot = 0;
    std::string node;
};

/// The place of every partition of `queue`, partition order. Reads the slot map of a
/// cluster (one round trip); asks nothing of a single Redis.
std::vector<PartitionPlacement> partition_placement(redis::Connection& redis, const KeyLayout& keys,
                                                    const Queue& queue);

}  // namespace mq
