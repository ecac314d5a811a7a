#include "mq/auth/quota.hpp"

#include <algorithm>
#include <cmath>

#include "mq/audit/audit_log.hpp"
#include "mq/core/names.hpp"

namespace mq {

namespace {

const pg::Statement kTenantRates{"mq_quota_tenant_rates",
                                 "SELECT id, publish_rate_limit FROM tenants ORDER BY id"};
const pg::Statement kSetTenantRate{
    "mq_quota_set_tenant_rate",
    "UPDATE tenants t SET publish_rate_limit = $2, updated_at = now() FROM (SELECT id, "
    "publish_rate_limit FROM tenants WHERE id = $1 FOR UPDATE) old WHERE t.id = old.id "
    "RETURNING old.publish_rate_limit"};

double burst_of(double rate) { return std::max(rate, 1.0); }

}  // namespace

PublishQuota::PublishQuota(std::optional<double> default_rate_per_s, Clock clock)
    : default_rate_(default_rate_per_s), clock_(std::move(clock)) {
    if (default_rate_ && !(*default_rate_ > 0))
        throw ValidationError("default publish rate must be above 0 messages per second");
}

std::chrono::steady_clock::time_point PublishQuota::now() const {
    return clock_ ? clock_() : std::chrono::steady_clock::now();
}

void PublishQuota::set_rate(const std::string& tenant, std::optional<double> rate_per_s) {
    if (rate_per_s && !(*rate_per_s > 0))
        throw ValidationError("publish rate of tenant '" + tenant +
                              "' must be above 0 messages per second");
    std::lock_guard lock(mutex_);
    if (rate_per_s)
        rates_[tenant] = *rate_per_s;
    else
        rates_.erase(tenant);
    // A lower rate must not leave a fuller bucket than its new burst.
    if (auto it = buckets_.find(tenant); it != buckets_.end()) {
        auto r = rate_locked(tenant);
        if (r) it->second.tokens = std::min(it->second.tokens, burst_of(*r));
    }
}

std::optional<double> PublishQuota::rate_locked(const std::string& tenant) const {
    if (auto it = rates_.find(tenant); it != rates_.end()) return it->second;
    return default_rate_;
}

std::optional<double> PublishQuota::rate(const std::string& tenant) const {
    std::lock_guard lock(mutex_);
    return rate_locked(tenant);
}

std::optional<std::size_t> PublishQuota::max_batch(const std::string& tenant) const {
    auto r = rate(tenant);
    if (!r) return std::nullopt;
    return static_cast<std::size_t>(std::floor(burst_of(*r)));
}

std::optional<int> PublishQuota::take(const std::string& tenant, std::size_t n) {
    std::lock_guard lock(mutex_);
    auto r = rate_locked(tenant);
    if (!r) return std::nullopt;
    double rate = *r, burst = burst_of(rate);
    auto t = now();
    Bucket& b = buckets_[tenant];
    if (!b.started) {
        b = Bucket{burst, t, true};
    } else {
        double elapsed = std::chrono::duration<double>(t - b.updated).count();
        b.tokens = std::min(burst, b.tokens + std::max(0.0, elapsed) * rate);
        b.updated = t;
    }
    auto wait_for = [&](double needed) {
        return std::max(1, static_cast<int>(std::ceil((needed - b.tokens) / rate)));
    };
    double want = static_cast<double>(n);
    if (want > burst) return wait_for(burst);  // never fits; the wait for a full bucket
    if (b.tokens + 1e-9 < want) return wait_for(want);
    b.tokens -= want;
    return std::nullopt;
}

std::map<std::string, std::optional<double>> load_tenant_rates(pg::Database& db) {
    return db.transact([&](pqxx::work& tx) {
        std::map<std::string, std::optional<double>> out;
        for (const auto& r : db.exec(tx, kTenantRates)) {
            std::optional<double> rate;
            if (!r[1].is_null()) rate = r[1].as<double>();
            out.emplace(r[0].as<std::string>(), rate);
        }
        return out;
    });
}

void set_tenant_publish_rate(pg::Database& db, const std::string& tenant,
                             std::optional<int> rate_per_s) {
    validate_name("tenant", tenant);
    if (rate_per_s && *rate_per_s <= 0)
        throw ValidationError(
            "publish rate must be a whole number of messages per second above 0, or 'none'",
            {{"field", "publish_rate_limit"}});
    bool updated = db.transact([&](pqxx::work& tx) {
        auto rows = db.exec(tx, kSetTenantRate, tenant, rate_per_s);
        if (rows.empty()) return false;
        nlohmann::json before =
            rows[0][0].is_null() ? nlohmann::json() : nlohmann::json(rows[0][0].as<int>());
        nlohmann::json after = rate_per_s ? nlohmann::json(*rate_per_s) : nlohmann::json();
        audit::record(db, tx,
                      {tenant,
                       "tenant.update",
                       "tenant",
                       tenant,
                       {{"publish_rate_limit", before}},
                       {{"publish_rate_limit", after}}});
        return true;
    });
    if (!updated)
        throw Error(
            ErrorCode::kNotFound,
            "tenant '" + tenant + "' does not exist; create it with: mqctl tenant create " + tenant,
            {{"tenant", tenant}});
}

}  // namespace mq
