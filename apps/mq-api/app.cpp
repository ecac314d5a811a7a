#include "app.hpp"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "mq/core/time.hpp"
#include "mq/maintenance/tasks.hpp"
#include "mq/queue/catalog.hpp"

namespace mqapi {

LatencyHistogram::LatencyHistogram(prometheus::Registry& registry)
    : histogram_(prometheus::BuildHistogram()
                     .Name("mq_message_latency_seconds")
                     .Help("Publish to first pull delivery, in seconds.")
                     .Register(registry)
                     .Add({}, prometheus::Histogram::BucketBoundaries{
                                  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                  5, 10, 30, 60, 300})) {}

std::int64_t resident_memory_bytes() {
    return mq::metrics::read_process_figures().rss_bytes.value_or(0);
}

App::App(mq::Config config, ApiOptions options)
    : config_(std::move(config)),
      options_(std::move(options)),
      keys_(config_.key_prefix),
      redis_endpoint_(mq::redis::endpoint_from_config(config_)),
      redis_pool_([this] { return std::make_unique<mq::redis::Connection>(redis_endpoint_); }),
      pg_pool_([this] { return std::make_unique<mq::pg::Database>(config_.database_url); }) {
    started_unix_ms_ = mq::now_ms();
    webhook_cidrs_ = config_.webhook_allowed_cidrs;
    if (!config_.keyring_file.empty())
        keyring_ = std::make_shared<const mq::Keyring>(mq::Keyring::load(config_.keyring_file));
    receipt_key_ = options_.receipt_key;
    if (receipt_key_.empty()) {
        // Receipts then stay valid only for this process: set RECEIPT_SECRET when several
        // instances serve one subscription.
        unsigned char bytes[32];
        RAND_bytes(bytes, sizeof bytes);
        receipt_key_.assign(reinterpret_cast<const char*>(bytes), sizeof bytes);
    }
}

App::~App() {
    // Maintenance threads first: they must not run while the process tears down. The
    // object stays until the cache's listener (whose callback pokes it) is gone.
    if (maintenance_) maintenance_->stop();
    // The cache's listener thread runs the callbacks set in start(), which use the
    // authenticator and the quota: stop it before those go (members die in reverse order
    // of declaration, and cache_ is declared before them).
    cache_.reset();
}

void App::start() {
    {
        mq::redis::Connection probe(redis_endpoint_);
        probe.check_server_policy();
    }
    cache_db_ = std::make_unique<mq::pg::Database>(config_.database_url);
    token_db_ = std::make_unique<mq::pg::Database>(config_.database_url);
    tokens_ = std::make_unique<mq::TokenStore>(*token_db_);
    // Unknown tokens are remembered for 30 s: every change to api_tokens (a new token
    // included) NOTIFYs and clears both caches, and a reconnected listener does too.
    authenticator_ = std::make_unique<mq::Authenticator>(*tokens_, std::chrono::seconds(5),
                                                         mq::Authenticator::kRefreshWindow,
                                                         std::chrono::seconds(30));
    quota_ = std::make_unique<mq::PublishQuota>(options_.default_publish_rate);
    reload_rates();
    if (config_.maintenance) {
        char host[256] = "host";
        gethostname(host, sizeof host - 1);
        maintenance_ = mq::make_maintenance_service(
            config_, "mq-api@" + std::string(host) + "-" + std::to_string(getpid()));
    }
    cache_ = std::make_unique<mq::ConfigCache>(*cache_db_, config_.database_url);
    cache_->on_tokens_changed([this] {
        authenticator_->invalidate();
        try {
            reload_rates();  // tenants changes ride on the same notification
        } catch (const std::exception& e) {
            rate_reload_failures_.warn("cannot reload tenant publish rates: {}", e.what());
        }
    });
    // Tenant rows (publish_rate_limit, suspension) notify like queues do.
    cache_->on_changed([this](const std::string&) {
        if (maintenance_) maintenance_->refresh_queues();  // a new queue gets its mover now
        try {
            reload_rates();
        } catch (const std::exception& e) {
            rate_reload_failures_.warn("cannot reload tenant publish rates: {}", e.what());
        }
    });
    cache_->start();
    mq::PublishLimits limits;
    limits.max_message_size = config_.max_message_size;
    publishing_ = std::make_unique<mq::PublishUseCase>(limits, keyring_, schemas_, quota_.get());
    // Each I/O thread gets its own connection when main attaches the server's contexts.
    pipeline_ = std::make_unique<mq::PublishPipeline>(redis_endpoint_, keys_, limits);
    if (maintenance_) maintenance_->start();
}

void App::reload_rates() {
    auto db = pg_pool_.acquire();
    for (auto& [tenant, rate] : mq::load_tenant_rates(*db)) quota_->set_rate(tenant, rate);
}

std::vector<mq::Cidr> App::webhook_allowed_cidrs() const {
    std::lock_guard lock(webhook_cidrs_mutex_);
    return webhook_cidrs_;
}

void App::set_webhook_allowed_cidrs(std::vector<mq::Cidr> cidrs) {
    std::lock_guard lock(webhook_cidrs_mutex_);
    webhook_cidrs_ = std::move(cidrs);
}

std::shared_ptr<const mq::Queue> App::queue(const std::string& tenant, const std::string& name) {
    auto q = cache_->queue(tenant, name);
    if (!q) throw mq::queue_not_found(tenant, name);
    return q;
}

TenantCounters& App::counters(const std::string& tenant) {
    std::lock_guard lock(counters_mutex_);
    auto& slot = counters_[tenant];
    if (!slot) slot = std::make_unique<TenantCounters>();
    return *slot;
}

std::vector<std::pair<std::string, TenantCounters*>> App::all_counters() {
    std::lock_guard lock(counters_mutex_);
    std::vector<std::pair<std::string, TenantCounters*>> out;
    for (auto& [t, c] : counters_) out.emplace_back(t, c.get());
    return out;
}

}  // namespace mqapi
