#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mq/core/keys.hpp"
#include "mq/core/message.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// One entry of a partition's dead-letter stream (docs/wire-format.md, "Dead letters").
struct DeadLetter {
    int partition = 0;
    std::string dlq_id;  ///< entry id in the :dlq stream
    Message message;
    std::string subscription;
    std::string reason;
    std::string error;
    int attempts = 0;
    std::int64_t dead_ms = 0;
    std::string original_stream_id;

    /// The id operators use: "<partition>:<stream id>", unique within the queue (stream
    /// ids alone repeat across partitions).
    std::string handle() const { return std::to_string(partition) + ":" + dlq_id; }  // see entry_ref.hpp
};

nlohmann::json to_json(const DeadLetter& d);

/// Reads, replays and purges a queue's dead letters.
class DeadLetterStore {
public:
    DeadLetterStore(redis::Connection& redis, KeyLayout keys) : redis_(redis), keys_(std::move(keys)) {}

    /// Newest first across partitions; `subscription` empty means all; `since_ms` keeps
    /// those that died at or after it.
    std::vector<DeadLetter> list(const Queue& queue, const std::string& subscription, std::size_t limit,
                                 std::optional<std::int64_t> since_ms = std::nullopt);
    /// By handle ("<partition>:<stream id>"). ValidationError when malformed.
    std::optional<DeadLetter> find(const Queue& queue, const std::string& handle);
    std::int64_t count(const Queue& queue);

    /// Publishes the message again to `target` (usually its own queue) as a new message
    /// (new id; same key, headers and payload, plus header `mq-replayed-from: <old id>`),
    /// and only after Redis has
    /// accepted it removes the dead letter. Throws when the publish fails; the dead letter
    /// then stays. Note: a message replayed to its queue reaches every subscription of it.
    PublishOutcome replay(const Queue& from, const DeadLetter& d, const Queue& target, Publisher& publisher);

    /// Removes dead letters (all, or those that died before `before_ms`). Returns how many.
    std::int64_t purge(const Queue& queue, std::optional<std::int64_t> before_ms = std::nullopt);

private:
    redis::Connection& redis_;
    KeyLayout keys_;
};

}  // namespace mq
