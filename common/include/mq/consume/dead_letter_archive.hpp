#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "mq/core/keys.hpp"
#include "mq/pg/database.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// Copies dead letters from the partitions' :dlq streams into PostgreSQL dead_letters,
/// in batches, off the delivery path. The stream has a consumer group "mq-archive":
/// entries are read with XREADGROUP, inserted in one transaction per batch (ON CONFLICT
/// DO NOTHING on (tenant, queue, partition, stream id), so a batch repeated after a
/// crash is harmless), and only then XACKed. Any number of workers may archive at once;
/// entries another archiver read and left pending for `claim_idle` (it died, or
/// PostgreSQL was down) are taken over with XAUTOCLAIM, so no batch is ever stranded.
/// The Trimmer removes dead letters from Redis only once this group has acked them.
class DeadLetterArchiver {
  public:
    DeadLetterArchiver(redis::Connection& redis, pg::Database& db, KeyLayout keys,
                       std::string consumer,
                       std::chrono::milliseconds claim_idle = std::chrono::seconds(30))
        : redis_(redis),
          db_(db),
          keys_(std::move(keys)),
          consumer_(std::move(consumer)),
          claim_idle_(claim_idle) {}

    /// Archives what is waiting on every partition, up to `batch` rows per transaction:
    /// this consumer's own unacked entries, then other consumers' entries idle for
    /// claim_idle (XAUTOCLAIM), then new ones. Returns the number of dead letters newly
    /// written. Throws BackendUnavailable when PostgreSQL is down; the entries read stay
    /// pending in the group for the next pass (of any archiver).
    std::int64_t archive(const Queue& queue, int batch = 100);

  private:
    redis::Connection& redis_;
    pg::Database& db_;
    KeyLayout keys_;
    std::string consumer_;
    std::chrono::milliseconds claim_idle_;
};

/// The archive's own retention (DEAD_LETTER_RETENTION): deletes dead_letters rows of every
/// tenant that died more than `older_than` ago, in batches of `batch` rows per
/// transaction. Returns how many were deleted. ValidationError unless older_than > 0.
std::int64_t purge_archived_dead_letters(pg::Database& db, std::chrono::milliseconds older_than,
                                         int batch = 10000);

}  // namespace mq
