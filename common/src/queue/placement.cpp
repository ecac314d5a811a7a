#include "mq/queue/placement.hpp"

#include "mq/redis/cluster.hpp"

namespace mq {

std::vector<PartitionPlacement> partition_placement(redis::Connection& redis, const KeyLayout& keys,
                                                    const Queue& queue) {
    std::vector<PartitionPlacement> out;
    for (int p = 0; p < queue.partition_count; ++p) {
        const std::string stream = keys.stream(queue.tenant, queue.name, p);
        out.push_back({p, redis::key_slot(stream), redis.node_of(stream).describe()});
    }
    return out;
}

}  // namespace mq
