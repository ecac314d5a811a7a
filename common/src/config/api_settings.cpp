#include "mq/config/api_settings.hpp"

#include <algorithm>
#include <cctype>

#include "mq/config/setting_values.hpp"
#include "mq/config/settings.hpp"
#include "mq/core/names.hpp"
#include "mq/error.hpp"

namespace mq {

namespace {

constexpr std::int64_t kDayMs = 24LL * 3600 * 1000;

// A timeout in milliseconds, 1 ms to one day.
SettingApply millis(const std::string& name, std::chrono::milliseconds ApiSettings::*member) {
    return integer_setting(name, 1, kDayMs, [member](Config& c, std::int64_t v) {
        c.api.*member = std::chrono::milliseconds(v);
    });
}

SettingSpec api(std::string name, std::string type, std::string default_value,
                std::string description, SettingApply apply) {
    SettingSpec s;
    s.name = std::move(name);
    s.type = std::move(type);
    s.default_value = std::move(default_value);
    s.description = std::move(description);
    s.binaries = kMqApi;
    s.apply = std::move(apply);
    return s;
}

}  // namespace

void append_api_setting_specs(std::vector<SettingSpec>& specs) {
    auto add = [&](SettingSpec s) -> SettingSpec& { return specs.emplace_back(std::move(s)); };
    add(api("PORT", "integer 0-65535", "3010", "Port mq-api listens on (0 picks a free one).",
            integer_setting("PORT", 0, 65535,
                            [](Config& c, std::int64_t v) { c.port = static_cast<int>(v); })))
        .flag = "-p,--port";
    add(api("LISTEN_ADDRESS", "IP address", "0.0.0.0",
            "Address mq-api listens on (`::` for every IPv6 and IPv4 address).",
            [](Config& c, const std::string& v, const std::string& src) {
                c.api.listen_address = setting_address("LISTEN_ADDRESS", v, src);
            }))
        .flag = "--address";
    add(api("API_THREADS", "integer 1-64", "2",
            "I/O threads, each with its own Redis connection for publishes.",
            integer_setting(
                "API_THREADS", 1, 64,
                [](Config& c, std::int64_t v) { c.api.threads = static_cast<int>(v); })))
        .flag = "--threads";
    add(api("API_BLOCKING_THREADS", "integer 1-256", "8", "Threads for PostgreSQL work.",
            integer_setting("API_BLOCKING_THREADS", 1, 256, [](Config& c, std::int64_t v) {
                c.api.blocking_threads = static_cast<int>(v);
            })));
    add(api("ACCESS_LOG", "on|off", "on", "One log line per request.",
            bool_setting("ACCESS_LOG", [](Config& c, bool v) { c.api.access_log = v; })))
        .is_bool = true;
    add(api("RECEIPT_SECRET", "text", "",
            "Key signing pull receipts; empty: a random one per start. Share it between "
            "instances behind one load balancer.",
            text_setting([](Config& c, const std::string& v) { c.api.receipt_secret = v; })))
        .secrecy = Secrecy::kSecret;
    add(api("TENANT_PUBLISH_RATE", "integer 0-100000000", "0",
            "Default per-tenant publish quota, messages per second per process (0: none).",
            integer_setting("TENANT_PUBLISH_RATE", 0, 100000000,
                            [](Config& c, std::int64_t v) { c.api.tenant_publish_rate = v; })));
    add(api("MAX_BATCH_BODY_SIZE", "bytes 1024-2147483648", "16777216",
            "Largest batch publish request body.",
            integer_setting("MAX_BATCH_BODY_SIZE", 1024, 1LL << 31,
                            [](Config& c, std::int64_t v) { c.api.max_batch_body_size = v; })));
    add(api("METRICS_TOKEN", "text", "",
            "Bearer token a scraper sends for GET /metrics; empty: only admin API tokens may "
            "scrape.",
            text_setting([](Config& c, const std::string& v) { c.api.metrics_token = v; })))
        .secrecy = Secrecy::kSecret;
    add(api("METRICS_REFRESH_S", "seconds 0-3600", "5",
            "Queue figures behind /metrics are measured at most this often (0: on every "
            "scrape, for tests).",
            integer_setting("METRICS_REFRESH_S", 0, 3600, [](Config& c, std::int64_t v) {
                c.api.metrics_refresh = std::chrono::seconds(v);
            })));
    for (const auto& [kind, queue] : ApiSettings{}.internal_queues) {
        std::string name = "INTERNAL_QUEUE_" + kind;
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) {
            return ch == '-' ? '_' : static_cast<char>(std::toupper(ch));
        });
        add(api(name, "queue name", queue,
                "Queue the internal-service route for `" + kind + "` publishes to.",
                [kind = kind, name](Config& c, const std::string& v, const std::string& src) {
                    try {
                        validate_name("queue", v);
                    } catch (const ValidationError& e) {
                        throw ValidationError(
                            name + "=" + printable(v) + " (" + src + "): " + e.what(),
                            {{"field", name}});
                    }
                    c.api.internal_queues[kind] = v;
                }));
    }
    add(api("MAX_CONNECTIONS", "integer 0-10000000", "0",
            "Open client connections at most; beyond it a connection is answered 503 and "
            "closed. 0: min(10000, open-file limit - 128).",
            integer_setting("MAX_CONNECTIONS", 0, 10000000,
                            [](Config& c, std::int64_t v) { c.api.max_connections = v; })));
    add(api("BLOCKING_QUEUE_LIMIT", "integer 1-10000000", "512",
            "Requests that may wait for the PostgreSQL pool; beyond it 503 with Retry-After.",
            integer_setting("BLOCKING_QUEUE_LIMIT", 1, 10000000,
                            [](Config& c, std::int64_t v) { c.api.blocking_queue_limit = v; })));
    add(api("HEADER_TIMEOUT_MS", "ms 1-86400000", "10000",
            "The whole request header must arrive within this (slowloris).",
            millis("HEADER_TIMEOUT_MS", &ApiSettings::header_timeout)));
    add(api("BODY_TIMEOUT_MS", "ms 1-86400000", "30000",
            "The whole body must arrive within this once the header is read.",
            millis("BODY_TIMEOUT_MS", &ApiSettings::body_timeout)));
    add(api("IDLE_TIMEOUT_MS", "ms 1-86400000", "75000",
            "A keep-alive connection without a new request is closed after this.",
            millis("IDLE_TIMEOUT_MS", &ApiSettings::idle_timeout)));
    add(api("AUTH_FAILURE_LIMIT", "integer 0-1000000", "20",
            "Failed authentications a client address may make in a burst before 429 (0: no "
            "limit).",
            integer_setting("AUTH_FAILURE_LIMIT", 0, 1000000,
                            [](Config& c, std::int64_t v) { c.api.auth_failure_limit = v; })));
    add(api("AUTH_FAILURE_WINDOW_MS", "ms 1-86400000", "60000",
            "The time in which that many failures are forgiven again.",
            millis("AUTH_FAILURE_WINDOW_MS", &ApiSettings::auth_failure_window)));
    add(api("AUTH_FAILURE_DELAY_MS", "ms 0-60000", "1000",
            "How late a client over the limit gets its 429 (a tarpit; 0: at once).",
            integer_setting("AUTH_FAILURE_DELAY_MS", 0, 60000, [](Config& c, std::int64_t v) {
                c.api.auth_failure_delay = std::chrono::milliseconds(v);
            })));
    add(api("TLS_CERT_FILE", "path", "",
            "PEM certificate chain; with TLS_KEY_FILE, mq-api serves HTTPS only.",
            text_setting([](Config& c, const std::string& v) { c.api.tls_cert_file = v; })));
    add(api("TLS_KEY_FILE", "path", "", "PEM private key of TLS_CERT_FILE.",
            text_setting([](Config& c, const std::string& v) { c.api.tls_key_file = v; })));
    add(api("TLS_CA_FILE", "path", "",
            "CAs whose client certificates are verified when a client presents one.",
            text_setting([](Config& c, const std::string& v) { c.api.tls_ca_file = v; })));
    add(api("TLS_MIN_VERSION", "1.2|1.3", "1.2", "Oldest TLS version accepted.",
            [](Config& c, const std::string& v, const std::string& src) {
                c.api.tls_min_version = setting_choice("TLS_MIN_VERSION", v, src, {"1.2", "1.3"});
            }));
    add(api("TLS_HANDSHAKE_TIMEOUT_MS", "ms 1-86400000", "10000",
            "A client that does not finish the TLS handshake within this is closed.",
            millis("TLS_HANDSHAKE_TIMEOUT_MS", &ApiSettings::tls_handshake_timeout)));
}

}  // namespace mq
