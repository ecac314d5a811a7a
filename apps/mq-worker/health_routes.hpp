#pragma once

// GET /livez and GET /readyz of mq-worker, served on its metrics port beside /metrics
// (docs/operations.md, "Signals and health"). No token: they say only whether the
// process runs and whether it can deliver.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace mqworker {

/// Why the worker cannot deliver now ("redis_unreachable", "subscriptions_not_started"),
/// or nothing when it can. Called per /readyz request: it must be cheap.
using Readiness = std::function<std::optional<std::string>()>;

struct HealthAnswer {
    unsigned status = 200;
    std::string body;  ///< JSON: {"status":...}
};

/// The answer to GET `target` when it is /livez or /readyz; nothing for any other target.
/// Without `readiness`, /readyz answers ready.
std::optional<HealthAnswer> health_answer(std::string_view target, const Readiness& readiness);

}  // namespace mqworker
