#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mq/worker/runner.hpp"

namespace mqworker {

/// GET /metrics (Prometheus text) and GET /healthz on 127.0.0.1:<port>, served from one
/// thread with Boost.Beast. Stops in its destructor. No token: it binds loopback only, and
/// it names the tenant, queue and subscription of every runner (every tenant's, for
/// `--from-db` without `--tenant`); docs/security.md, "Metrics and health".
class MetricsServer {
  public:
    /// `runners` is called per request: the set changes while the worker runs.
    using Runners = std::function<std::vector<std::shared_ptr<mq::SubscriptionRunner>>()>;
    MetricsServer(int port, Runners runners);
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

}  // namespace mqworker
