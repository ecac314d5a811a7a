#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mq/config/api_settings.hpp"
#include "mq/core/ip_address.hpp"

namespace mq {

/// mq-worker's own settings (its YAML file, environment or flags; docs/config.md).
struct WorkerSettings {
    std::string consumer_name;  ///< CONSUMER_NAME (--consumer-name); empty: <host>-<pid>
    int metrics_port = 9464;    ///< METRICS_PORT (--metrics-port); 0: no /metrics, /healthz
    /// METRICS_ADDRESS (--metrics-address): where /metrics and /healthz listen. Loopback by
    /// default: they carry every subscription's names and figures, without a token.
    std::string metrics_address = "127.0.0.1";
    std::chrono::milliseconds shutdown_timeout{30000};  ///< SHUTDOWN_TIMEOUT
    /// RECONCILE_INTERVAL_MS (--reconcile-interval-ms): with --from-db, a full reconcile from
    /// PostgreSQL this often (events apply at once).
    std::chrono::milliseconds reconcile_interval{15000};
};

/// One database whose outbox (mq.outbox, docs/outbox.md) a relay drains, and the tenant
/// every row of it publishes as: whoever may call mq.enqueue there publishes as that tenant.
struct OutboxSource {
    std::string tenant;
    std::string database_url;
};

/// The outbox relay (docs/outbox.md): off while `sources` is empty.
struct OutboxSettings {
    std::vector<OutboxSource> sources;              ///< OUTBOX_SOURCES (mq-worker)
    std::chrono::milliseconds poll_interval{1000};  ///< OUTBOX_POLL_INTERVAL: safety net
    int batch_size = 100;                           ///< OUTBOX_BATCH_SIZE: rows per claim
};

/// Process configuration. Precedence: flags > environment > YAML file > defaults
/// (DESIGN.md §8). Environment names are the platform's. Every field is one setting of the
/// registry (mq/config/settings.hpp), which holds its default, checks and documentation.
struct Config {
    int port = 3010;                                                       ///< PORT
    std::string database_url = "postgresql://postgres@127.0.0.1:5432/mq";  ///< DATABASE_URL
    std::string redis_url = "redis://127.0.0.1:6379/0";                    ///< REDIS_URL
    /// REDIS_CLUSTER_NODES: seeds of a Redis Cluster (host:port,...); empty: REDIS_URL is
    /// one server (or itself a redis+cluster:// URL). docs/cluster.md.
    std::string redis_cluster_nodes;
    /// TLS to Redis (a rediss:// REDIS_URL; docs/security.md): CA file and directory (the
    /// system's CAs when both are empty), client certificate and key for servers that ask
    /// for one, and the name the server's certificate must carry (default: the URL host).
    std::string redis_tls_ca_file;                      ///< REDIS_TLS_CA_FILE
    std::string redis_tls_ca_dir;                       ///< REDIS_TLS_CA_DIR
    std::string redis_tls_cert_file;                    ///< REDIS_TLS_CERT_FILE
    std::string redis_tls_key_file;                     ///< REDIS_TLS_KEY_FILE
    std::string redis_tls_server_name;                  ///< REDIS_TLS_SERVER_NAME
    std::string key_prefix = "mq:";                     ///< REDIS_KEY_PREFIX
    std::int64_t max_message_size = 1048576;            ///< MAX_MESSAGE_SIZE, bytes
    std::chrono::seconds default_ttl{604800};           ///< DEFAULT_TTL, default retention
    std::optional<std::int64_t> max_queue_length;       ///< MAX_QUEUE_LENGTH; unset: none
    std::chrono::milliseconds consumer_timeout{30000};  ///< CONSUMER_TIMEOUT
    bool metrics_enabled = true;                        ///< METRICS_ENABLED
    std::string internal_service_token;                 ///< INTERNAL_SERVICE_TOKEN
    std::string log_format = "text";                    ///< LOG_FORMAT text|json
    std::string log_level = "info";                     ///< LOG_LEVEL
    std::string tenant = "default";                     ///< MQ_TENANT (mqctl)
    /// MQ_KEYRING_FILE: keys for queues with encryption aes-256-gcm (docs/encryption.md);
    /// empty: none, and publishing to or delivering from such a queue is refused.
    std::string keyring_file;
    /// Retention of dead letters (docs/retention.md). In Redis only archived ones are
    /// trimmed: beyond DEAD_LETTER_MAX_LENGTH per partition (0: no cap) or older than
    /// DEAD_LETTER_MAX_AGE (seconds, 0: no age limit). The PostgreSQL archive keeps rows for
    /// DEAD_LETTER_RETENTION (seconds).
    std::int64_t dead_letter_max_length = 10000;
    std::chrono::seconds dead_letter_max_age{604800};
    std::chrono::seconds dead_letter_retention{2592000};
    /// HISTORY_RETENTION (seconds): message history rows older than this are deleted by the
    /// maintenance service in batches (docs/history.md).
    std::chrono::seconds history_retention{604800};
    /// HISTORY_BATCH: events the history writer moves per partition and pass.
    std::int64_t history_batch = 1000;
    /// MAINTENANCE on|off: mq-api and mq-worker run the maintenance service (delayed
    /// mover, dead-letter archiver...; docs/maintenance.md). mqctl ignores it.
    bool maintenance = true;
    /// RETENTION_TRIM on|off: the maintenance service trims streams (retention and what every
    /// subscription finished, docs/retention.md). Off only to measure or debug: memory grows.
    bool retention_trim = true;
    /// mq-api's admission control and HTTPS (mq/config/api_settings.hpp).
    ApiSettings api;
    /// WEBHOOK_ALLOWED_CIDRS: ranges a webhook created through the API may reach although
    /// they are not public ("10.1.0.0/16,127.0.0.0/8"; docs/security.md, "Webhook
    /// destinations (SSRF)"). Read by mq-api (creation check) and mq-worker (connect check).
    std::vector<Cidr> webhook_allowed_cidrs;
    /// MQ_ALLOW_OPERATOR_HANDLERS: `mq-worker --from-db` runs exec and log-to-file
    /// subscriptions an operator created (docs/security.md, "Handler trust boundary").
    /// Also the flag --allow-operator-handlers. Others ignore it.
    bool allow_operator_handlers = false;
    /// mq-worker's listener, consumer name and timeouts.
    WorkerSettings worker;
    /// The transactional outbox relay of mq-worker and `mqctl outbox relay`.
    OutboxSettings outbox;
};

/// Builds a Config from defaults, then `yaml_file` (when non-empty; keys are the
/// environment names in lower case, e.g. `redis_url:`), then the given environment, for
/// every setting of every program (mq::ConfigLoader does it for one program, with flags).
/// Throws ValidationError naming the variable or file:line on a bad value.
Config load_config(const std::string& yaml_file, const std::map<std::string, std::string>& env);

/// The process environment as a map (only the names of settings, plus MQ_CONFIG).
std::map<std::string, std::string> process_environment();

/// Applies one setting by its environment name; `source` names where it came from in
/// error messages. Unknown names throw ValidationError ("did you mean ...").
void apply_setting(Config& config, const std::string& name, const std::string& value,
                   const std::string& source);

}  // namespace mq
