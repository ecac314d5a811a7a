#include <algorithm>

#include "routes.hpp"

namespace mqapi {

std::int64_t int_field(const nlohmann::json& body, const char* field, std::int64_t fallback,
                       std::int64_t lo, std::int64_t hi) {
    auto it = body.find(field);
    if (it == body.end() || it->is_null()) return fallback;
    if (!it->is_number_integer())
        throw mq::ValidationError(std::string("\"") + field + "\" must be an integer",
                                  {{"field", field}});
    auto v = it->get<std::int64_t>();
    if (v < lo || v > hi)
        throw mq::ValidationError(std::string("\"") + field + "\" must be from " +
                                      std::to_string(lo) + " to " + std::to_string(hi),
                                  {{"field", field}});
    return v;
}

nlohmann::json without_claimed_tenant(nlohmann::json body, const mq::Principal& principal) {
    for (const char* field : {"tenantId", "tenant_id"}) {
        auto it = body.find(field);
        if (it == body.end()) continue;
        if (!it->is_string())
            throw mq::ValidationError(std::string("\"") + field + "\" must be a string",
                                      {{"field", field}});
        mq::check_claimed_tenant(principal, it->get_ref<const std::string&>());
        body.erase(it);
    }
    return body;
}

void only_fields(const nlohmann::json& body, std::initializer_list<const char*> allowed) {
    for (auto it = body.begin(); it != body.end(); ++it)
        if (std::none_of(allowed.begin(), allowed.end(),
                         [&](const char* a) { return it.key() == a; }))
            throw mq::ValidationError("unknown field \"" + it.key() + "\"", {{"field", it.key()}});
}

void only_query_parameters(const std::map<std::string, std::string>& query,
                           std::initializer_list<const char*> allowed) {
    for (const auto& [k, v] : query)
        if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; }))
            throw mq::ValidationError("unknown query parameter \"" + mq::printable(k) + "\"",
                                      {{"field", mq::printable(k)}});
}

}  // namespace mqapi
