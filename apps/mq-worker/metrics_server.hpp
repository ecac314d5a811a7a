#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "health_routes.hpp"
#include "mq/metrics/exposition.hpp"
#include "mq/worker/runner.hpp"
#include "mq/worker/supervisor.hpp"

namespace mqworker {

/// GET /metrics (Prometheus text, mq::metrics::Exposition) and GET /healthz on
/// <address>:<port> (127.0.0.1 unless METRICS_ADDRESS / --metrics-address says otherwise),
/// served from one thread with Boost.Beast. Stops in its destructor. No token: it names the
/// tenant, queue and subscription of every runner (every tenant's, for `--from-db` without
/// `--tenant`), so bind it to an address only trusted scrapers reach; docs/security.md,
/// "Metrics and health".
class MetricsServer {
  public:
    /// `runners` is called per request: the set changes while the worker runs.
    using Runners = std::function<std::vector<std::shared_ptr<mq::SubscriptionRunner>>()>;
    /// `skipped` (optional): the database's subscriptions not run, for
    /// mq_worker_subscriptions_skipped.
    using Skipped = std::function<std::vector<mq::SkippedSubscription>()>;
    /// More families asked at every scrape (the outbox relay's); must be thread-safe.
    using Extra = std::function<std::vector<prometheus::MetricFamily>()>;
    /// `readiness` (optional) answers GET /readyz (health_routes.hpp); GET /livez is served too.
    MetricsServer(const std::string& address, int port, Runners runners, Skipped skipped = {},
                  Readiness readiness = {}, Extra extra = {});
    ~MetricsServer();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// The worker's own families: every runner's counters and handler durations and, when
/// `redis` is given, the queue inspector's figures of the subscriptions they run (one Redis
/// round trip; left out while Redis is down, with mq_worker_queue_figures_up 0).
std::vector<prometheus::MetricFamily> runner_families(
    const std::vector<std::shared_ptr<mq::SubscriptionRunner>>& runners,
    mq::redis::Connection* redis = nullptr);
/// mq_worker_subscriptions_skipped{reason}: how many subscriptions of the database this
/// worker does not run, by reason (api_origin, operator_handlers_not_allowed,
/// invalid_handler); every reason is listed, 0 included.
prometheus::MetricFamily skipped_family(const std::vector<mq::SkippedSubscription>& skipped);

}  // namespace mqworker
