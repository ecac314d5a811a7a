#pragma once

// Helpers shared by the route files.

#include "app.hpp"
#include "http.hpp"
#include "mq/queue/inspector.hpp"
#include "router.hpp"

namespace mqapi {

/// A JSON field of `body` that must be an integer in [lo, hi], or `fallback` when absent.
std::int64_t int_field(const nlohmann::json& body, const char* field, std::int64_t fallback,
                       std::int64_t lo, std::int64_t hi);

/// `body` without its "tenantId"/"tenant_id" (the seeds' clients send one), after
/// mq::check_claimed_tenant: a string naming the caller's tenant passes, anything else is
/// 403 (400 when not a string).
nlohmann::json without_claimed_tenant(nlohmann::json body, const mq::Principal& principal);

/// Refuses fields of `body` not in `allowed`.
void only_fields(const nlohmann::json& body, std::initializer_list<const char*> allowed);

/// Refuses query parameters not in `allowed` (400 naming the parameter): a mistyped
/// filter must not answer an unfiltered list.
void only_query_parameters(const std::map<std::string, std::string>& query,
                           std::initializer_list<const char*> allowed);

}  // namespace mqapi

namespace mqapi {

/// A queue's figures from the queue inspector (docs/metrics.md) and the number of its
/// subscriptions in the config cache.
struct QueueTotals {
    mq::QueueFigures figures;
    std::int64_t subscriptions = 0;
};
QueueTotals queue_totals(App& app, mq::redis::Connection& redis, const mq::Queue& q);
/// Several queues in one Redis round trip.
std::vector<QueueTotals> queue_totals(App& app, mq::redis::Connection& redis,
                                      const std::vector<std::shared_ptr<const mq::Queue>>& queues,
                                      mq::InspectOptions options = {});
/// {messages, delayed, pending, lag, dead_letters, subscriptions, backlog, oldest_age_ms,
/// oldest_pending_age_ms}
nlohmann::json to_json(const QueueTotals& t);

/// The JSON metrics object over `tenants` (one tenant, or every tenant for admins).
nlohmann::json metrics_json(App& app, const std::vector<std::string>& tenants);
/// The health object and whether the instance can serve (200: Redis answers, "degraded" when
/// only something else such as PostgreSQL is down) or not (503).
std::pair<bool, nlohmann::json> health_json(App& app, bool detailed);

}  // namespace mqapi
