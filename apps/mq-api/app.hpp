#pragma once

// Everything the route handlers share: configuration, connection pools, the config cache,
// authentication, quotas, the publish pipeline and the counters behind the metrics routes.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "mq/api/config_cache.hpp"
#include "mq/auth/access.hpp"
#include "mq/auth/quota.hpp"
#include "mq/auth/token.hpp"
#include "mq/config/config.hpp"
#include "mq/core/keys.hpp"
#include "mq/core/throttled_log.hpp"
#include "mq/crypto/keyring.hpp"
#include "mq/maintenance/service.hpp"
#include "mq/metrics/exposition.hpp"
#include "mq/pg/database.hpp"
#include "mq/publish/publish_pipeline.hpp"
#include "mq/publish/publish_use_case.hpp"
#include "mq/queue/payload_schema.hpp"
#include "mq/redis/client.hpp"
#include "pool.hpp"
#include "router.hpp"
#include "server.hpp"

namespace mqapi {

/// Settings of mq-api beyond mq::Config (flags and environment, see main.cpp).
struct ApiOptions {
    std::size_t batch_body_limit = 16 * 1048576;  ///< MAX_BATCH_BODY_SIZE
    std::size_t max_batch = 1000;                 ///< messages per batch request
    std::optional<double> default_publish_rate;   ///< TENANT_PUBLISH_RATE (msg/s); none: unlimited
    std::string receipt_key;                      ///< RECEIPT_SECRET; random per start when empty
    std::map<std::string, std::string> internal_queues = {
        {"user-events", "user-events"},
        {"user-notifications", "user-notifications"},
        {"audit-logs", "audit-logs"},
        {"notifications", "notifications"}};
    std::int64_t memory_warn_bytes = 512LL * 1024 * 1024;  ///< health: degraded above this RSS
    /// METRICS_TOKEN: a scraper's `Authorization: Bearer` for GET /metrics. Empty: only an
    /// API token of role admin may scrape (docs/security.md, "Metrics and health").
    std::string metrics_token;
    /// METRICS_REFRESH_S: the queue figures behind /metrics are measured at most this often
    /// (0: on every scrape, for tests; a flood of scrapes then walks Redis each time).
    std::chrono::seconds metrics_refresh{5};
};

/// Process-wide counters per tenant (rates are computed from them between samples).
struct TenantCounters {
    std::atomic<std::uint64_t> published{0};
    std::atomic<std::uint64_t> rejected{0};
    std::atomic<std::uint64_t> duplicates{0};
    std::atomic<std::uint64_t> delivered{0};  ///< pulled
    std::atomic<std::uint64_t> acked{0};
    std::atomic<std::uint64_t> nacked{0};
    std::atomic<std::uint64_t> errors{0};  ///< 5xx answers
};

/// Publish-to-pull latency, seconds: mq_message_latency_seconds in the app's registry.
class LatencyHistogram {
  public:
    explicit LatencyHistogram(prometheus::Registry& registry);
    void record(double seconds) { histogram_.Observe(std::max(0.0, seconds)); }
    prometheus::ClientMetric::Histogram read() const { return histogram_.Collect().histogram; }
    /// Estimated quantile (upper bucket bound), 0 when empty.
    double quantile(double q) const { return mq::metrics::quantile(read(), q); }

  private:
    prometheus::Histogram& histogram_;
};

class App {
  public:
    App(mq::Config config, ApiOptions options);
    ~App();

    /// Connects, loads the config cache, starts listening on config changes.
    void start();

    const mq::Config& config() const { return config_; }
    const ApiOptions& options() const { return options_; }
    const mq::KeyLayout& keys() const { return keys_; }
    const mq::redis::Endpoint& redis_endpoint() const { return redis_endpoint_; }

    Pool<mq::redis::Connection>& redis() { return redis_pool_; }
    Pool<mq::pg::Database>& pg() { return pg_pool_; }
    mq::ConfigCache& cache() { return *cache_; }
    mq::Authenticator& authenticator() { return *authenticator_; }
    mq::PublishQuota& quota() { return *quota_; }
    mq::PublishPipeline& pipeline() { return *pipeline_; }
    mq::PayloadSchemaCache& schemas() { return *schemas_; }
    const mq::Keyring& keyring() const { return *keyring_; }
    /// The publish use case (quota, limits, schema, sealing) every publish and replay goes through.
    const mq::PublishUseCase& publishing() const { return *publishing_; }
    const std::string& receipt_key() const { return receipt_key_; }
    Server*& server() { return server_; }
    /// The maintenance service (null when MAINTENANCE=off or before start()).
    const mq::MaintenanceService* maintenance() const { return maintenance_.get(); }

    /// The queue of the caller's tenant (or throws the same 404 a missing queue gives).
    std::shared_ptr<const mq::Queue> queue(const std::string& tenant, const std::string& name);

    TenantCounters& counters(const std::string& tenant);
    std::vector<std::pair<std::string, TenantCounters*>> all_counters();
    LatencyHistogram& pull_latency() { return pull_latency_; }
    /// What GET /metrics serves (collectors added by add_monitor_routes).
    mq::metrics::Exposition& metrics() { return metrics_; }
    std::chrono::steady_clock::time_point started() const { return started_; }
    std::int64_t started_unix_ms() const { return started_unix_ms_; }

    /// Re-reads the per-tenant publish rates (tenants.publish_rate_limit).
    void reload_rates();

    /// WEBHOOK_ALLOWED_CIDRS as it is now (a reload may replace it; config() keeps the
    /// value read at start).
    std::vector<mq::Cidr> webhook_allowed_cidrs() const;
    void set_webhook_allowed_cidrs(std::vector<mq::Cidr> cidrs);

  private:
    mq::Config config_;
    ApiOptions options_;
    mq::KeyLayout keys_;
    mq::redis::Endpoint redis_endpoint_;
    Pool<mq::redis::Connection> redis_pool_;
    Pool<mq::pg::Database> pg_pool_;
    std::unique_ptr<mq::pg::Database> cache_db_;
    std::unique_ptr<mq::pg::Database> token_db_;
    std::unique_ptr<mq::ConfigCache> cache_;
    std::unique_ptr<mq::TokenStore> tokens_;
    std::unique_ptr<mq::Authenticator> authenticator_;
    std::unique_ptr<mq::PublishQuota> quota_;
    std::unique_ptr<mq::PublishPipeline> pipeline_;
    std::shared_ptr<mq::PayloadSchemaCache> schemas_ = std::make_shared<mq::PayloadSchemaCache>();
    std::shared_ptr<const mq::Keyring> keyring_ = std::make_shared<const mq::Keyring>();
    std::unique_ptr<mq::PublishUseCase> publishing_;
    std::string receipt_key_;
    Server* server_ = nullptr;
    mutable std::mutex webhook_cidrs_mutex_;
    std::vector<mq::Cidr> webhook_cidrs_;
    // Every config NOTIFY reloads the rates: with PostgreSQL failing, one line per interval.
    mq::ThrottledLog rate_reload_failures_;
    std::mutex counters_mutex_;
    std::map<std::string, std::unique_ptr<TenantCounters>> counters_;
    mq::metrics::Exposition metrics_;
    LatencyHistogram pull_latency_{metrics_.registry()};
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    std::int64_t started_unix_ms_ = 0;
    // Last, so it goes first; ~App also stops it explicitly before anything else.
    std::unique_ptr<mq::MaintenanceService> maintenance_;
};

/// Route groups, one file each.
void add_queue_routes(Router& router, App& app);
void add_publish_routes(Router& router, App& app);
void add_subscription_routes(Router& router, App& app);
void add_pull_routes(Router& router, App& app);
void add_monitor_routes(Router& router, App& app);
void add_internal_routes(Router& router, App& app);
void add_schedule_routes(Router& router, App& app);
void add_dead_letter_routes(Router& router, App& app);
void add_audit_routes(Router& router, App& app);

/// Shared by the publish and internal routes: admits `requests` to `queue` through the
/// publish use case (quota, limits, schema, encryption), then the pipeline; `reply` gets the single
/// or batch answer. `refused`: per request, an error found already (the request is then skipped).
/// `charge_quota` false: the internal routes (platform traffic is not the tenant's quota).
/// `request_id` names the request in the log when a backend failure is hidden from the answer.
void publish_to(App& app, const std::shared_ptr<const mq::Queue>& queue,
                std::vector<mq::PublishRequest> requests, bool batch, std::string request_id,
                Reply reply, std::vector<std::optional<mq::Error>> refused = {},
                bool charge_quota = true);

/// Process resident memory in bytes (mq::metrics::read_process_figures), 0 when unknown.
std::int64_t resident_memory_bytes();

}  // namespace mqapi
