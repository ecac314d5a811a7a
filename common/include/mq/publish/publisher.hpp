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
#include "mq/crypto/keyring.hpp"
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
    std::string trace_parent_id;  ///< W3C traceparent's parent id (only with a W3C trace_id)
    std::string trace_flags;      ///< W3C trace flags, "00" or "01"
    std::string trace_state;      ///< W3C tracestate, already cleaned (trace::parse_tracestate)
    /// The body's "tenantId" (or "tenant_id"): the tenant the caller says it publishes for.
    /// Checked against the caller's tenant (mq::check_claimed_tenant) and never stored;
    /// absent when the body has none (an empty string is a claim, and a wrong one).
    std::optional<std::string> claimed_tenant;
    std::optional<std::chrono::milliseconds> delay;  ///< deliver this long after publish
    std::optional<std::int64_t> deliver_at_ms;       ///< deliver at this Unix ms
    /// Set by seal_request() (mq/publish/sealing.hpp) when `payload` is AES-256-GCM sealed;
    /// written as the entry's "ek" field. A queue whose encryption is not "none" refuses
    /// requests without it, so plaintext never lands in its stream.
    std::string encryption_key_id;
    /// The principal publishing (token principal, or mqctl's OS user): recorded in the
    /// message history of a queue with record_messages, never written to the entry.
    std::string producer;
};

/// Limits a request must respect.
struct PublishLimits {
    std::int64_t max_message_size = 1048576;  ///< payload bytes
    std::size_t max_headers = 64;
    /// Names and values of a message's headers together: they travel with every delivery
    /// (webhook headers, history rows), so they stay small next to the payload.
    std::size_t max_header_bytes = 65536;
    std::size_t max_key_size = 1024;
};

/// Throws ValidationError / Error(kPayloadTooLarge) when `r` breaks the limits.
void validate(const PublishRequest& r, const PublishLimits& limits);

/// Reads one JSON envelope (see EnvelopeParser in envelope.hpp, which does the work):
/// a string payload is sent as is, any other JSON value as its text with content type
/// application/json; unknown fields are refused.
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
    /// Unix ms this publish was stamped with (for a duplicate: this request's time, not the
    /// first message's).
    std::int64_t published_ms = 0;
    bool delayed = false;
    std::optional<Error> error;
};

/// Writes messages to a queue's partitions in Redis. One Lua call per partition and
/// chunk does the idempotency check, the max-length check and XADD/ZADD atomically; a
/// batch is one pipelined round trip, not one per message.
class Publisher {
  public:
    Publisher(redis::Connection& redis, KeyLayout keys, PublishLimits limits = {});
    /// Without a connection: only prepare() and complete() may be used (for a caller that
    /// sends the pipeline itself, such as mq-api's asynchronous connections).
    explicit Publisher(KeyLayout keys, PublishLimits limits = {});

    /// Publishes one message. Throws Error(kQueueFull, retryAfter) when the queue is full,
    /// ValidationError on bad input, BackendUnavailable when Redis is down.
    PublishOutcome publish(const Queue& queue, const PublishRequest& request);

    /// Publishes many; one outcome per request in the same order. A full queue rejects
    /// only the messages that do not fit. Invalid requests are rejected without touching
    /// Redis. Throws only when Redis fails (then some earlier partitions may be stored).
    std::vector<PublishOutcome> publish_batch(const Queue& queue,
                                              const std::vector<PublishRequest>& requests);

    /// A batch split into script calls, ready to send. Keep it alive until finish().
    struct Prepared {
        std::vector<PublishOutcome> outcomes;
        redis::Pipeline pipeline;
        std::vector<std::vector<std::size_t>> call_members;  // request indexes per call
        std::vector<bool> plain;  // per call: a plain XADD rather than the publish script
    };
    /// publish_batch() in three steps, so a caller can prepare (and parse) the next batch
    /// while Redis stores this one: prepare() validates and encodes, send() writes the
    /// pipeline, finish() reads the replies into outcomes. finish() in send() order.
    Prepared prepare(const Queue& queue, const std::vector<PublishRequest>& requests);
    void send(Prepared& batch);
    std::vector<PublishOutcome> finish(const Queue& queue, Prepared& batch);
    /// finish() with the replies read elsewhere (one per pipeline command, in order).
    static std::vector<PublishOutcome> complete(const Queue& queue, Prepared& batch,
                                                const std::vector<redis::Reply>& replies);

    /// Messages per Lua call; larger batches are split.
    static constexpr std::size_t kChunk = 256;

  private:
    redis::Connection* redis_ = nullptr;
    KeyLayout keys_;
    PublishLimits limits_;
    Partitioner partitioner_;
};

}  // namespace mq
