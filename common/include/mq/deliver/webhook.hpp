#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "mq/deliver/destination_policy.hpp"
#include "mq/deliver/handler.hpp"

namespace mq {

/// Statuses that dead-letter by default: every 4xx except 408 (Request Timeout) and 429
/// (Too Many Requests), which say "try again later".
std::set<int> default_dead_letter_statuses();

/// Where and how a webhook handler POSTs messages.
struct WebhookConfig {
    std::string url;                             ///< http:// or https://
    std::map<std::string, std::string> headers;  ///< extra request headers, sent as given
    /// Whole request (connect + send + wait for the answer); must be positive.
    std::chrono::milliseconds timeout{10000};
    /// TCP (and TLS) connect only; must be positive and is capped by `timeout`.
    std::chrono::milliseconds connect_timeout{3000};
    /// Standard Webhooks secret: "whsec_<base64>" (the decoded bytes are the key) or raw
    /// bytes. Empty: requests are not signed.
    std::string signing_secret;
    /// Non-2xx statuses that dead-letter at once; every other failure is retried.
    std::set<int> dead_letter_statuses = default_dead_letter_statuses();
    /// Checks the address of every connection libcurl opens (CURLOPT_OPENSOCKETFUNCTION):
    /// set for URLs that came through the API, null for an operator's (trusted). Not read
    /// from JSON.
    std::shared_ptr<const DestinationPolicy> destination_policy;
};

/// Reads a handler object: {"url": "https://..", "headers": {"Authorization": ".."},
/// "timeout": "10s" | "timeout_ms": 10000, "connect_timeout": "3s" | "connect_timeout_ms",
/// "signing_secret": "whsec_..", "retry_on": [404, 409]}. "type" is accepted and ignored;
/// any other field is an error. `retry_on` lists 4xx statuses to retry instead of
/// dead-lettering. Throws ValidationError with details {"field": name} on bad input.
WebhookConfig webhook_config_from_json(const nlohmann::json& j);

/// Checks a config built in code the same way webhook_config_from_json does.
void validate(const WebhookConfig& config);

/// POSTs each message's payload to a URL through libcurl, keeping connections alive.
///
/// Request: body = payload; Content-Type = the message's content type, else a
/// Content-Type from `headers`, else application/octet-stream. Headers: the configured
/// ones, then
///   webhook-id: <message id>, webhook-timestamp: <unix seconds of this attempt>,
///   webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")> (when a
///     secret is set; see sign()),
///   X-MQ-Attempt, X-MQ-Tenant, X-MQ-Queue, X-MQ-Subscription, X-MQ-Partition,
///   X-MQ-Key (when the message has a key), X-MQ-Trace-Id (when it has one),
///   X-MQ-Headers: the message's headers as one compact JSON object, non-ASCII escaped
///     (one header rather than X-MQ-Header-<name> per header: message header names and
///     values need not be valid HTTP, and this way nothing is lost or can inject a line).
/// Outcome: 2xx acks; a status in dead_letter_statuses dead-letters; any other status,
/// a timeout or a connection/TLS failure retries. A Retry-After answer (seconds or an
/// HTTP-date, capped at 24 h) on a retried status becomes DeliveryResult::retry_after.
/// Redirects are not followed (a 3xx retries, naming the Location); only http and https
/// are spoken. With a destination_policy, a connection to a refused address is never
/// opened: the attempt fails and retries, naming the address and why (DNS rebinding gains
/// nothing). Errors name the status and up to 200 bytes of the response body, never the
/// URL (it may hold tokens).
///
/// Thread-safe: each call checks a curl easy handle out of a pool the handler owns, so a
/// thread delivering one message after another reuses one connection.
class WebhookHandler : public Handler {
  public:
    /// Validates `config` (ValidationError) and initialises libcurl once per process.
    explicit WebhookHandler(WebhookConfig config);
    ~WebhookHandler() override;
    WebhookHandler(const WebhookHandler&) = delete;
    WebhookHandler& operator=(const WebhookHandler&) = delete;

    DeliveryResult deliver(const Delivery& delivery) override;

    const WebhookConfig& config() const { return config_; }

    /// "v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>", the Standard Webhooks
    /// webhook-signature value. `secret` is "whsec_<base64>" or raw key bytes.
    /// Throws ValidationError when a whsec_ secret is not valid base64.
    static std::string sign(std::string_view secret, std::string_view id, std::int64_t timestamp,
                            std::string_view body);

    /// True when one of the space-separated "v1,<sig>" entries of `signature_header` is
    /// the signature of (id, timestamp, body) under `secret` (constant-time compare).
    /// Receivers should also reject timestamps far from their clock (replays); that check
    /// is theirs, not this function's.
    static bool verify(std::string_view secret, std::string_view id, std::int64_t timestamp,
                       std::string_view body, std::string_view signature_header);

  private:
    struct Pool;
    WebhookConfig config_;
    std::string key_;  ///< HMAC key bytes decoded from the secret once
    std::unique_ptr<Pool> pool_;
};

}  // namespace mq
