#include "mq/config/settings.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <regex>
#include <sstream>

#include "mq/config/setting_values.hpp"
#include "mq/config/yaml_loader.hpp"
#include "mq/core/input_file.hpp"
#include "mq/core/json.hpp"
#include "mq/core/names.hpp"
#include "mq/core/suggest.hpp"
#include "mq/core/time.hpp"
#include "mq/error.hpp"

namespace mq {

namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max() / 1000;
// Ages in seconds that PostgreSQL subtracts from now(): 100 years at most (a larger one
// would overflow its timestamp arithmetic on every purge).
constexpr std::int64_t kMaxAgeSeconds = 100LL * 366 * 24 * 3600;

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

SettingSpec setting(std::string name, std::string type, std::string default_value,
                    unsigned binaries, std::string description, SettingApply apply) {
    SettingSpec s;
    s.name = std::move(name);
    s.type = std::move(type);
    s.default_value = std::move(default_value);
    s.binaries = binaries;
    s.description = std::move(description);
    s.apply = std::move(apply);
    return s;
}

// "tenant=URL" entries separated by commas or white space (a YAML list arrives joined by
// commas). The URL keeps everything after the first '='.
std::vector<OutboxSource> parse_outbox_sources(const std::string& text, const std::string& field) {
    std::vector<OutboxSource> out;
    std::string item;
    std::istringstream in(text);
    auto take = [&](std::string entry) {
        if (entry.empty()) return;
        auto eq = entry.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size())
            // Not the entry itself: it may hold a password.
            throw ValidationError(field + ": entry " + std::to_string(out.size() + 1) +
                                      " must look like tenant=postgresql://user@host/db",
                                  {{"field", "OUTBOX_SOURCES"}});
        OutboxSource src{entry.substr(0, eq), entry.substr(eq + 1)};
        if (!is_valid_name(src.tenant))
            // Not the text either: without "tenant=" the first '=' is inside the URL's query.
            throw ValidationError(field + ": entry " + std::to_string(out.size() + 1) +
                                      " must start with a tenant name (1-64 of [A-Za-z0-9._-]) "
                                      "and '=': tenant=postgresql://user@host/db",
                                  {{"field", "OUTBOX_SOURCES"}});
        if (src.database_url.rfind("postgresql://", 0) != 0 &&
            src.database_url.rfind("postgres://", 0) != 0)
            throw ValidationError(
                field + ": the database of tenant '" + src.tenant + "' must be a postgresql:// URL",
                {{"field", "OUTBOX_SOURCES"}});
        // One database, one tenant: two relays on one outbox would publish its rows under
        // whichever tenant claimed them first (docs/outbox.md).
        for (const auto& o : out)
            if (o.database_url == src.database_url)
                throw ValidationError(field + ": entry " + std::to_string(out.size() + 1) +
                                          " (tenant '" + src.tenant +
                                          "') names the same database as tenant '" + o.tenant +
                                          "'; an outbox belongs to one tenant",
                                      {{"field", "OUTBOX_SOURCES"}});
        if (out.size() >= 64)
            throw ValidationError(field + ": at most 64 outbox sources",
                                  {{"field", "OUTBOX_SOURCES"}});
        out.push_back(std::move(src));
    };
    for (char ch : text) {
        if (ch == ',' || std::isspace(static_cast<unsigned char>(ch))) {
            take(std::move(item));
            item.clear();
        } else {
            item += ch;
        }
    }
    take(std::move(item));
    return out;
}

// Settings every program or several share: backends, retention, logging, maintenance.
void append_shared_specs(std::vector<SettingSpec>& specs) {
    auto add = [&](SettingSpec s) -> SettingSpec& { return specs.emplace_back(std::move(s)); };
    const unsigned all = kEveryBinary;
    auto& redis =
        add(setting("REDIS_URL", "URL", "redis://127.0.0.1:6379/0", all,
                    "`redis://[[user]:password@]host[:port][/db]`; `rediss://` for TLS; "
                    "`redis+cluster://host:port,...` for a Redis Cluster.",
                    text_setting([](Config& c, const std::string& v) { c.redis_url = v; })));
    redis.flag = "--redis-url";
    redis.flag_binaries = kMqctl;
    redis.secrecy = Secrecy::kUrlPassword;
    add(setting("REDIS_CLUSTER_NODES", "host:port,...", "", all,
                "Seed nodes of a Redis Cluster (docs/cluster.md); credentials and TLS come from "
                "REDIS_URL. Empty: REDIS_URL names one server or a `redis+cluster://` URL.",
                text_setting([](Config& c, const std::string& v) { c.redis_cluster_nodes = v; })));
    add(setting("REDIS_TLS_CA_FILE", "path", "", all,
                "CA file for a rediss:// URL (none set: the system's CAs).",
                text_setting([](Config& c, const std::string& v) { c.redis_tls_ca_file = v; })));
    add(setting("REDIS_TLS_CA_DIR", "path", "", all, "CA directory for a rediss:// URL.",
                text_setting([](Config& c, const std::string& v) { c.redis_tls_ca_dir = v; })));
    add(setting("REDIS_TLS_CERT_FILE", "path", "", all,
                "Client certificate for a Redis server that asks for one.",
                text_setting([](Config& c, const std::string& v) { c.redis_tls_cert_file = v; })));
    add(setting("REDIS_TLS_KEY_FILE", "path", "", all, "Key of REDIS_TLS_CERT_FILE.",
                text_setting([](Config& c, const std::string& v) { c.redis_tls_key_file = v; })));
    add(setting(
        "REDIS_TLS_SERVER_NAME", "host name", "", all,
        "Name the Redis server's certificate must carry (empty: the URL's host).",
        text_setting([](Config& c, const std::string& v) { c.redis_tls_server_name = v; })));
    auto& db =
        add(setting("DATABASE_URL", "URL", "postgresql://postgres@127.0.0.1:5432/mq", all,
                    "libpq URL; TLS with `?sslmode=verify-full&sslrootcert=...`.",
                    text_setting([](Config& c, const std::string& v) { c.database_url = v; })));
    db.flag = "--database-url";
    db.flag_binaries = kMqctl;
    db.secrecy = Secrecy::kUrlPassword;
    auto& prefix = add(
        setting("REDIS_KEY_PREFIX", "text without { }", "mq:", all, "Prefix of every Redis key.",
                [](Config& c, const std::string& v, const std::string& src) {
                    if (v.find_first_of("{}") != std::string::npos)
                        throw ValidationError("REDIS_KEY_PREFIX (" + src +
                                                  ") must not contain '{' or '}': they would break "
                                                  "hash tags",
                                              {{"field", "REDIS_KEY_PREFIX"}});
                    c.key_prefix = v;
                }));
    prefix.flag = "--key-prefix";
    prefix.flag_binaries = kMqctl;
    auto& tenant = add(setting(
        "MQ_TENANT", "tenant name", "default", kMqctl | kMqWorker,
        "Tenant mqctl acts for, and the tenant of a worker file's subscriptions.",
        [](Config& c, const std::string& v, const std::string& src) {
            try {
                validate_name("tenant", v);
            } catch (const ValidationError& e) {
                throw ValidationError("MQ_TENANT=" + printable(v) + " (" + src + "): " + e.what(),
                                      {{"field", "MQ_TENANT"}});
            }
            c.tenant = v;
        }));
    tenant.flag = "-t,--tenant";
    tenant.flag_binaries = kMqctl;
    tenant.yaml_aliases = {"tenant"};
    add(setting("MAX_MESSAGE_SIZE", "bytes 1-536870912", "1048576", all,
                "Largest payload; bigger bodies are refused before parsing.",
                integer_setting("MAX_MESSAGE_SIZE", 1, 512LL * 1024 * 1024,
                                [](Config& c, std::int64_t v) { c.max_message_size = v; })));
    add(setting("DEFAULT_TTL", "seconds", "604800", kMqApi | kMqctl,
                "Retention of a queue created without one.",
                integer_setting("DEFAULT_TTL", 1, kMax, [](Config& c, std::int64_t v) {
                    c.default_ttl = std::chrono::seconds(v);
                })));
    add(setting("MAX_QUEUE_LENGTH", "integer", "", kMqApi | kMqctl,
                "Max length of a queue created without one (empty or 0: none).",
                [](Config& c, const std::string& v, const std::string& src) {
                    if (v.empty() || v == "0")
                        c.max_queue_length.reset();
                    else
                        c.max_queue_length = setting_int("MAX_QUEUE_LENGTH", v, src, 1, kMax);
                }));
    add(setting("CONSUMER_TIMEOUT", "ms", "30000", kMqApi | kMqctl,
                "Visibility timeout of a subscription created without one.",
                integer_setting("CONSUMER_TIMEOUT", 1, kMax, [](Config& c, std::int64_t v) {
                    c.consumer_timeout = std::chrono::milliseconds(v);
                })));
    add(setting("METRICS_ENABLED", "on|off", "on", kMqApi, "mq-api serves /metrics.",
                bool_setting("METRICS_ENABLED", [](Config& c, bool v) { c.metrics_enabled = v; })))
        .is_bool = true;
    add(setting(
            "INTERNAL_SERVICE_TOKEN", "text", "", kMqApi,
            "`X-Service-Token` of the internal-service routes; empty: those routes are off.",
            text_setting([](Config& c, const std::string& v) { c.internal_service_token = v; })))
        .secrecy = Secrecy::kSecret;
    add(setting("LOG_FORMAT", "text|json", "text", kMqApi | kMqWorker,
                "Log lines for terminals (text) or collectors (json).",
                [](Config& c, const std::string& v, const std::string& src) {
                    c.log_format = setting_choice("LOG_FORMAT", v, src, {"text", "json"});
                }));
    add(setting("LOG_LEVEL", "level", "info", kMqApi | kMqWorker,
                "trace, debug, info, warn, error, critical or off.",
                [](Config& c, const std::string& v, const std::string& src) {
                    c.log_level = setting_choice(
                        "LOG_LEVEL", v, src,
                        {"trace", "debug", "info", "warn", "error", "critical", "off"});
                }));
    add(setting("MQ_KEYRING_FILE", "path", "", all,
                "Keyring for queues with encryption aes-256-gcm (docs/encryption.md); empty: "
                "such queues are refused.",
                text_setting([](Config& c, const std::string& v) { c.keyring_file = v; })));
    add(setting("DEAD_LETTER_MAX_LENGTH", "integer", "10000", all,
                "Archived dead letters kept in Redis per partition (0: no cap).",
                integer_setting("DEAD_LETTER_MAX_LENGTH", 0, kMax,
                                [](Config& c, std::int64_t v) { c.dead_letter_max_length = v; })));
    add(setting("DEAD_LETTER_MAX_AGE", "seconds", "604800", all,
                "Archived dead letters older than this leave Redis (0: no age limit).",
                integer_setting("DEAD_LETTER_MAX_AGE", 0, kMax, [](Config& c, std::int64_t v) {
                    c.dead_letter_max_age = std::chrono::seconds(v);
                })));
    add(setting(
        "DEAD_LETTER_RETENTION", "seconds, at most 100 years", "2592000", all,
        "How long the PostgreSQL archive keeps dead letters.",
        integer_setting("DEAD_LETTER_RETENTION", 1, kMaxAgeSeconds, [](Config& c, std::int64_t v) {
            c.dead_letter_retention = std::chrono::seconds(v);
        })));
    add(setting(
        "HISTORY_RETENTION", "seconds, at most 100 years", "604800", all,
        "How long the message history (queues with record_messages) keeps events in "
        "PostgreSQL (docs/history.md).",
        integer_setting("HISTORY_RETENTION", 1, kMaxAgeSeconds, [](Config& c, std::int64_t v) {
            c.history_retention = std::chrono::seconds(v);
        })));
    add(setting("HISTORY_BATCH", "integer 1-100000", "1000", all,
                "History events the writer moves from a partition's Redis buffer to PostgreSQL "
                "per transaction.",
                integer_setting("HISTORY_BATCH", 1, 100000,
                                [](Config& c, std::int64_t v) { c.history_batch = v; })));
    add(setting("MAINTENANCE", "on|off", "on", kMqApi | kMqWorker,
                "Run the maintenance service (delayed mover, trimmer, archiver, schedules; "
                "docs/maintenance.md).",
                bool_setting("MAINTENANCE", [](Config& c, bool v) { c.maintenance = v; })))
        .is_bool = true;
    add(setting("RETENTION_TRIM", "on|off", "on", all,
                "Maintenance trims streams; off only to measure or debug (memory grows).",
                bool_setting("RETENTION_TRIM", [](Config& c, bool v) { c.retention_trim = v; })))
        .is_bool = true;
    add(setting("WEBHOOK_ALLOWED_CIDRS", "CIDR list", "", kMqApi | kMqWorker,
                "Ranges a webhook set through the API may reach although not public, e.g. "
                "`10.1.0.0/16,fd00::/8` (a list in YAML).",
                [](Config& c, const std::string& v, const std::string& src) {
                    c.webhook_allowed_cidrs =
                        parse_cidr_list(v, "WEBHOOK_ALLOWED_CIDRS (" + src + ")");
                }));
    auto& operator_handlers = add(
        setting("MQ_ALLOW_OPERATOR_HANDLERS", "on|off", "off", kMqWorker,
                "With --from-db, also run exec and log-to-file subscriptions an operator created "
                "(never those set through the API; docs/security.md).",
                bool_setting("MQ_ALLOW_OPERATOR_HANDLERS",
                             [](Config& c, bool v) { c.allow_operator_handlers = v; })));
    operator_handlers.flag = "--allow-operator-handlers";
    operator_handlers.is_bool = true;
    operator_handlers.yaml_aliases = {"allow_operator_handlers"};
}

// mq-worker's own settings.
void append_worker_specs(std::vector<SettingSpec>& specs) {
    auto add = [&](SettingSpec s) -> SettingSpec& { return specs.emplace_back(std::move(s)); };
    add(setting("CONSUMER_NAME", "name", "", kMqWorker,
                "Consumer name in the groups (empty: the host name and process id).",
                [](Config& c, const std::string& v, const std::string& src) {
                    static const std::regex kName("[A-Za-z0-9][A-Za-z0-9._:-]{0,127}");
                    if (!v.empty() && !std::regex_match(v, kName))
                        throw ValidationError(
                            "CONSUMER_NAME=" + printable(v) + " (" + src +
                                ") must be 1-128 letters, digits, '.', '_', ':' or '-'",
                            {{"field", "CONSUMER_NAME"}});
                    c.worker.consumer_name = v;
                }))
        .flag = "--consumer-name";
    add(setting("METRICS_PORT", "integer 0-65535", "9464", kMqWorker,
                "Port of /metrics and /healthz (0: off).",
                integer_setting("METRICS_PORT", 0, 65535,
                                [](Config& c, std::int64_t v) {
                                    c.worker.metrics_port = static_cast<int>(v);
                                })))
        .flag = "--metrics-port";
    add(setting("METRICS_ADDRESS", "IP address", "127.0.0.1", kMqWorker,
                "Address of /metrics and /healthz. Loopback by default: they carry every "
                "subscription's names and figures without a token; `0.0.0.0` lets Prometheus "
                "in another container scrape (docs/security.md).",
                [](Config& c, const std::string& v, const std::string& src) {
                    c.worker.metrics_address = setting_address("METRICS_ADDRESS", v, src);
                }))
        .flag = "--metrics-address";
    add(setting("SHUTDOWN_TIMEOUT", "duration", "30s", kMqWorker,
                "On SIGTERM, running deliveries get this long (`500ms`, `30s`, `1m`; a bare "
                "number is milliseconds).",
                [](Config& c, const std::string& v, const std::string& src) {
                    try {
                        c.worker.shutdown_timeout = parse_duration(v, "SHUTDOWN_TIMEOUT");
                    } catch (const ValidationError& e) {
                        throw ValidationError(e.what() + std::string(" (") + src + ")",
                                              {{"field", "SHUTDOWN_TIMEOUT"}});
                    }
                }));
    add(setting("RECONCILE_INTERVAL_MS", "ms 100-3600000", "15000", kMqWorker,
                "With --from-db, a full reconcile from PostgreSQL this often (events apply at "
                "once).",
                integer_setting("RECONCILE_INTERVAL_MS", 100, 3600000,
                                [](Config& c, std::int64_t v) {
                                    c.worker.reconcile_interval = std::chrono::milliseconds(v);
                                })))
        .flag = "--reconcile-interval-ms";
    add(setting("OUTBOX_SOURCES", "list of tenant=URL", "", kMqWorker,
                "Transactional outbox relay (docs/outbox.md): databases whose `mq.outbox` this "
                "worker drains, each with the tenant its rows publish as, e.g. "
                "`acme=postgresql://relay@db/orders` (a list in YAML). Empty: no relay.",
                [](Config& c, const std::string& v, const std::string& src) {
                    c.outbox.sources = parse_outbox_sources(v, "OUTBOX_SOURCES (" + src + ")");
                }))
        .secrecy = Secrecy::kSecret;
    add(setting("OUTBOX_POLL_INTERVAL", "duration 10ms-1h", "1s", kMqWorker | kMqctl,
                "The outbox relay looks for rows this often even without a notification "
                "(LISTEN mq_outbox wakes it at once); `200ms`, `5s`.",
                [](Config& c, const std::string& v, const std::string& src) {
                    std::chrono::milliseconds d{0};
                    try {
                        d = parse_duration(v, "OUTBOX_POLL_INTERVAL");
                    } catch (const ValidationError& e) {
                        throw ValidationError(e.what() + std::string(" (") + src + ")",
                                              {{"field", "OUTBOX_POLL_INTERVAL"}});
                    }
                    if (d < std::chrono::milliseconds(10) || d > std::chrono::hours(1))
                        throw ValidationError(
                            "OUTBOX_POLL_INTERVAL (" + src + ") must be between 10ms and 1h",
                            {{"field", "OUTBOX_POLL_INTERVAL"}});
                    c.outbox.poll_interval = d;
                }));
    add(setting("OUTBOX_BATCH_SIZE", "integer 1-10000", "100", kMqWorker | kMqctl,
                "Outbox rows the relay claims and publishes per transaction.",
                integer_setting("OUTBOX_BATCH_SIZE", 1, 10000, [](Config& c, std::int64_t v) {
                    c.outbox.batch_size = static_cast<int>(v);
                })));
}

std::string source_text(const SettingOrigin& o) {
    std::string s(to_string(o.source));
    if (o.where.empty() || o.source == SettingSource::kEnvironment) return s;
    if (o.where.rfind(s + " ", 0) == 0) return o.where;  // "flag --port"
    return s + " (" + o.where + ")";
}

}  // namespace

std::string binary_name(Binary binary) {
    switch (binary) {
        case kMqApi:
            return "mq-api";
        case kMqWorker:
            return "mq-worker";
        case kMqctl:
            return "mqctl";
        default:
            return "mq";
    }
}

std::string SettingSpec::yaml_key() const { return lower(name); }

std::string SettingSpec::long_flag() const {
    auto pos = flag.find("--");
    return pos == std::string::npos ? "" : flag.substr(pos);
}

const std::vector<SettingSpec>& setting_specs() {
    static const std::vector<SettingSpec> specs = [] {
        std::vector<SettingSpec> v;
        append_shared_specs(v);
        append_api_setting_specs(v);
        append_worker_specs(v);
        return v;
    }();
    return specs;
}

const SettingSpec* find_setting(std::string_view name) {
    for (const auto& s : setting_specs())
        if (s.name == name) return &s;
    return nullptr;
}

const SettingSpec* find_setting_by_key(std::string_view key) {
    for (const auto& s : setting_specs()) {
        if (s.yaml_key() == key) return &s;
        for (const auto& alias : s.yaml_aliases)
            if (alias == key) return &s;
    }
    return nullptr;
}

void throw_unknown_setting(const std::string& key, const std::string& where) {
    // A lower-case key is a YAML key: suggest YAML keys; otherwise environment names.
    const bool yaml =
        std::none_of(key.begin(), key.end(), [](unsigned char c) { return std::isupper(c) != 0; });
    std::vector<std::string> candidates;
    for (const auto& s : setting_specs()) {
        candidates.push_back(yaml ? s.yaml_key() : s.name);
        if (yaml)
            for (const auto& a : s.yaml_aliases) candidates.push_back(a);
    }
    std::string message = where + ": unknown setting '" + printable(key) + "'";
    if (auto best = closest_match(key, candidates))
        message += " (did you mean '" + *best + "'?)";
    else
        message += " (docs/config.md lists every setting)";
    throw ValidationError(message, {{"field", printable(key)}});
}

std::string_view to_string(SettingSource source) {
    switch (source) {
        case SettingSource::kDefault:
            return "default";
        case SettingSource::kFile:
            return "file";
        case SettingSource::kContext:
            return "context";
        case SettingSource::kEnvironment:
            return "env";
        case SettingSource::kFlag:
            return "flag";
    }
    return "?";
}

SettingLayer yaml_settings_layer(const YAML::Node& root, const std::string& name,
                                 SettingSource source) {
    SettingLayer layer;
    layer.source = source;
    if (!root || root.IsNull()) return layer;
    if (!root.IsMap()) throw ValidationError(name + ": expected a mapping of settings");
    for (const auto& kv : root) {
        const std::string where = name + ":" + std::to_string(kv.first.Mark().line + 1);
        if (!kv.first.IsScalar())
            throw ValidationError(where + ": setting names must be plain words");
        const std::string key = kv.first.as<std::string>();
        const SettingSpec* spec = find_setting_by_key(key);
        if (!spec) throw_unknown_setting(key, where);
        std::string value;
        if (kv.second.IsNull()) {
            value = "";  // `max_queue_length:` means unset, as an empty variable does
        } else if (kv.second.IsScalar()) {
            value = kv.second.as<std::string>();
        } else if (kv.second.IsSequence()) {  // webhook_allowed_cidrs: [a, b]
            for (const auto& item : kv.second) {
                if (!item.IsScalar())
                    throw ValidationError(where + ": '" + key + "' must be a list of words");
                value += (value.empty() ? "" : ",") + item.as<std::string>();
            }
        } else {
            throw ValidationError(where + ": '" + key + "' must be a scalar value",
                                  {{"field", key}});
        }
        layer.entries.push_back({spec->name, value, where});
    }
    return layer;
}

SettingLayer settings_file_layer(const std::string& path) {
    YAML::Node root =
        load_yaml_text(read_input_file(path, "config file", YamlLimits{}.max_bytes), path);
    return yaml_settings_layer(root, path, SettingSource::kFile);
}

SettingLayer environment_layer(const std::map<std::string, std::string>& env, Binary binary) {
    SettingLayer layer;
    layer.source = SettingSource::kEnvironment;
    for (const auto& spec : setting_specs())
        if (spec.used_by(binary))
            if (auto it = env.find(spec.name); it != env.end())
                layer.entries.push_back({spec.name, it->second, "environment"});
    return layer;
}

ConfigLoader& ConfigLoader::add(SettingLayer layer) {
    layers_.push_back(std::move(layer));
    return *this;
}

LoadedConfig ConfigLoader::load() const {
    LoadedConfig out;
    for (const auto& spec : setting_specs()) {
        spec.apply(out.config, spec.default_value, "default");
        if (spec.used_by(binary_))
            out.origins[spec.name] = {spec.default_value, SettingSource::kDefault, ""};
    }
    std::vector<const SettingLayer*> ordered;
    for (const auto& l : layers_) ordered.push_back(&l);
    std::stable_sort(ordered.begin(), ordered.end(), [](const auto* a, const auto* b) {
        return static_cast<int>(a->source) < static_cast<int>(b->source);
    });
    for (const SettingLayer* layer : ordered)
        for (const auto& e : layer->entries) {
            const SettingSpec* spec = find_setting(e.name);
            if (!spec) throw_unknown_setting(e.name, e.where);
            if (!spec->used_by(binary_)) continue;  // another program's, in a shared file
            spec->apply(out.config, e.value, e.where);
            out.origins[spec->name] = {e.value, layer->source, e.where};
        }
    return out;
}

std::string mask_setting(const std::string& value, Secrecy secrecy) {
    if (value.empty() || secrecy == Secrecy::kPlain) return value;
    if (secrecy == Secrecy::kSecret) return "****";
    std::string out = value;
    // scheme://user:password@host -> scheme://user:****@host
    if (auto scheme = out.find("://"); scheme != std::string::npos) {
        auto start = scheme + 3;
        auto at = out.find('@', start);
        auto slash = out.find('/', start);
        if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
            auto colon = out.find(':', start);
            if (colon != std::string::npos && colon < at)
                out.replace(colon + 1, at - colon - 1, "****");
        }
    }
    // libpq keywords in the query string or a keyword=value string: password=...
    static const std::regex kPassword("(^|[?&\\s])(password|sslpassword)=[^&\\s]*",
                                      std::regex::icase);
    return std::regex_replace(out, kPassword, "$1$2=****");
}

std::string render_effective_config(const LoadedConfig& loaded, Binary binary, bool json) {
    if (json) {
        nlohmann::json settings = nlohmann::json::array();
        for (const auto& spec : setting_specs()) {
            auto it = loaded.origins.find(spec.name);
            if (!spec.used_by(binary) || it == loaded.origins.end()) continue;
            settings.push_back({{"name", spec.name},
                                {"key", spec.yaml_key()},
                                {"value", mask_setting(it->second.value, spec.secrecy)},
                                {"source", std::string(to_string(it->second.source))},
                                {"where", it->second.where}});
        }
        nlohmann::json doc = {{"binary", binary_name(binary)}, {"settings", settings}};
        return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    std::size_t name_width = 7, value_width = 5;
    std::vector<std::array<std::string, 3>> rows;
    for (const auto& spec : setting_specs()) {
        auto it = loaded.origins.find(spec.name);
        if (!spec.used_by(binary) || it == loaded.origins.end()) continue;
        std::string value = printable(mask_setting(it->second.value, spec.secrecy));
        if (value.empty()) value = "-";
        rows.push_back({spec.name, value, source_text(it->second)});
        name_width = std::max(name_width, spec.name.size());
        value_width = std::max(value_width, std::min<std::size_t>(value.size(), 48));
    }
    std::ostringstream out;
    auto line = [&](const std::string& a, const std::string& b, const std::string& c) {
        out << a << std::string(name_width + 2 - a.size(), ' ') << b
            << std::string(b.size() < value_width + 2 ? value_width + 2 - b.size() : 2, ' ') << c
            << '\n';
    };
    line("SETTING", "VALUE", "SOURCE");
    for (const auto& r : rows) line(r[0], r[1], r[2]);
    return out.str();
}

std::string settings_reference_markdown() {
    std::ostringstream out;
    out << "# Configuration\n\n"
           "<!-- Generated from common/src/config (the settings registry) by\n"
           "     `mq-api --print-config-doc > docs/config.md` (`make config-doc`).\n"
           "     A test fails when this file and the code disagree: do not edit by hand. -->\n\n"
           "mq-api, mq-worker and mqctl read their settings one way. Each setting has an\n"
           "environment name (below), a YAML key (the name in lower case) and, for some, a\n"
           "command-line flag. Where one is given more than once, the later layer wins:\n\n"
           "    default < YAML file < context < environment < flag\n\n"
           "- **YAML file**: `-c/--config FILE` or `MQ_CONFIG` (mq-api, mqctl: `--config`);\n"
           "  mq-worker's file is its worker file, whose settings keys are these same keys\n"
           "  beside `subscriptions:`. One file may serve all three programs: a key of a\n"
           "  setting another program reads is accepted and ignored.\n"
           "- **context**: mqctl's selected context (`--context`), when there is one.\n"
           "- **environment**: the names below; other variables are ignored.\n"
           "- An unknown YAML key or flag is an error (exit 2) that names the closest known\n"
           "  one: `unknown setting 'api_thread' (did you mean 'api_threads'?)`. A bad value\n"
           "  exits 2 naming the setting and where it was set.\n"
           "- `--print-config` (all three programs; `-o json` for JSON) prints every effective\n"
           "  value with its source (default, file, context, env, flag) and exits 0. Secrets\n"
           "  are shown as `****`, and URLs without their password.\n"
           "- On/off settings take `on|off`, `true|false`, `yes|no` or `1|0`; a flag of one\n"
           "  takes no value.\n\n"
           "| variable | YAML key | flag | default | type | read by | meaning |\n"
           "|---|---|---|---|---|---|---|\n";
    auto cell = [](const std::string& text) {
        std::string escaped;
        for (char c : text) escaped += c == '|' ? std::string("\\|") : std::string(1, c);
        return escaped;
    };
    for (const auto& s : setting_specs()) {
        std::string key = "`" + s.yaml_key() + "`";
        for (const auto& a : s.yaml_aliases) key += ", `" + a + "`";
        std::string flag;
        if (!s.flag.empty()) {
            std::string names = s.flag;
            std::replace(names.begin(), names.end(), ',', ' ');
            flag = "`" + names + "`";
            unsigned who = s.flag_binaries ? s.flag_binaries : s.binaries;
            if (who != s.binaries) {
                std::string progs;
                for (Binary b : {kMqApi, kMqWorker, kMqctl})
                    if (who & b) progs += (progs.empty() ? "" : ", ") + binary_name(b);
                flag += " (" + progs + ")";
            }
        }
        std::string readers;
        for (Binary b : {kMqApi, kMqWorker, kMqctl})
            if (s.used_by(b)) readers += (readers.empty() ? "" : ", ") + binary_name(b);
        std::string def = s.default_value.empty() ? "unset" : "`" + s.default_value + "`";
        std::string meaning = s.description;
        if (s.secrecy != Secrecy::kPlain) meaning += " Masked by --print-config.";
        out << "| `" << s.name << "` | " << key << " | " << flag << " | " << cell(def) << " | "
            << cell(s.type) << " | " << readers << " | " << cell(meaning) << " |\n";
    }
    out << "\nmq-worker's file also holds `subscriptions:` (schemas/worker.schema.json). "
           "Command-line options that are not settings (actions such as `--check`, and "
           "mq-worker's `--from-db`, `--tenant`, `--adopt`) are in each program's `--help`.\n";
    return out.str();
}

}  // namespace mq
