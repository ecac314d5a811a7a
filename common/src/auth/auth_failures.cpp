#include "mq/auth/auth_failures.hpp"

#include <algorithm>
#include <cmath>

namespace mq {

AuthFailureLimiter::AuthFailureLimiter(std::size_t burst, std::chrono::milliseconds window,
                                       std::size_t max_clients)
    : burst_(static_cast<double>(burst)),
      per_ms_(window.count() > 0 ? static_cast<double>(burst) / static_cast<double>(window.count())
                                 : static_cast<double>(burst)),
      buckets_(max_clients) {}

void AuthFailureLimiter::refill(Bucket& b, Clock::time_point now) const {
    auto elapsed = std::chrono::duration<double, std::milli>(now - b.updated).count();
    if (elapsed > 0) {
        b.tokens = std::min(burst_, b.tokens + elapsed * per_ms_);
        b.updated = now;
    }
}

std::optional<std::chrono::milliseconds> AuthFailureLimiter::blocked(const std::string& client,
                                                                     Clock::time_point now) {
    if (!enabled()) return std::nullopt;
    std::lock_guard lock(mutex_);
    auto* b = buckets_.find(client);
    if (!b) return std::nullopt;
    refill(*b, now);
    if (b->tokens >= 1.0) return std::nullopt;
    auto wait = per_ms_ > 0 ? (1.0 - b->tokens) / per_ms_ : 1000.0;
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(wait)));
}

void AuthFailureLimiter::record_failure(const std::string& client, Clock::time_point now) {
    if (!enabled()) return;
    std::lock_guard lock(mutex_);
    auto* b = buckets_.find(client);
    if (!b) b = &buckets_.put(client, Bucket{burst_, now});
    refill(*b, now);
    b->tokens = std::max(0.0, b->tokens - 1.0);
}

std::size_t AuthFailureLimiter::clients() const {
    std::lock_guard lock(mutex_);
    return buckets_.size();
}

}  // namespace mq
