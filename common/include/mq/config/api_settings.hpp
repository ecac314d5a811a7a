#pragma once

// mq-api's settings: listener, threads, admission control and HTTPS (docs/security.md,
// "Admission control" and "HTTPS"), receipts, quotas. Part of mq::Config, read through the
// one registry (mq/config/settings.hpp; docs/config.md).

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mq {

/// What mq-api admits, and how it serves HTTPS.
struct ApiSettings {
    /// MAX_CONNECTIONS: open client connections at most; beyond it a new connection is
    /// answered 503 and closed at once. 0: min(10000, RLIMIT_NOFILE - reserve).
    std::int64_t max_connections = 0;
    /// BLOCKING_QUEUE_LIMIT: requests waiting for the blocking pool at most; beyond it 503
    /// with Retry-After.
    std::int64_t blocking_queue_limit = 512;
    /// HEADER_TIMEOUT_MS: the whole request header must arrive within this (slowloris).
    std::chrono::milliseconds header_timeout{10000};
    /// BODY_TIMEOUT_MS: the whole body must arrive within this once the header is read.
    std::chrono::milliseconds body_timeout{30000};
    /// IDLE_TIMEOUT_MS: a keep-alive connection without a new request is closed after this.
    std::chrono::milliseconds idle_timeout{75000};
    /// AUTH_FAILURE_LIMIT: failed authentications a client address may make in a burst
    /// before it is answered 429 (0: no limit); AUTH_FAILURE_WINDOW_MS: the time in which
    /// that many are forgiven again.
    std::int64_t auth_failure_limit = 20;
    std::chrono::milliseconds auth_failure_window{60000};
    /// AUTH_FAILURE_DELAY_MS: a client over the limit gets its 429 this late (a tarpit: a
    /// keep-alive flood of guessed tokens then costs one answer per connection per delay,
    /// not one per round trip). 0 answers at once.
    std::chrono::milliseconds auth_failure_delay{1000};
    /// TLS_CERT_FILE, TLS_KEY_FILE (PEM): both set, mq-api serves HTTPS only. TLS_CA_FILE:
    /// CAs whose client certificates are verified when a client presents one (a client
    /// certificate is never required). TLS_MIN_VERSION: 1.2 (default) or 1.3.
    std::string tls_cert_file;
    std::string tls_key_file;
    std::string tls_ca_file;
    std::string tls_min_version = "1.2";
    /// TLS_HANDSHAKE_TIMEOUT_MS: a client that connects and does not finish the handshake
    /// within this is closed.
    std::chrono::milliseconds tls_handshake_timeout{10000};

    /// LISTEN_ADDRESS (--address): the address mq-api listens on (PORT is the port).
    std::string listen_address = "0.0.0.0";
    /// API_THREADS (--threads): I/O threads; API_BLOCKING_THREADS: the PostgreSQL pool.
    int threads = 2;
    int blocking_threads = 8;
    bool access_log = true;  ///< ACCESS_LOG: one line per request
    /// RECEIPT_SECRET: key signing pull receipts; empty: random per start.
    std::string receipt_secret;
    /// TENANT_PUBLISH_RATE: default per-tenant publish quota, msg/s per process; 0: none.
    std::int64_t tenant_publish_rate = 0;
    std::int64_t max_batch_body_size = 16 * 1048576;  ///< MAX_BATCH_BODY_SIZE, bytes
    /// METRICS_TOKEN: a scraper's bearer token for /metrics; empty: admin tokens only.
    std::string metrics_token;
    std::chrono::seconds metrics_refresh{5};  ///< METRICS_REFRESH_S (0: every scrape)
    /// INTERNAL_QUEUE_<KIND>: the queue each internal-service route publishes to, by kind.
    std::map<std::string, std::string> internal_queues = {
        {"user-events", "user-events"},
        {"user-notifications", "user-notifications"},
        {"audit-logs", "audit-logs"},
        {"notifications", "notifications"}};

    bool tls() const { return !tls_cert_file.empty() || !tls_key_file.empty(); }
};

/// Adds mq-api's settings (the ones above) to the registry (mq/config/settings.hpp).
struct SettingSpec;
void append_api_setting_specs(std::vector<SettingSpec>& specs);

}  // namespace mq
