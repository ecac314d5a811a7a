#include "mq/core/partitioner.hpp"

#include <random>

namespace mq {

std::uint64_t fnv1a_64(std::string_view bytes) {
    std::uint64_t h = 14695981039346656037ULL;
    for (unsigned char c : bytes) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

Partitioner::Partitioner() : next_(std::random_device{}()) {}

int Partitioner::choose(int partition_count, std::string_view key,
                        std::string_view idempotency_key) {
    if (partition_count <= 1) return 0;
    const auto n = static_cast<std::uint64_t>(partition_count);
    if (!key.empty()) return static_cast<int>(fnv1a_64(key) % n);
    if (!idempotency_key.empty()) return static_cast<int>(fnv1a_64(idempotency_key) % n);
    return static_cast<int>(next_.fetch_add(1, std::memory_order_relaxed) % n);
}

}  // namespace mq
