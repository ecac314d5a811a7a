#include "mq/redis/reachability.hpp"

#include "mq/error.hpp"

namespace mq::redis {

Reachability::Reachability(Endpoint endpoint, std::chrono::milliseconds ttl, ConnectOptions options)
    : endpoint_(std::move(endpoint)), ttl_(ttl), options_(options) {}

Reachability::~Reachability() = default;

std::uint64_t Reachability::pings() const {
    std::lock_guard lock(result_mu_);
    return pings_;
}

bool Reachability::reachable() {
    const auto now = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(result_mu_);
        if (measured_ && now - measured_at_ < ttl_) return reachable_;
    }
    std::unique_lock measuring(measure_mu_, std::try_to_lock);
    if (!measuring.owns_lock()) {
        // Someone is measuring now: the last answer (or "not yet known: no") rather than
        // a queue of callers each waiting for their own PING.
        std::lock_guard lock(result_mu_);
        return measured_ && reachable_;
    }
    {
        std::lock_guard lock(result_mu_);  // measured while we waited for the lock?
        if (measured_ && std::chrono::steady_clock::now() - measured_at_ < ttl_) return reachable_;
        ++pings_;
    }
    bool ok = false;
    try {
        // PING: answered by any live server, whatever its data or role.
        if (!connection_) connection_ = std::make_unique<Connection>(endpoint_, options_);
        ok = connection_->command({"PING"}).as_string() == "PONG";
    } catch (const std::exception&) {
        connection_.reset();  // a fresh connection at the next measurement
    }
    std::lock_guard lock(result_mu_);
    reachable_ = ok;
    measured_ = true;
    measured_at_ = std::chrono::steady_clock::now();
    return ok;
}

}  // namespace mq::redis
