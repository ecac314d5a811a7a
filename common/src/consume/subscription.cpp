#include "mq/consume/subscription.hpp"

#include <cmath>

#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/deliver/log.hpp"
#include "mq/error.hpp"

namespace mq {

std::chrono::milliseconds backoff_for(const RetryPolicy& p, int delivery_count,
                                      double unit_random) {
    double base = static_cast<double>(p.initial_backoff.count()) *
                  std::pow(p.multiplier, std::max(0, delivery_count - 1));
    base = std::min(base, static_cast<double>(p.max_backoff.count()));
    double spread = base * p.jitter * (2.0 * unit_random - 1.0);
    double ms = std::max(0.0, base + spread);
    return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

namespace {
[[noreturn]] void invalid(const std::string& field, const std::string& why) {
    throw ValidationError(field + " " + why, {{"field", field}});
}

void validate_filter(const nlohmann::json& f) {
    if (f.is_null()) return;
    if (!f.is_object())
        invalid("filter", "must be an object like {\"headers\": {\"name\": \"value\"}}");
    for (const auto& [k, v] : f.items()) {
        if (k != "headers") invalid("filter", "supports only \"headers\", not \"" + k + "\"");
        if (!v.is_object()) invalid("filter.headers", "must be an object of name: value");
        for (const auto& [name, want] : v.items()) {
            bool ok = want.is_string();
            if (want.is_array()) {
                ok = !want.empty();
                for (const auto& w : want) ok = ok && w.is_string();
            }
            if (!ok) invalid("filter.headers." + name, "must be a string or a list of strings");
        }
    }
}

std::chrono::milliseconds duration_field(const nlohmann::json& v, const std::string& field) {
    if (v.is_number_integer() && v.get<std::int64_t>() >= 0)
        return std::chrono::milliseconds(v.get<std::int64_t>());
    if (v.is_string()) return parse_duration(v.get<std::string>(), field);
    invalid(field, "must be milliseconds or a duration like \"5s\"");
}
}  // namespace

bool is_operator_only(const Subscription& s) {
    if (s.type == "exec") return true;
    if (s.type != "log") return false;
    try {
        const std::string path = log_config_from_json(s.handler).path;
        return path != "-" && path != "stdout" && path != "stderr";
    } catch (const Error&) {
        return true;  // unreadable settings: assume the worst
    }
}

const std::string& queue_owner(const Subscription& s) {
    return s.queue_tenant.empty() ? s.tenant : s.queue_tenant;
}

bool is_cross_tenant(const Subscription& s) { return queue_owner(s) != s.tenant; }

std::string consumer_group(const Subscription& s) {
    return is_cross_tenant(s) ? s.tenant + kGroupTenantSeparator + s.name : s.name;
}

void validate(const Subscription& s) {
    validate_name("subscription name", s.name);
    validate_name("queue name", s.queue);
    if (!s.queue_tenant.empty()) validate_name("queue_tenant", s.queue_tenant);
    if (s.type != "pull" && s.type != "webhook" && s.type != "exec" && s.type != "log")
        invalid("type", "must be pull, webhook, exec or log");
    if (s.start_from != "earliest" && s.start_from != "latest")
        invalid("start_from", "must be earliest or latest");
    if (s.retry.max_attempts < 1 || s.retry.max_attempts > 1000)
        invalid("max_attempts", "must be from 1 to 1000");
    if (s.retry.initial_backoff.count() < 0) invalid("initial_backoff", "must not be negative");
    if (s.retry.max_backoff < s.retry.initial_backoff)
        invalid("max_backoff", "must not be less than initial_backoff");
    if (s.retry.multiplier < 1.0 || s.retry.multiplier > 100.0)
        invalid("backoff_multiplier", "must be from 1 to 100");
    if (s.retry.jitter < 0.0 || s.retry.jitter > 1.0) invalid("jitter", "must be from 0 to 1");
    if (s.visibility_timeout.count() < 1000) invalid("visibility_timeout", "must be at least 1s");
    if (s.concurrency < 1 || s.concurrency > 1024) invalid("concurrency", "must be from 1 to 1024");
    if (s.batch_size < 1 || s.batch_size > 1000) invalid("batch_size", "must be from 1 to 1000");
    if (s.rate_limit_per_s && !(*s.rate_limit_per_s > 0))
        invalid("rate_limit", "must be greater than zero");
    if (!s.handler.is_object()) invalid("handler", "must be an object");
    if (s.description.size() > 1024) invalid("description", "is longer than 1024 bytes");
    if (s.status != "active" && s.status != "paused") invalid("status", "must be active or paused");
    if (s.origin != kOriginOperator && s.origin != kOriginApi)
        invalid("origin", "must be operator or api");
    if (s.created_by.size() > 200) invalid("created_by", "is longer than 200 bytes");
    validate_filter(s.filter);
    // mq-worker learns of a queue turning private only when it restarts, so delivery to
    // another tenant stays with mq-api, which checks the queue on every pull.
    if (is_cross_tenant(s) && s.type != "pull")
        invalid("type", "must be pull for a subscription on another tenant's queue");
}

nlohmann::json to_json(const Subscription& s) {
    return {{"id", s.id},
            {"tenant", s.tenant},
            {"queue", s.queue},
            {"queue_tenant", queue_owner(s)},
            {"name", s.name},
            {"type", s.type},
            {"handler", s.handler},
            {"start_from", s.start_from},
            {"max_attempts", s.retry.max_attempts},
            {"initial_backoff_ms", s.retry.initial_backoff.count()},
            {"max_backoff_ms", s.retry.max_backoff.count()},
            {"backoff_multiplier", s.retry.multiplier},
            {"jitter", s.retry.jitter},
            {"visibility_timeout_ms", s.visibility_timeout.count()},
            {"dead_letter", s.dead_letter},
            {"filter", s.filter},
            {"concurrency", s.concurrency},
            {"batch_size", s.batch_size},
            {"rate_limit_per_s",
             s.rate_limit_per_s ? nlohmann::json(*s.rate_limit_per_s) : nlohmann::json()},
            {"description", s.description},
            {"status", s.status},
            {"managed_by", s.managed_by.empty() ? nlohmann::json() : nlohmann::json(s.managed_by)},
            {"origin", s.origin},
            {"created_by", s.created_by},
            {"created_at", s.created_at},
            {"updated_at", s.updated_at}};
}

Subscription subscription_from_json(const nlohmann::json& j, Subscription s) {
    if (!j.is_object()) throw ValidationError("a subscription must be an object");
    auto str = [](const nlohmann::json& v, const std::string& field) {
        if (!v.is_string()) invalid(field, "must be a string");
        return v.get<std::string>();
    };
    auto integer = [](const nlohmann::json& v, const std::string& field) {
        if (!v.is_number_integer()) invalid(field, "must be an integer");
        return v.get<std::int64_t>();
    };
    auto number = [](const nlohmann::json& v, const std::string& field) {
        if (!v.is_number()) invalid(field, "must be a number");
        return v.get<double>();
    };
    for (const auto& [k, v] : j.items()) {
        if (k == "name")
            s.name = str(v, k);
        else if (k == "queue")
            s.queue = str(v, k);
        else if (k == "queue_tenant")
            s.queue_tenant = str(v, k);
        else if (k == "type")
            s.type = str(v, k);
        else if (k == "handler")
            s.handler = v;
        else if (k == "start_from")
            s.start_from = str(v, k);
        else if (k == "max_attempts")
            s.retry.max_attempts = static_cast<int>(integer(v, k));
        else if (k == "initial_backoff" || k == "initial_backoff_ms")
            s.retry.initial_backoff = duration_field(v, k);
        else if (k == "max_backoff" || k == "max_backoff_ms")
            s.retry.max_backoff = duration_field(v, k);
        else if (k == "backoff_multiplier")
            s.retry.multiplier = number(v, k);
        else if (k == "jitter")
            s.retry.jitter = number(v, k);
        else if (k == "visibility_timeout" || k == "visibility_timeout_ms")
            s.visibility_timeout = duration_field(v, k);
        else if (k == "dead_letter") {
            if (!v.is_boolean()) invalid(k, "must be true or false");
            s.dead_letter = v.get<bool>();
        } else if (k == "filter")
            s.filter = v;
        else if (k == "concurrency")
            s.concurrency = static_cast<int>(integer(v, k));
        else if (k == "batch_size")
            s.batch_size = static_cast<int>(integer(v, k));
        else if (k == "rate_limit" || k == "rate_limit_per_s") {
            if (v.is_null())
                s.rate_limit_per_s.reset();
            else
                s.rate_limit_per_s = number(v, k);
        } else if (k == "description")
            s.description = str(v, k);
        else if (k == "status")
            s.status = str(v, k);
        else if (k == "id" || k == "tenant" || k == "created_at" || k == "updated_at" ||
                 k == "managed_by" || k == "origin" || k == "created_by")
            continue;
        else
            invalid(k, "is not a subscription setting");
    }
    return s;
}

bool filter_matches(const nlohmann::json& filter, const std::string& headers_json) {
    if (filter.is_null() || !filter.contains("headers")) return true;
    nlohmann::json headers = headers_json.empty()
                                 ? nlohmann::json::object()
                                 : nlohmann::json::parse(headers_json, nullptr, false);
    if (!headers.is_object()) return false;
    for (const auto& [name, want] : filter["headers"].items()) {
        auto it = headers.find(name);
        if (it == headers.end() || !it->is_string()) return false;
        const auto& have = it->get_ref<const std::string&>();
        bool ok = false;
        if (want.is_string())
            ok = have == want.get_ref<const std::string&>();
        else
            for (const auto& w : want)
                ok = ok || (w.is_string() && have == w.get_ref<const std::string&>());
        if (!ok) return false;
    }
    return true;
}

}  // namespace mq
