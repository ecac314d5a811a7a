#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mq/core/keys.hpp"
#include "mq/core/partitioner.hpp"
#include "mq/error.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// What a producer asks to publish.
struct PublishRequest {
    std::string payload;
    std::string key;
    std::map<std::string, std::string> headers;
    std::string idempotency_key;
    std::string content_type;
    std::string trace_id;
    std::optional<std::chrono::milliseconds> delay;  ///< deliver this long after publish
    std::optional<std::int64_t> deliver_at_ms;       ///< deliver at this Unix ms
};

/// Limits a request must respect.
struct PublishLimits {
    std::int64_t max_message_size = 1048576;  ///< payload bytes
    std::size_t max_headers = 64;
    std::size_t max_key_size = 1024;
};

/// Throws ValidationError / Error(kPayloadTooLarge) when `r` breaks the limits.
void validate(const PublishRequest& r, const PublishLimits& limits);

/// Reads one JSON envelope: {"payload": <string|any JSON>, "key", "headers": {..},
/// "idempotency_key", "content_type", "trace_id", "delay": "90s" | "delay_ms": N,
/// "deliver_at": RFC 3339}. A string payload is sent as is; any other JSON value is sent
/// serialised with content type application/json. Unknown fields are refused, so a typo
/// never silently drops an option.
PublishRequest parse_publish_request(const nlohmann::json& envelope);

enum class PublishStatus {
    kAccepted,   ///< stored (in the stream, or in the delayed set)
    kDuplicate,  ///< idempotency key seen within the window: nothing stored
    kRejected,   ///< not stored; see `error`
};

struct PublishOutcome {
    PublishStatus status = PublishStatus::kRejected;
    std::string message_id;  ///< the new id, or the first message's id for a duplicate
    int partition = 0;
    std::string stream_id;  ///< Redis entry id; empty when delayed or not stored
    bool delayed = false;
    std::optional<Error> error;
};

/// Writes messages to a queue's partitions in Redis. One Lua call per partition and
/// chunk does the idempotency check, the max-length check and XADD/ZADD atomically; a
/// batch is one pipelined round trip, not one per message.
class Publisher {
public:
    Publisher(redis::Connection& redis, KeyLayout keys, PublishLimits limits = {});

    /// Publishes one message. Throws Error(kQueueFull, retryAfter) when the queue is full,
    /// ValidationError on bad input, BackendUnavailable when Redis is down.
    PublishOutcome publish(const Queue& queue, const PublishRequest& request);

    /// Publishes many; one outcome per request in the same order. A full queue rejects
    /// only the messages that do not fit. Invalid requests are rejected without touching
    /// Redis. Throws only when Redis fails (then some earlier partitions may be stored).
    std::vector<PublishOutcome> publish_batch(const Queue& queue,
                                              const std::vector<PublishRequest>& requests);

    /// Messages per Lua call; larger batches are split.
    static constexpr std::size_t kChunk = 256;

private:
    redis::Connection& redis_;
    KeyLayout keys_;
    PublishLimits limits_;
    Partitioner partitioner_;
};

}  // namespace mq
