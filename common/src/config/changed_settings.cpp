#include "mq/config/changed_settings.hpp"

#include <algorithm>
#include <cctype>

namespace mq {

namespace {

std::string cidrs(const std::vector<Cidr>& list) {
    std::string out;
    for (const auto& c : list) out += c.to_string() + ",";
    return out;
}

}  // namespace

std::vector<std::string> changed_settings(const Config& a, const Config& b) {
    std::vector<std::string> out;
    auto check = [&](const char* name, bool differs) {
        if (differs) out.emplace_back(name);
    };
    check("PORT", a.port != b.port);
    check("DATABASE_URL", a.database_url != b.database_url);
    check("REDIS_URL", a.redis_url != b.redis_url);
    check("REDIS_CLUSTER_NODES", a.redis_cluster_nodes != b.redis_cluster_nodes);
    check("REDIS_TLS_CA_FILE", a.redis_tls_ca_file != b.redis_tls_ca_file);
    check("REDIS_TLS_CA_DIR", a.redis_tls_ca_dir != b.redis_tls_ca_dir);
    check("REDIS_TLS_CERT_FILE", a.redis_tls_cert_file != b.redis_tls_cert_file);
    check("REDIS_TLS_KEY_FILE", a.redis_tls_key_file != b.redis_tls_key_file);
    check("REDIS_TLS_SERVER_NAME", a.redis_tls_server_name != b.redis_tls_server_name);
    check("REDIS_KEY_PREFIX", a.key_prefix != b.key_prefix);
    check("MAX_MESSAGE_SIZE", a.max_message_size != b.max_message_size);
    check("DEFAULT_TTL", a.default_ttl != b.default_ttl);
    check("MAX_QUEUE_LENGTH", a.max_queue_length != b.max_queue_length);
    check("CONSUMER_TIMEOUT", a.consumer_timeout != b.consumer_timeout);
    check("METRICS_ENABLED", a.metrics_enabled != b.metrics_enabled);
    check("INTERNAL_SERVICE_TOKEN", a.internal_service_token != b.internal_service_token);
    check("LOG_FORMAT", a.log_format != b.log_format);
    check("LOG_LEVEL", a.log_level != b.log_level);
    check("MQ_TENANT", a.tenant != b.tenant);
    check("MQ_KEYRING_FILE", a.keyring_file != b.keyring_file);
    check("DEAD_LETTER_MAX_LENGTH", a.dead_letter_max_length != b.dead_letter_max_length);
    check("DEAD_LETTER_MAX_AGE", a.dead_letter_max_age != b.dead_letter_max_age);
    check("DEAD_LETTER_RETENTION", a.dead_letter_retention != b.dead_letter_retention);
    check("HISTORY_RETENTION", a.history_retention != b.history_retention);
    check("HISTORY_BATCH", a.history_batch != b.history_batch);
    check("MAINTENANCE", a.maintenance != b.maintenance);
    check("RETENTION_TRIM", a.retention_trim != b.retention_trim);
    const ApiSettings& x = a.api;
    const ApiSettings& y = b.api;
    check("MAX_CONNECTIONS", x.max_connections != y.max_connections);
    check("BLOCKING_QUEUE_LIMIT", x.blocking_queue_limit != y.blocking_queue_limit);
    check("HEADER_TIMEOUT_MS", x.header_timeout != y.header_timeout);
    check("BODY_TIMEOUT_MS", x.body_timeout != y.body_timeout);
    check("IDLE_TIMEOUT_MS", x.idle_timeout != y.idle_timeout);
    check("AUTH_FAILURE_LIMIT", x.auth_failure_limit != y.auth_failure_limit);
    check("AUTH_FAILURE_WINDOW_MS", x.auth_failure_window != y.auth_failure_window);
    check("AUTH_FAILURE_DELAY_MS", x.auth_failure_delay != y.auth_failure_delay);
    check("TLS_CERT_FILE", x.tls_cert_file != y.tls_cert_file);
    check("TLS_KEY_FILE", x.tls_key_file != y.tls_key_file);
    check("TLS_CA_FILE", x.tls_ca_file != y.tls_ca_file);
    check("TLS_MIN_VERSION", x.tls_min_version != y.tls_min_version);
    check("TLS_HANDSHAKE_TIMEOUT_MS", x.tls_handshake_timeout != y.tls_handshake_timeout);
    check("WEBHOOK_ALLOWED_CIDRS",
          cidrs(a.webhook_allowed_cidrs) != cidrs(b.webhook_allowed_cidrs));
    check("MQ_ALLOW_OPERATOR_HANDLERS", a.allow_operator_handlers != b.allow_operator_handlers);
    check("LISTEN_ADDRESS", x.listen_address != y.listen_address);
    check("API_THREADS", x.threads != y.threads);
    check("API_BLOCKING_THREADS", x.blocking_threads != y.blocking_threads);
    check("ACCESS_LOG", x.access_log != y.access_log);
    check("RECEIPT_SECRET", x.receipt_secret != y.receipt_secret);
    check("TENANT_PUBLISH_RATE", x.tenant_publish_rate != y.tenant_publish_rate);
    check("MAX_BATCH_BODY_SIZE", x.max_batch_body_size != y.max_batch_body_size);
    check("METRICS_TOKEN", x.metrics_token != y.metrics_token);
    check("METRICS_REFRESH_S", x.metrics_refresh != y.metrics_refresh);
    for (const auto& [kind, queue] : y.internal_queues) {
        auto it = x.internal_queues.find(kind);
        if (it == x.internal_queues.end() || it->second != queue) {
            std::string name = "INTERNAL_QUEUE_" + kind;
            for (auto& ch : name) ch = ch == '-' ? '_' : static_cast<char>(std::toupper(ch));
            out.push_back(name);
        }
    }
    const WorkerSettings& v = a.worker;
    const WorkerSettings& w = b.worker;
    check("CONSUMER_NAME", v.consumer_name != w.consumer_name);
    check("METRICS_PORT", v.metrics_port != w.metrics_port);
    check("METRICS_ADDRESS", v.metrics_address != w.metrics_address);
    check("SHUTDOWN_TIMEOUT", v.shutdown_timeout != w.shutdown_timeout);
    check("RECONCILE_INTERVAL_MS", v.reconcile_interval != w.reconcile_interval);
    auto same_sources = [](const std::vector<OutboxSource>& p, const std::vector<OutboxSource>& q) {
        return std::equal(p.begin(), p.end(), q.begin(), q.end(), [](const auto& s, const auto& t) {
            return s.tenant == t.tenant && s.database_url == t.database_url;
        });
    };
    check("OUTBOX_SOURCES", !same_sources(a.outbox.sources, b.outbox.sources));
    check("OUTBOX_POLL_INTERVAL", a.outbox.poll_interval != b.outbox.poll_interval);
    check("OUTBOX_BATCH_SIZE", a.outbox.batch_size != b.outbox.batch_size);
    return out;
}

}  // namespace mq
