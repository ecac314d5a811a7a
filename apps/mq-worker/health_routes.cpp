#include "health_routes.hpp"

#include <nlohmann/json.hpp>

namespace mqworker {

std::optional<HealthAnswer> health_answer(std::string_view target, const Readiness& readiness) {
    if (target == "/livez") return HealthAnswer{200, R"({"status":"alive"})"};
    if (target != "/readyz") return std::nullopt;
    std::optional<std::string> reason = readiness ? readiness() : std::nullopt;
    if (!reason) return HealthAnswer{200, R"({"status":"ready"})"};
    return HealthAnswer{503, nlohmann::json{{"status", "not_ready"}, {"reason", *reason}}.dump()};
}

}  // namespace mqworker
