#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

namespace mq {

/// FNV-1a, 64-bit, over the key's bytes. Fixed forever: other clients compute the same
/// partition with `fnv1a_64(key) % partition_count` (docs/wire-format.md).
std::uint64_t fnv1a_64(std::string_view bytes);

/// Chooses a partition: by the message key, else by the idempotency key, else round-robin.
class Partitioner {
  public:
    /// Round-robin starts at a random partition, so one-shot publishers (a cron job
    /// running mqctl) do not all pile onto partition 0.
    Partitioner();
    int choose(int partition_count, std::string_view key, std::string_view idempotency_key);

  private:
    std::atomic<std::uint64_t> next_{0};
};

}  // namespace mq
