#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mq/worker/runner.hpp"
#include "mq/worker/supervisor.hpp"

namespace mqworker {

/// GET /metrics (Prometheus text) and GET /healthz on <address>:<port> (METRICS_ADDRESS,
/// loopback by default), served from one thread with Boost.Beast. Stops in its destructor.
/// No token: keep it on loopback or a private network, as it names the tenant, queue and
/// subscription of every runner (every tenant's, for
/// `--from-db` without `--tenant`); docs/security.md, "Metrics and health".
class MetricsServer {
  public:
    /// `runners` is called per request: the set changes while the worker runs.
    using Runners = std::function<std::vector<std::shared_ptr<mq::SubscriptionRunner>>()>;
    /// `skipped` (optional): the database's subscriptions not run, for
    /// mq_worker_subscriptions_skipped.
    using Skipped = std::function<std::vector<mq::SkippedSubscription>()>;
    MetricsServer(const std::string& address, int port, Runners runners, Skipped skipped = {});
    ~MetricsServer();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// The Prometheus exposition of every runner's counters and, when `redis` is given, the
/// queue inspector's figures of the subscriptions they run (one Redis round trip; left out
/// while Redis is down, with mq_worker_queue_figures_up 0).
std::string render_metrics(const std::vector<std::shared_ptr<mq::SubscriptionRunner>>& runners,
                           mq::redis::Connection* redis = nullptr);
/// mq_worker_subscriptions_skipped{reason}: how many subscriptions of the database this
/// worker does not run, by reason (api_origin, operator_handlers_not_allowed,
/// invalid_handler); every reason is listed, 0 included.
std::string render_skipped(const std::vector<mq::SkippedSubscription>& skipped);

}  // namespace mqworker
