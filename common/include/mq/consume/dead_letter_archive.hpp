#pragma once

#include <cstdint>

#include "mq/core/keys.hpp"
#include "mq/pg/database.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// Copies dead letters from the partitions' :dlq streams into PostgreSQL dead_letters,
/// in batches, off the delivery path. The stream has a consumer group "mq-archive":
/// entries are read with XREADGROUP, inserted in one transaction per batch (ON CONFLICT
/// DO NOTHING on (tenant, queue, partition, stream id), so a batch repeated after a
/// crash is harmless), and only then XACKed. Any number of workers may archive at once.
class DeadLetterArchiver {
public:
    DeadLetterArchiver(redis::Connection& redis, pg::Database& db, KeyLayout keys, std::string consumer)
        : redis_(redis), db_(db), keys_(std::move(keys)), consumer_(std::move(consumer)) {}

    /// Archives what is waiting on every partition, up to `batch` rows per transaction.
    /// Returns the number of dead letters newly written.
    std::int64_t archive(const Queue& queue, int batch = 100);

private:
    redis::Connection& redis_;
    pg::Database& db_;
    KeyLayout keys_;
    std::string consumer_;
};

}  // namespace mq
