#include "mq/config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>

#include "mq/config/setting_values.hpp"
#include "mq/config/yaml_loader.hpp"
#include "mq/core/input_file.hpp"
#include "mq/core/names.hpp"
#include "mq/error.hpp"

namespace mq {

namespace {

constexpr const char* kNames[] = {"PORT",
                                  "DATABASE_URL",
                                  "REDIS_URL",
                                  "REDIS_TLS_CA_FILE",
                                  "REDIS_TLS_CA_DIR",
                                  "REDIS_TLS_CERT_FILE",
                                  "REDIS_TLS_KEY_FILE",
                                  "REDIS_TLS_SERVER_NAME",
                                  "REDIS_KEY_PREFIX",
                                  "MAX_MESSAGE_SIZE",
                                  "DEFAULT_TTL",
                                  "MAX_QUEUE_LENGTH",
                                  "CONSUMER_TIMEOUT",
                                  "METRICS_ENABLED",
                                  "INTERNAL_SERVICE_TOKEN",
                                  "LOG_FORMAT",
                                  "LOG_LEVEL",
                                  "MQ_TENANT",
                                  "MQ_KEYRING_FILE",
                                  "DEAD_LETTER_MAX_LENGTH",
                                  "DEAD_LETTER_MAX_AGE",
                                  "DEAD_LETTER_RETENTION",
                                  "MAINTENANCE",
                                  "RETENTION_TRIM",
                                  "WEBHOOK_ALLOWED_CIDRS",
                                  "MQ_ALLOW_OPERATOR_HANDLERS"};

}  // namespace

std::int64_t setting_int(const std::string& name, const std::string& value,
                         const std::string& source, std::int64_t min, std::int64_t max) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || p != value.data() + value.size() || v < min || v > max)
        throw ValidationError(name + "=" + value + " (" + source + ") must be an integer from " +
                                  std::to_string(min) + " to " + std::to_string(max),
                              {{"field", name}});
    return v;
}

bool setting_bool(const std::string& name, const std::string& value, const std::string& source) {
    std::string v = value;
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
    if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
    if (v == "0" || v == "false" || v == "no" || v == "off") return false;
    throw ValidationError(name + "=" + value + " (" + source + ") must be true or false",
                          {{"field", name}});
}

void apply_setting(Config& c, const std::string& name, const std::string& value,
                   const std::string& source) {
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max() / 1000;
    if (name == "PORT")
        c.port = static_cast<int>(setting_int(name, value, source, 0, 65535));
    else if (name == "DATABASE_URL")
        c.database_url = value;
    else if (name == "REDIS_URL")
        c.redis_url = value;
    else if (name == "REDIS_TLS_CA_FILE")
        c.redis_tls_ca_file = value;
    else if (name == "REDIS_TLS_CA_DIR")
        c.redis_tls_ca_dir = value;
    else if (name == "REDIS_TLS_CERT_FILE")
        c.redis_tls_cert_file = value;
    else if (name == "REDIS_TLS_KEY_FILE")
        c.redis_tls_key_file = value;
    else if (name == "REDIS_TLS_SERVER_NAME")
        c.redis_tls_server_name = value;
    else if (name == "REDIS_KEY_PREFIX") {
        if (value.find_first_of("{}") != std::string::npos)
            throw ValidationError("REDIS_KEY_PREFIX (" + source +
                                  ") must not contain '{' or '}': they would break hash tags");
        c.key_prefix = value;
    } else if (name == "MAX_MESSAGE_SIZE")
        c.max_message_size = setting_int(name, value, source, 1, 512LL * 1024 * 1024);
    else if (name == "DEFAULT_TTL")
        c.default_ttl = std::chrono::seconds(setting_int(name, value, source, 1, kMax));
    else if (name == "MAX_QUEUE_LENGTH") {
        if (value.empty() || value == "0")
            c.max_queue_length.reset();
        else
            c.max_queue_length = setting_int(name, value, source, 1, kMax);
    } else if (name == "CONSUMER_TIMEOUT")
        c.consumer_timeout = std::chrono::milliseconds(setting_int(name, value, source, 1, kMax));
    else if (name == "METRICS_ENABLED")
        c.metrics_enabled = setting_bool(name, value, source);
    else if (name == "INTERNAL_SERVICE_TOKEN")
        c.internal_service_token = value;
    else if (name == "LOG_FORMAT") {
        if (value != "text" && value != "json")
            throw ValidationError("LOG_FORMAT=" + value + " (" + source + ") must be text or json");
        c.log_format = value;
    } else if (name == "LOG_LEVEL") {
        static const char* kLevels[] = {"trace", "debug",    "info", "warn",
                                        "error", "critical", "off"};
        if (std::find_if(std::begin(kLevels), std::end(kLevels),
                         [&](const char* l) { return value == l; }) == std::end(kLevels))
            throw ValidationError(
                "LOG_LEVEL=" + value + " (" + source +
                ") must be one of trace, debug, info, warn, error, critical, off");
        c.log_level = value;
    } else if (name == "MQ_TENANT") {
        validate_name("tenant", value);
        c.tenant = value;
    } else if (name == "MQ_KEYRING_FILE")
        c.keyring_file = value;
    else if (name == "DEAD_LETTER_MAX_LENGTH")
        c.dead_letter_max_length = setting_int(name, value, source, 0, kMax);
    else if (name == "DEAD_LETTER_MAX_AGE")
        c.dead_letter_max_age = std::chrono::seconds(setting_int(name, value, source, 0, kMax));
    else if (name == "DEAD_LETTER_RETENTION")
        c.dead_letter_retention = std::chrono::seconds(setting_int(name, value, source, 1, kMax));
    else if (name == "MAINTENANCE")
        c.maintenance = setting_bool(name, value, source);
    else if (name == "RETENTION_TRIM")
        c.retention_trim = setting_bool(name, value, source);
    else if (name == "WEBHOOK_ALLOWED_CIDRS")
        c.webhook_allowed_cidrs = parse_cidr_list(value, name + " (" + source + ")");
    else if (name == "MQ_ALLOW_OPERATOR_HANDLERS")
        c.allow_operator_handlers = setting_bool(name, value, source);
    else if (!apply_api_setting(c.api, name, value, source))
        throw ValidationError("unknown setting '" + name + "' (" + source + ")");
}

Config load_config(const std::string& yaml_file, const std::map<std::string, std::string>& env) {
    Config c;
    if (!yaml_file.empty()) {
        YAML::Node root = load_yaml_text(
            read_input_file(yaml_file, "config file", YamlLimits{}.max_bytes), yaml_file);
        if (root && !root.IsNull()) {
            if (!root.IsMap())
                throw ValidationError(yaml_file + ": expected a mapping of settings");
            for (const auto& kv : root) {
                if (!kv.first.IsScalar())
                    throw ValidationError(yaml_file + ":" +
                                          std::to_string(kv.first.Mark().line + 1) +
                                          ": setting names must be plain words");
                std::string key = kv.first.as<std::string>();
                std::string upper = key;
                std::transform(upper.begin(), upper.end(), upper.begin(),
                               [](unsigned char ch) { return std::toupper(ch); });
                std::string where = yaml_file + ":" + std::to_string(kv.first.Mark().line + 1);
                if (kv.second.IsNull()) {  // `max_queue_length:` means unset, as in the env
                    apply_setting(c, upper, "", where);
                    continue;
                }
                if (!kv.second.IsScalar())
                    throw ValidationError(where + ": '" + key + "' must be a scalar value");
                apply_setting(c, upper, kv.second.as<std::string>(), where);
            }
        }
    }
    for (const char* name : kNames)
        if (auto it = env.find(name); it != env.end())
            apply_setting(c, name, it->second, "environment");
    for (auto name : api_setting_names())
        if (auto it = env.find(std::string(name)); it != env.end())
            apply_setting(c, it->first, it->second, "environment");
    return c;
}

std::map<std::string, std::string> process_environment() {
    std::map<std::string, std::string> env;
    for (const char* name : kNames)
        if (const char* v = std::getenv(name)) env[name] = v;
    for (auto name : api_setting_names())
        if (const char* v = std::getenv(std::string(name).c_str())) env[std::string(name)] = v;
    if (const char* v = std::getenv("MQ_CONFIG")) env["MQ_CONFIG"] = v;
    // mq-worker's metrics listener (WorkerConfig::metrics_address), not a Config setting.
    if (const char* v = std::getenv("METRICS_ADDRESS")) env["METRICS_ADDRESS"] = v;
    return env;
}

}  // namespace mq
