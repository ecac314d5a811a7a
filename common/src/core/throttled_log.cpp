#include "mq/core/throttled_log.hpp"

namespace mq {

std::optional<std::uint64_t> ThrottledLog::admit() {
    total_.fetch_add(1, std::memory_order_relaxed);
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
                   .count();
    auto next = next_ms_.load(std::memory_order_relaxed);
    // One thread wins the slot for this interval; the others count themselves as dropped.
    if (now < next ||
        !next_ms_.compare_exchange_strong(next, now + interval_ms_, std::memory_order_relaxed)) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return std::nullopt;
    }
    return dropped_.exchange(0, std::memory_order_relaxed);
}

}  // namespace mq
