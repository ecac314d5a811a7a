#pragma once

// mq-api's admission control and HTTPS settings (docs/security.md, "Admission control"
// and "HTTPS"). Part of mq::Config, read from the same YAML file and environment.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
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

    bool tls() const { return !tls_cert_file.empty() || !tls_key_file.empty(); }
};

/// The environment names of ApiSettings.
const std::vector<std::string_view>& api_setting_names();

/// Applies `name` when it is an ApiSettings name (returns false otherwise). Throws
/// ValidationError naming the variable and `source` on a bad value.
bool apply_api_setting(ApiSettings& settings, const std::string& name, const std::string& value,
                       const std::string& source);

}  // namespace mq
