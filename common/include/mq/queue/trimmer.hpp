#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "mq/config/config.hpp"
#include "mq/core/keys.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// What one Trimmer::trim call removed, summed over the queue's partitions.
struct TrimPass {
    std::int64_t trimmed = 0;  ///< stream entries removed (finished by every group, or expired)
    std::int64_t expired = 0;  ///< (entry, subscription) pairs removed by age before that
                               ///< subscription finished them (never delivered, or pending)
    std::int64_t dead_letters_trimmed = 0;  ///< archived dead letters removed from Redis
    std::map<std::string, std::int64_t> expired_by_subscription;
    bool more = false;  ///< a partition hit the per-call bound: call again to converge
};

/// Limits of the trimmer. Zero disables a dead-letter bound.
struct TrimOptions {
    /// Entries looked at per partition and call, so one huge backlog never blocks Redis for
    /// long; later calls carry on.
    std::int64_t batch = 1000;
    /// Archived dead letters kept in Redis per partition (`mqctl dlq list` reads them);
    /// DEAD_LETTER_MAX_LENGTH. Unarchived dead letters are never trimmed.
    std::int64_t dead_letter_max_length = 10000;
    /// Archived dead letters older than this are removed from Redis; DEAD_LETTER_MAX_AGE.
    std::chrono::milliseconds dead_letter_max_age{std::chrono::hours(24 * 7)};
};

/// The dead-letter bounds of `config` (DEAD_LETTER_MAX_LENGTH, DEAD_LETTER_MAX_AGE).
TrimOptions trim_options(const Config& config);

/// Applies retention to a queue's partitions (docs/retention.md). Per partition, one Lua
/// call: XTRIM MINID up to what every consumer group has finished with (the oldest pending
/// entry, or the entry after last-delivered-id); entries older than the queue's retention
/// go even when unfinished, and each is counted as expired for each group that had not
/// finished it (pending ones are XACKed, the group's cursor moves past undelivered ones).
/// The dead-letter stream loses only entries the `mq-archive` group has archived.
class Trimmer {
  public:
    Trimmer(redis::Connection& redis, KeyLayout keys, TrimOptions options = {});

    /// Every partition of `queue`; logs a warning per subscription with expired entries.
    /// Throws BackendUnavailable when Redis cannot be reached; nothing is removed then
    /// beyond the partitions already done (each partition's call is atomic).
    TrimPass trim(const Queue& queue);

  private:
    redis::Connection& redis_;
    KeyLayout keys_;
    TrimOptions options_;
};

}  // namespace mq
