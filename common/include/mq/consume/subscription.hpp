#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace mq {

/// How often and how patiently a subscription retries a failed delivery.
struct RetryPolicy {
    int max_attempts = 5;  ///< deliveries in all, the first included
    std::chrono::milliseconds initial_backoff{1000};
    std::chrono::milliseconds max_backoff{300000};
    double multiplier = 2.0;
    double jitter = 0.2;  ///< +/- this fraction of the backoff, drawn per retry
};

/// The pause before delivery number `delivery_count + 1`, after `delivery_count` failed:
/// initial * multiplier^(delivery_count-1), capped at max, then spread by jitter using
/// `unit_random` in [0, 1).
std::chrono::milliseconds backoff_for(const RetryPolicy& policy, int delivery_count,
                                      double unit_random);

/// A subscription: a consumer group (consumer_group()) on every partition of its queue.
struct Subscription {
    std::string id;      ///< uuid
    std::string tenant;  ///< the subscriber's tenant: it owns, sees and consumes the subscription
    std::string queue;
    /// The tenant owning `queue`; empty means `tenant`. Another tenant's queue must be
    /// is_public (docs/auth.md); such a subscription is pull only.
    std::string queue_tenant;
    std::string name;
    std::string type = "pull";                          ///< pull | webhook | exec
    nlohmann::json handler = nlohmann::json::object();  ///< handler settings for `type`
    std::string start_from = "latest";                  ///< earliest | latest (at creation)
    RetryPolicy retry;
    std::chrono::milliseconds visibility_timeout{30000};
    bool dead_letter = true;
    nlohmann::json filter;  ///< null: every message; else {"headers": {name: value}}
    int concurrency = 1;
    int batch_size = 10;
    std::optional<double> rate_limit_per_s;
    std::string description;
    std::string status = "active";  ///< active | paused
    std::string managed_by;         ///< the `mqctl apply` scope owning it, or empty
    /// Who set the current type and handler: kOriginOperator or kOriginApi. On create and
    /// update the writer's origin (SubscriptionCatalog keeps the stored one when an update
    /// leaves type and handler alone); never read from JSON, so no client can claim it.
    std::string origin = "api";
    /// The writer behind `origin`: "mqctl", "apply:<scope>", "worker", "token:<id>".
    std::string created_by;
    std::string created_at;
    std::string updated_at;
};

/// Values of Subscription::origin (docs/security.md, "Handler trust boundary").
inline constexpr const char* kOriginOperator = "operator";
inline constexpr const char* kOriginApi = "api";

/// Does the handler run code or write files on a worker host (exec; log to a file path,
/// or a log handler whose settings cannot be read)? Such handlers are operator-only: an
/// API token may not set them, and `mq-worker --from-db` runs them only when an operator
/// set them and the worker allows operator handlers.
bool is_operator_only(const Subscription& s);

/// The tenant whose queue (and stream keys) the subscription reads.
const std::string& queue_owner(const Subscription& s);
/// Subscribes to another tenant's (public) queue.
bool is_cross_tenant(const Subscription& s);
/// Separates the subscriber tenant from the name in a cross-tenant group name; never in a
/// tenant or subscription name, so no group name can stand for two subscriptions.
inline constexpr char kGroupTenantSeparator = ':';
/// The Redis consumer group on the queue's partition streams: the subscription name for
/// a subscription on its own tenant's queue (as always), "<subscriber tenant>:<name>" on
/// another tenant's queue, so two tenants' subscriptions of the same name stay apart.
std::string consumer_group(const Subscription& s);
/// Is `group` the group of another tenant's subscription (consumer_group of a cross-tenant
/// one)? The queue's message history records its own tenant's subscriptions only: the
/// owner never sees who else consumes a public queue (docs/history.md).
inline bool is_cross_tenant_group(std::string_view group) {
    return group.find(kGroupTenantSeparator) != std::string_view::npos;
}

/// Throws ValidationError naming the field for out-of-range settings.
void validate(const Subscription& s);

/// As the API and `-o json` show it; `from_json` reads the same shape (durations in ms
/// or as "5s" strings) over the defaults and refuses unknown fields.
nlohmann::json to_json(const Subscription& s);
Subscription subscription_from_json(const nlohmann::json& j, Subscription defaults = {});

/// Does a message with these headers pass the filter? A filter is
/// {"headers": {"name": "value" | ["v1", "v2"]}}: every named header must be present with
/// one of the values.
bool filter_matches(const nlohmann::json& filter, const std::string& headers_json);

}  // namespace mq
