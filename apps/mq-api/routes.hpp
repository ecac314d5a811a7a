#pragma once

// Helpers shared by the route files.

#include "app.hpp"
#include "http.hpp"
#include "router.hpp"

namespace mqapi {

/// A JSON field of `body` that must be an integer in [lo, hi], or `fallback` when absent.
std::int64_t int_field(const nlohmann::json& body, const char* field, std::int64_t fallback, std::int64_t lo,
                       std::int64_t hi);

/// Refuses fields of `body` not in `allowed`.
void only_fields(const nlohmann::json& body, std::initializer_list<const char*> allowed);

}  // namespace mqapi

namespace mqapi {

/// Sums of a queue's partitions (stream entries, delayed, pending, lag, dead letters).
struct QueueTotals {
    std::int64_t messages = 0, delayed = 0, pending = 0, lag = 0, dead_letters = 0, groups = 0, consumers = 0;
    std::int64_t subscriptions = 0;
};
QueueTotals queue_totals(App& app, mq::redis::Connection& redis, const mq::Queue& q);
nlohmann::json to_json(const QueueTotals& t);

/// The JSON metrics object over `tenants` (one tenant, or every tenant for admins).
nlohmann::json metrics_json(App& app, const std::vector<std::string>& tenants);
/// The health object and whether it is healthy (200) or not (503).
std::pair<bool, nlohmann::json> health_json(App& app, bool detailed);

}  // namespace mqapi
