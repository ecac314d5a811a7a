#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mq/consume/subscription.hpp"
#include "mq/core/history_event.hpp"
#include "mq/core/keys.hpp"
#include "mq/core/message.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// The consumer name that holds entries waiting for a retry: a failed delivery is moved
/// to it (XCLAIM ... JUSTID), so its idle time counts from the failure and the reclaimer
/// can tell "waiting for backoff" from "in a worker's hands".
inline constexpr const char* kRetryConsumer = "mq-retry";

/// One entry handed to a consumer.
struct Fetched {
    int partition = 0;
    std::string stream_id;
    Message message;
    int delivery_count = 1;         ///< this delivery's number: 1 the first time
    std::int64_t duration_ms = -1;  ///< how long the handler took (-1: not delivered yet)
};

/// One pending entry as XPENDING reports it.
struct PendingEntry {
    int partition = 0;
    std::string stream_id;
    std::string consumer;
    std::int64_t idle_ms = 0;
    int delivery_count = 0;
};

/// What a reclaim pass did on one partition.
struct Reclaimed {
    std::vector<Fetched> claimed;  ///< now owned by the reclaiming consumer, to deliver
    int dead_lettered = 0;         ///< reached max_attempts: moved to the dead-letter stream
    int dropped = 0;               ///< reached max_attempts with dead letters disabled
    int expired = 0;  ///< pending, but the stream entry was gone (retention): acked away
};

/// Consumption of one subscription's consumer groups. Every operation touches one
/// partition's keys, so it runs unchanged on Redis Cluster. `queue` is always the queue
/// the subscription reads (its owner's keys, queue_owner()); operations taking a
/// `subscription` string take its consumer_group(), which the dead-letter entries record.
class ConsumerGroups {
  public:
    ConsumerGroups(redis::Connection& redis, KeyLayout keys)
        : redis_(redis), keys_(std::move(keys)) {}

    /// XGROUP CREATE s <consumer_group(sub)> <start> MKSTREAM on every partition that lacks
    /// the group; an existing group is kept. Start rule: when the group exists on no
    /// partition (a new subscription), `start_from` decides (earliest: 0, latest: $); a
    /// partition missing it while others have it was added later and starts at 0, so
    /// nothing published to it is skipped. Returns how many groups were created.
    int ensure(const Queue& queue, const Subscription& sub);
    /// XGROUP CREATE s g 0 MKSTREAM on partitions [first_partition, partition_count): the
    /// groups of partitions a queue is growing by, created at their start before any
    /// publisher routes there. Returns how many were created.
    int ensure_partitions(const Queue& queue, const Subscription& sub, int first_partition);
    /// XGROUP DESTROY on every partition: pending entries of the group are forgotten.
    void destroy(const Queue& queue, const std::string& subscription);

    /// XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS s > on one partition. `block` zero
    /// means do not block. Must be shorter than the connection's command timeout.
    std::vector<Fetched> read_new(const Queue& queue, const Subscription& sub,
                                  const std::string& consumer, int partition, int count,
                                  std::chrono::milliseconds block);

    /// XACK; returns how many were still pending. On a queue with record_messages the
    /// `events` (the attempts that ended in these acks) go to the history in the same
    /// round trip.
    std::int64_t ack(const Queue& queue, const std::string& subscription, int partition,
                     const std::vector<std::string>& stream_ids,
                     const std::vector<HistoryEvent>& events = {});

    /// A failed delivery: hand the entry to kRetryConsumer (idle restarts at zero), and
    /// remember `not_before` (Unix ms, e.g. from Retry-After) when given.
    /// `event` (the failed attempt) is appended to the history in the same script on a
    /// queue with record_messages.
    void retry_later(const Queue& queue, const std::string& subscription, int partition,
                     const std::string& stream_id, std::optional<std::int64_t> not_before_ms,
                     const HistoryEvent* event = nullptr);

    /// Hands an entry that was fetched but never delivered (a worker shutting down) to
    /// kRetryConsumer as immediately due, undoing the delivery count XREADGROUP added.
    void release(const Queue& queue, const std::string& subscription, int partition,
                 const std::string& stream_id, int delivery_count);

    /// XACK the entry and, only when that XACK removed it from the pending list, XADD it
    /// with why it died to the partition's dead-letter stream, in one Lua call: racing
    /// callers dead-letter an entry once. Returns false when nothing was dead-lettered (the
    /// entry was no longer pending, or its stream entry was gone and it was only acked).
    /// On a queue with record_messages a dead_lettered event (consumer and duration from
    /// `event` when given) is appended in the same script.
    bool dead_letter(const Queue& queue, const std::string& subscription, int partition,
                     const std::string& stream_id, const std::string& reason,
                     const std::string& error, int attempts, const HistoryEvent* event = nullptr);

    /// Resets the idle time of entries `consumer` holds (XCLAIM ... JUSTID), so the
    /// visibility timeout starts again for a long-running handler.
    void extend(const Queue& queue, const std::string& subscription, const std::string& consumer,
                int partition, const std::vector<std::string>& stream_ids);

    /// XPENDING with IDLE, then per entry: waiting for retry and past its backoff (and its
    /// Retry-After), or held by a consumer for longer than the visibility timeout, is
    /// claimed for `consumer` (XCLAIM, which counts a delivery) - or, when that would
    /// exceed max_attempts, dead-lettered. XCLAIM's min-idle makes concurrent reclaimers
    /// safe: an entry is claimed by one of them.
    Reclaimed reclaim(const Queue& queue, const Subscription& sub, const std::string& consumer,
                      int partition, int count = 100);

    /// Pending entries of the group on one partition, oldest first (XPENDING - + n).
    std::vector<PendingEntry> pending(const Queue& queue, const std::string& subscription,
                                      int partition, int count, const std::string& consumer = {});

  private:
    redis::Connection& redis_;
    KeyLayout keys_;
};

/// Parses an XREADGROUP/XCLAIM/XRANGE entry ([id, [f, v, ...]]); false when the entry's
/// fields are gone (deleted while pending).
bool parse_entry(const redis::Reply& entry, std::string& id, Message& message);

}  // namespace mq
