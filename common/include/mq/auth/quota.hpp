#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "mq/pg/database.hpp"

namespace mq {

/// Per-tenant publish rate limit: a token bucket per tenant, in this process only (each
/// mq-api process enforces the full rate; run N processes and a tenant gets up to N x).
/// Thread-safe.
class PublishQuota {
  public:
    using Clock = std::function<std::chrono::steady_clock::time_point()>;

    /// `default_rate_per_s` applies to tenants without a rate of their own; nullopt means
    /// unlimited. `clock` is for tests; empty means std::chrono::steady_clock.
    explicit PublishQuota(std::optional<double> default_rate_per_s, Clock clock = {});

    /// The tenant's own rate in messages per second; nullopt: use the default. A rate
    /// <= 0 is a ValidationError.
    void set_rate(const std::string& tenant, std::optional<double> rate_per_s);

    /// The rate that applies to `tenant` (nullopt: unlimited).
    std::optional<double> rate(const std::string& tenant) const;

    /// Takes n messages from the tenant's bucket (burst = one second of rate, at least 1
    /// message). Returns nullopt when allowed, else the seconds to wait (>= 1) for
    /// Error(kQuotaExceeded, ..., retryAfter). A batch larger than the burst can never fit
    /// and is refused without taking anything; split it (see max_batch).
    std::optional<int> take(const std::string& tenant, std::size_t n);

    /// The largest batch `take` can ever allow for `tenant`; nullopt when unlimited.
    std::optional<std::size_t> max_batch(const std::string& tenant) const;

  private:
    struct Bucket {
        double tokens = 0;
        std::chrono::steady_clock::time_point updated;
        bool started = false;
    };
    std::optional<double> rate_locked(const std::string& tenant) const;
    std::chrono::steady_clock::time_point now() const;

    std::optional<double> default_rate_;
    Clock clock_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, double> rates_;
    std::unordered_map<std::string, Bucket> buckets_;
};

/// tenants.publish_rate_limit of every tenant (nullopt: no limit of its own).
std::map<std::string, std::optional<double>> load_tenant_rates(pg::Database& db);

/// Sets tenants.publish_rate_limit (messages per second, > 0; nullopt clears it).
/// NotFound when the tenant does not exist.
void set_tenant_publish_rate(pg::Database& db, const std::string& tenant,
                             std::optional<int> rate_per_s);

}  // namespace mq
