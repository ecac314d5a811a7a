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

namespace {

// The worker file's keys other than `subscriptions`, as a settings layer.
SettingLayer worker_file_settings(const YamlDocument& doc) {
    SettingLayer layer;
    layer.source = SettingSource::kFile;
    for (const auto& [key, value] : doc.json.items()) {
        if (key == "subscriptions") continue;
        const std::string where = doc.where("/" + key);
        const SettingSpec* spec = find_setting_by_key(key);
        if (!spec) throw_unknown_setting(key, where);
        if (value.is_object())
            throw ValidationError(where + ": '" + key + "' must be a scalar value",
                                  {{"field", key}});
        std::string text;
        if (value.is_string())
            text = value.get<std::string>();
        else if (value.is_array())  // webhook_allowed_cidrs: [a, b]
            for (const auto& item : value)
                text += (text.empty() ? "" : ",") +
                        (item.is_string() ? item.get<std::string>() : item.dump());
        else if (!value.is_null())
            text = value.dump();
        layer.entries.push_back({spec->name, text, where});
    }
    return layer;
}

}  // namespace

WorkerConfig load_worker_config(const std::string& path,
                                const std::map<std::string, std::string>& env,
                                std::vector<SettingLayer> layers) {
    YamlDocument doc;
    doc.json = nlohmann::json::object();
    if (!path.empty()) {
        doc = load_yaml(path);
        if (doc.json.is_null()) doc.json = nlohmann::json::object();
    }
    ConfigLoader loader(kMqWorker);
    if (doc.json.is_object()) loader.add(worker_file_settings(doc));  // unknown keys first
    static const nlohmann::json schema =
        nlohmann::json::parse(embedded_schema("worker.schema.json"));
    validate_schema(doc, schema);
    loader.add(environment_layer(env, kMqWorker));
    for (auto& layer : layers) loader.add(std::move(layer));
    LoadedConfig loaded = loader.load();

    WorkerConfig wc;
    wc.base = std::move(loaded.config);
    wc.origins = std::move(loaded.origins);
    const auto& j = doc.json;
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
