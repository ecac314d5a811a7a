#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mq/core/keys.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// One consumer group (subscription) on one partition stream.
struct GroupStats {
    std::string name;
    std::int64_t consumers = 0;
    std::int64_t pending = 0;
    std::optional<std::int64_t> lag;  ///< entries not yet delivered; unknown after trims
    std::string last_delivered_id;
    std::int64_t expired = 0;  ///< entries removed by retention before this group finished them
};

/// What is in one partition right now.
struct PartitionStats {
    int partition = 0;
    std::int64_t length = 0;                  ///< entries in the stream
    std::int64_t delayed = 0;                 ///< entries waiting in the delayed set
    std::int64_t dead_letters = 0;            ///< entries in the dead-letter stream
    std::optional<std::int64_t> oldest_ms;    ///< Unix ms of the oldest stream entry
    std::optional<std::int64_t> next_due_ms;  ///< earliest delayed entry
    std::vector<GroupStats> groups;
};

/// The Redis side of a queue's lifecycle: stats, purge and removal of its keys.
class QueueStreams {
  public:
    QueueStreams(redis::Connection& redis, KeyLayout keys)
        : redis_(redis), keys_(std::move(keys)) {}

    /// One pipelined round trip for all partitions.
    std::vector<PartitionStats> stats(const Queue& queue);

    struct Purged {
        std::int64_t entries = 0;
        std::int64_t delayed = 0;
    };
    /// Removes every entry and delayed entry; consumer groups stay, with nothing pending.
    /// Dead letters and idempotency keys are kept.
    Purged purge(const Queue& queue);

    /// Deletes every key of the queue: streams (with their groups), delayed sets,
    /// dead-letter streams, idempotency keys. Returns the number of keys removed.
    std::int64_t drop(const Queue& queue);

  private:
    redis::Connection& redis_;
    KeyLayout keys_;
};

}  // namespace mq
