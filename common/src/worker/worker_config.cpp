#include "mq/worker/worker_config.hpp"

#include "mq/config/schemas.hpp"
#include "mq/config/yaml_json.hpp"
#include "mq/core/ip_address.hpp"
#include "mq/core/time.hpp"
#include "mq/deliver/exec.hpp"
#include "mq/deliver/log.hpp"
#include "mq/deliver/webhook.hpp"
#include "mq/error.hpp"

namespace mq {

namespace {

std::chrono::milliseconds duration(const nlohmann::json& v, const std::string& field) {
    if (v.is_number_integer()) return std::chrono::milliseconds(v.get<std::int64_t>());
    return parse_duration(v.get<std::string>(), field);
}

}  // namespace

Subscription subscription_from_yaml_entry(const nlohmann::json& entry) {
    if (!entry.is_object()) throw ValidationError("a subscription must be a mapping");
    nlohmann::json flat = entry;
    flat.erase("retry");
    if (entry.contains("retry")) {
        const auto& r = entry["retry"];
        for (const char* k : {"max_attempts", "initial_backoff", "max_backoff", "jitter"})
            if (r.contains(k)) flat[k] = r[k];
        if (r.contains("multiplier")) flat["backoff_multiplier"] = r["multiplier"];
    }
    flat.erase("handler");
    if (entry.contains("handler")) {
        nlohmann::json handler = entry["handler"];
        if (handler.contains("type")) flat["type"] = handler["type"];
        handler.erase("type");
        flat["handler"] = handler;
    }
    return subscription_from_json(flat);
}

void set_metrics_address(WorkerConfig& wc, std::string_view value, const std::string& where) {
    if (!parse_ip(value))
        throw ValidationError(where +
                                  ": metrics address must be an IPv4 or IPv6 address such as "
                                  "127.0.0.1, 0.0.0.0 or ::, not \"" +
                                  printable(value) + "\"",
                              {{"field", "metrics_address"}});
    wc.metrics_address = std::string(value);
}

WorkerConfig load_worker_config(const std::string& path,
                                const std::map<std::string, std::string>& env) {
    YamlDocument doc = load_yaml(path);
    if (doc.json.is_null()) doc.json = nlohmann::json::object();
    static const nlohmann::json schema =
        nlohmann::json::parse(embedded_schema("worker.schema.json"));
    validate_schema(doc, schema);

    WorkerConfig wc;
    const auto& j = doc.json;
    auto setting = [&](const char* key, const char* env_name) {
        if (j.contains(key))
            apply_setting(wc.base, env_name,
                          j[key].is_string() ? j[key].get<std::string>() : j[key].dump(),
                          doc.where(std::string("/") + key));
    };
    setting("redis_url", "REDIS_URL");
    setting("redis_tls_ca_file", "REDIS_TLS_CA_FILE");
    setting("redis_tls_ca_dir", "REDIS_TLS_CA_DIR");
    setting("redis_tls_cert_file", "REDIS_TLS_CERT_FILE");
    setting("redis_tls_key_file", "REDIS_TLS_KEY_FILE");
    setting("redis_tls_server_name", "REDIS_TLS_SERVER_NAME");
    setting("database_url", "DATABASE_URL");
    setting("redis_key_prefix", "REDIS_KEY_PREFIX");
    setting("tenant", "MQ_TENANT");
    setting("log_format", "LOG_FORMAT");
    setting("log_level", "LOG_LEVEL");
    setting("maintenance", "MAINTENANCE");
    setting("retention_trim", "RETENTION_TRIM");
    setting("allow_operator_handlers", "MQ_ALLOW_OPERATOR_HANDLERS");
    if (j.contains("webhook_allowed_cidrs")) {
        // A list in YAML, a comma-separated string in the environment.
        std::string list;
        for (const auto& c : j["webhook_allowed_cidrs"]) list += c.get<std::string>() + ",";
        apply_setting(wc.base, "WEBHOOK_ALLOWED_CIDRS", list, doc.where("/webhook_allowed_cidrs"));
    }
    for (const char* name : {"REDIS_URL",
                             "REDIS_TLS_CA_FILE",
                             "REDIS_TLS_CA_DIR",
                             "REDIS_TLS_CERT_FILE",
                             "REDIS_TLS_KEY_FILE",
                             "REDIS_TLS_SERVER_NAME",
                             "DATABASE_URL",
                             "REDIS_KEY_PREFIX",
                             "MQ_TENANT",
                             "LOG_FORMAT",
                             "LOG_LEVEL",
                             "MAINTENANCE",
                             "RETENTION_TRIM",
                             "DEAD_LETTER_MAX_LENGTH",
                             "DEAD_LETTER_MAX_AGE",
                             "DEAD_LETTER_RETENTION",
                             "MAX_MESSAGE_SIZE",
                             "MQ_KEYRING_FILE",
                             "WEBHOOK_ALLOWED_CIDRS",
                             "MQ_ALLOW_OPERATOR_HANDLERS"})
        if (auto it = env.find(name); it != env.end())
            apply_setting(wc.base, name, it->second, "environment");
    if (j.contains("consumer_name")) wc.consumer_name = j["consumer_name"];
    if (j.contains("metrics_port")) wc.metrics_port = j["metrics_port"];
    if (j.contains("metrics_address"))
        set_metrics_address(wc, j["metrics_address"].get<std::string>(),
                            doc.where("/metrics_address"));
    if (auto it = env.find("METRICS_ADDRESS"); it != env.end())
        set_metrics_address(wc, it->second, "METRICS_ADDRESS");
    if (j.contains("shutdown_timeout"))
        wc.shutdown_timeout = duration(j["shutdown_timeout"], "shutdown_timeout");

    if (!j.contains("subscriptions")) return wc;
    for (std::size_t i = 0; i < j["subscriptions"].size(); ++i) {
        const auto& s = j["subscriptions"][i];
        const std::string pointer = "/subscriptions/" + std::to_string(i);
        try {
            Subscription sub = subscription_from_yaml_entry(s);
            sub.tenant = wc.base.tenant;
            sub.managed_by = "worker";
            sub.origin = kOriginOperator;  // the worker file is the operator's
            sub.created_by = "worker";
            validate(sub);
            make_handler(sub);  // the handler's own checks (URL, command...) now, not at run time
            wc.subscriptions.push_back(std::move(sub));
            wc.where.push_back(doc.where(pointer));
        } catch (const ValidationError& e) {
            std::string field = e.details().value("field", "");
            std::string at =
                field.empty() ? doc.where(pointer) : doc.where(pointer + "/handler/" + field);
            if (!field.empty() && at == doc.where(pointer + "/handler"))
                at = doc.where(pointer + "/" + field);
            throw ValidationError(at + ": " + e.what(), e.details());
        }
    }
    return wc;
}

std::shared_ptr<Handler> make_handler(const Subscription& sub,
                                      std::shared_ptr<const DestinationPolicy> policy) {
    const bool operators = sub.origin == kOriginOperator;
    if (is_operator_only(sub) && !operators)
        throw Error(ErrorCode::kHandlerForbidden,
                    "subscription '" + sub.name + "' (" + sub.type +
                        ") was not set by an operator (" + sub.created_by +
                        "); such handlers run only when an operator created or confirmed them",
                    {{"field", "type"}});
    if (sub.type == "webhook") {
        WebhookConfig c = webhook_config_from_json(sub.handler);
        if (!operators)
            c.destination_policy =
                policy ? std::move(policy) : std::make_shared<const DestinationPolicy>();
        return std::make_shared<WebhookHandler>(std::move(c));
    }
    if (sub.type == "exec")
        return std::make_shared<ExecHandler>(exec_config_from_json(sub.handler));
    if (sub.type == "log") return std::make_shared<LogHandler>(log_config_from_json(sub.handler));
    throw ValidationError("subscription '" + sub.name + "' has type '" + sub.type +
                              "': mq-worker runs webhook, exec and log subscriptions (pull ones "
                              "are served by mq-api)",
                          {{"field", "type"}});
}

}  // namespace mq
