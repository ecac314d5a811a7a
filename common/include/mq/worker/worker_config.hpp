#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mq/config/config.hpp"
#include "mq/config/settings.hpp"
#include "mq/consume/subscription.hpp"
#include "mq/deliver/destination_policy.hpp"
#include "mq/deliver/handler.hpp"

namespace mq {

/// What `mq-worker --config FILE` runs. Validated against schemas/worker.schema.json.
struct WorkerConfig {
    Config base;  ///< every setting; mq-worker's own in base.worker
    /// Where each setting mq-worker reads came from (for --print-config).
    std::map<std::string, SettingOrigin> origins;

    std::vector<Subscription> subscriptions;  ///< type and handler settings filled in
    std::vector<std::string> where;           ///< file:line of each subscription
};

/// Reads, schema-checks and converts a worker file (none when `path` is empty). Its keys
/// besides `subscriptions` are settings (mq/config/settings.hpp; an unknown one is refused
/// naming the closest), merged by ConfigLoader with the environment and `layers` (flags):
/// default < file < environment < flag. Throws ValidationError naming file:line and the
/// field.
WorkerConfig load_worker_config(const std::string& path,
                                const std::map<std::string, std::string>& env,
                                std::vector<SettingLayer> layers = {});

/// Sets wc.metrics_address to `value`, an IPv4 or IPv6 address ("0.0.0.0", "::" for every
/// interface). Throws ValidationError naming `where` (file:line, "METRICS_ADDRESS", a flag).
void set_metrics_address(WorkerConfig& wc, std::string_view value, const std::string& where);

/// One entry of a `subscriptions:` list in YAML (worker file or `mqctl apply` file) as a
/// Subscription: `retry: {max_attempts, initial_backoff, max_backoff, multiplier, jitter}`
/// and `handler: {type, ...settings}` flattened over the defaults. Tenant, managed_by and
/// the handler's own checks are the caller's. Throws ValidationError with the field.
Subscription subscription_from_yaml_entry(const nlohmann::json& entry);

/// Builds the handler a subscription's type and handler settings describe. The trust
/// boundary (docs/security.md) holds here too: an operator-only handler (exec, log to a
/// file) whose origin is not the operator's throws Error(kHandlerForbidden), and a webhook
/// whose origin is not the operator's checks every connection with `policy` (a policy
/// without allowed ranges when null).
std::shared_ptr<Handler> make_handler(const Subscription& sub,
                                      std::shared_ptr<const DestinationPolicy> policy = nullptr);

}  // namespace mq
