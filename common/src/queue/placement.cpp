#include "mq/queue/placement.hpp"

#include "mq/redis/cluster.hpp"

namespace mq {

std::vector<PartitionPlacement> partition_placement(redis::Connection& redis, const KeyLayout& keys,
                                                    const Queue& queue) {
    std::vector<PartitionPlacement> out;
    for (int p = 0; p < queue.partition_count; ++p) {
        const std::string stream = keys.stream(queue.tenant, queue.name, p);
        const redis::NodeAddress node = redis.node_of(stream);
        // No master for the slot (a failover under way, or the slot unassigned): say so
        // rather than print an empty address.
        out.push_back({p, redis::key_slot(stream),
                       node.host.empty() ? std::string("(no master now)") : node.describe()});
    }
    return out;
}

}  // namespace mq
