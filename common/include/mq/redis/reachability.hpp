#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "mq/redis/client.hpp"

namespace mq::redis {

/// Whether a Redis server answers PING, measured at most once per `ttl` however often it
/// is asked: the answer behind /readyz, which load balancers and orchestrators may call
/// in a storm without loading Redis. One connection of its own (short timeouts, reconnected
/// after a failure). While one caller measures, the others get the last answer instead of
/// waiting. Thread-safe.
class Reachability {
  public:
    explicit Reachability(Endpoint endpoint, std::chrono::milliseconds ttl = kDefaultTtl,
                          ConnectOptions options = kProbeTimeouts);
    ~Reachability();
    Reachability(const Reachability&) = delete;
    Reachability& operator=(const Reachability&) = delete;

    /// The last PING's outcome, measured again when it is older than `ttl`.
    bool reachable();
    /// PINGs sent so far (tests check the cache with it).
    std::uint64_t pings() const;

    static constexpr std::chrono::milliseconds kDefaultTtl{1000};
    static constexpr ConnectOptions kProbeTimeouts{std::chrono::milliseconds(500),
                                                   std::chrono::milliseconds(1000)};

  private:
    Endpoint endpoint_;
    std::chrono::milliseconds ttl_;
    ConnectOptions options_;
    std::mutex measure_mu_;  ///< one measurement at a time; guards connection_
    std::unique_ptr<Connection> connection_;
    mutable std::mutex result_mu_;  ///< guards the fields below
    bool reachable_ = false;
    bool measured_ = false;
    std::chrono::steady_clock::time_point measured_at_;
    std::uint64_t pings_ = 0;
};

}  // namespace mq::redis
