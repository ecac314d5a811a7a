#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mq/consume/consumer.hpp"
#include "mq/consume/subscription.hpp"
#include "mq/core/keys.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// What a pull client must hand back to ack, nack or extend one delivery.
struct Receipt {
    std::string subscription_id;
    int partition = 0;
    std::string stream_id;
    int delivery_count = 1;
};

/// Opaque text: base64url (no padding) of the fields followed by an HMAC-SHA256 tag under
/// `key`, so a client can neither forge nor alter a receipt. Throws Error(kInternal) when
/// `key` is empty.
std::string encode_receipt(const Receipt& receipt, std::string_view key);
/// Throws ValidationError("invalid receipt") on anything wrong: bad encoding, bad tag,
/// malformed fields, or a receipt made for another subscription than the expected one.
Receipt decode_receipt(std::string_view text, std::string_view key,
                       const std::string& expected_subscription_id);

/// One message handed to a pull client.
struct PulledMessage {
    Fetched fetched;
    std::string receipt;
    std::int64_t lease_expires_ms = 0;  ///< Unix ms; after it the message may be redelivered
};

enum class AckResult {
    kAcked,
    /// The entry is no longer pending for this delivery: acked already, dead-lettered, or
    /// redelivered (its delivery count moved on). The API answers 409 MQ_CONFLICT.
    kLeaseLost,
};

/// Pull delivery (docs/pull.md) for services without a worker: at-least-once, the lease
/// is the subscription's visibility timeout, the pending entry's idle time is the lease
/// clock. Not thread-safe (one Redis connection).
class PullConsumer {
  public:
    static constexpr int kMaxPull = 100;
    /// Longest nack delay accepted.
    static constexpr std::chrono::milliseconds kMaxNackDelay{std::chrono::hours(12)};

    PullConsumer(redis::Connection& redis, KeyLayout keys, std::string receipt_key);

    /// Non-blocking: first entries whose lease expired or whose retry is due (reclaim, which
    /// also dead-letters past max_attempts), then new entries, across partitions starting at
    /// a rotating one (one cursor per subscription in the process, so a busy partition
    /// cannot starve the others); up to `max_messages` (1-100, else ValidationError). Entries the
    /// subscription's filter rejects are acked and skipped. A paused subscription yields
    /// nothing; a subscription of another type than pull is a ValidationError.
    /// `consumer` is "pull:" + the caller's principal.
    std::vector<PulledMessage> pull(const Queue& queue, const Subscription& sub,
                                    const std::string& consumer, int max_messages);

    /// XACK each entry only while it is still pending with the receipt's delivery count (one
    /// Lua call each, all in one pipeline), so a stale receipt cannot ack a redelivery.
    std::vector<AckResult> ack(const Queue& queue, const Subscription& sub,
                               const std::vector<Receipt>& receipts);

    /// Failed: redeliver after `delay` (zero: on the next pull), same stale check. Past
    /// max_attempts the next reclaim dead-letters it. ValidationError for a negative delay
    /// or one over kMaxNackDelay.
    AckResult nack(const Queue& queue, const Subscription& sub, const Receipt& receipt,
                   std::chrono::milliseconds delay);

    /// Restarts the lease clock (XCLAIM ... JUSTID to `consumer`), same stale check; a
    /// nacked entry cannot be extended. Sets `*lease_expires_ms` (when not null) on success.
    AckResult extend(const Queue& queue, const Subscription& sub, const Receipt& receipt,
                     const std::string& consumer, std::int64_t* lease_expires_ms);

  private:
    AckResult settle(const Queue& queue, const Subscription& sub, const Receipt& receipt,
                     const std::string& mode, const std::string& consumer,
                     std::int64_t not_before_ms);
    void check(const Queue& queue, const Subscription& sub, const Receipt& receipt) const;
    std::vector<std::string> settle_keys(const Queue& queue, const Subscription& sub,
                                         int partition) const;

    redis::Connection& redis_;
    KeyLayout keys_;
    std::string receipt_key_;
    ConsumerGroups groups_;
};

}  // namespace mq
