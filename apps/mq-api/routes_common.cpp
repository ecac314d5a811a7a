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

void only_fields(const nlohmann::json& body, std::initializer_list<const char*> allowed) {
    for (auto it = body.begin(); it != body.end(); ++it)
        if (std::none_of(allowed.begin(), allowed.end(),
                         [&](const char* a) { return it.key() == a; }))
            throw mq::ValidationError("unknown field \"" + it.key() + "\"", {{"field", it.key()}});
}

}  // namespace mqapi
