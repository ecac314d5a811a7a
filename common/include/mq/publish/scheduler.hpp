#pragma once

#include <cstdint>
#include <optional>

#include "mq/core/keys.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// Moves due entries from a partition's delayed ZSET into its stream. Every move is one
/// Lua call (ZRANGEBYSCORE + XADD + ZREM), so any number of movers may run at once and
/// each due entry lands in the stream exactly once, in due order.
class Scheduler {
  public:
    Scheduler(redis::Connection& redis, KeyLayout keys) : redis_(redis), keys_(std::move(keys)) {}

    struct Pass {
        std::int64_t moved = 0;
        std::optional<std::int64_t> next_due_ms;  ///< earliest entry still waiting (Redis clock)
    };

    /// Moves everything due now in every partition of `queue`, `batch` entries per call.
    Pass move_due(const Queue& queue, std::int64_t batch = 500);
    /// The same for one partition: what is due now there, `batch` entries per call.
    /// (A separate name: an overload would take `move_due(q, 3)` for partition 3.)
    Pass move_due_partition(const Queue& queue, int partition, std::int64_t batch = 500);

  private:
    redis::Connection& redis_;
    KeyLayout keys_;
};

}  // namespace mq
