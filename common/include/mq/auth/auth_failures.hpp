#pragma once

// Failed authentications per client address: a token bucket per address, in an LRU of
// bounded size, so a client guessing tokens is answered 429 before any token lookup.

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>

#include "mq/core/lru_cache.hpp"

namespace mq {

/// Counts failed authentications per client (peer address). A client may fail `burst`
/// times, and one more time every `window / burst` after that; beyond it, blocked() says
/// how long to wait. Memory is bounded: the least recently seen clients are forgotten
/// (which only forgives them). Thread-safe.
class AuthFailureLimiter {
  public:
    using Clock = std::chrono::steady_clock;
    /// `burst` 0 turns the limit off.
    AuthFailureLimiter(std::size_t burst, std::chrono::milliseconds window,
                       std::size_t max_clients = 65536);

    /// How long `client` must wait before its next attempt is looked at; nullopt when
    /// it may try now.
    std::optional<std::chrono::milliseconds> blocked(const std::string& client,
                                                     Clock::time_point now = Clock::now());
    /// Charges one failed authentication to `client`.
    void record_failure(const std::string& client, Clock::time_point now = Clock::now());

    bool enabled() const { return burst_ > 0; }
    std::size_t clients() const;

  private:
    struct Bucket {
        double tokens = 0;
        Clock::time_point updated;
    };
    /// Refills `b` up to `now`. Caller holds mutex_.
    void refill(Bucket& b, Clock::time_point now) const;

    double burst_;
    double per_ms_;  // tokens regained per millisecond
    mutable std::mutex mutex_;
    LruCache<std::string, Bucket> buckets_;
};

}  // namespace mq
