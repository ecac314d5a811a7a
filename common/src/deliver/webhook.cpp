#include "mq/deliver/webhook.hpp"

#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <mutex>
#include <vector>

#include "mq/core/codec.hpp"
#include "mq/core/time.hpp"
#include "mq/core/trace_context.hpp"
#include "mq/error.hpp"

namespace mq {
namespace {

using std::chrono::milliseconds;

constexpr std::size_t kSnippetBytes = 200;
constexpr std::int64_t kMaxRetryAfterS = 24 * 3600;
constexpr std::string_view kSecretPrefix = "whsec_";

[[noreturn]] void invalid(const std::string& field, const std::string& why) {
    throw ValidationError("webhook " + field + ": " + why, {{"field", field}});
}

void init_curl_once() {
    static std::once_flag once;
    static CURLcode rc = CURLE_OK;
    std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (rc != CURLE_OK)
        throw Error(ErrorCode::kInternal,
                    std::string("cannot initialise libcurl: ") + curl_easy_strerror(rc));
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// ---- secrets and signatures ------------------------------------------------------------

/// HMAC key bytes of a secret: "whsec_<base64>" decoded, anything else as given.
std::string secret_key(std::string_view secret) {
    if (secret.substr(0, kSecretPrefix.size()) != kSecretPrefix) return std::string(secret);
    auto key = codec::base64_decode(secret.substr(kSecretPrefix.size()));
    if (!key || key->empty())
        invalid("signing_secret", "a whsec_ secret must be followed by base64 key bytes");
    return *key;
}

/// base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")) without copying the body.
std::string signature_of(const std::string& key, std::string_view id, std::int64_t timestamp,
                         std::string_view body) {
    std::string ts = std::to_string(timestamp);
    return codec::base64_encode(codec::hmac_sha256(key, {id, ".", ts, ".", body}));
}

// ---- validation ------------------------------------------------------------------------

bool is_token_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_header_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), is_token_char);
}

bool is_header_value(std::string_view value) {
    return std::none_of(value.begin(), value.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return (u < 0x20 && c != '\t') || u == 0x7f;
    });
}

/// Headers mq sets itself; a config may not override them.
bool is_reserved_header(std::string_view name) {
    std::string n = lower(name);
    return n.rfind("webhook-", 0) == 0 || n.rfind("x-mq-", 0) == 0 || n == "content-length" ||
           n == "transfer-encoding";
}

struct UrlDeleter {
    void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

void validate_url(const std::string& url) {
    if (url.empty()) invalid("url", "is required");
    for (char c : url)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            invalid("url", "must not contain spaces or control characters");
    std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
    if (!u) throw Error(ErrorCode::kInternal, "out of memory parsing a URL");
    if (curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
        invalid("url", "'" + printable(url) + "' is not a valid absolute http(s) URL");
    char* part = nullptr;
    std::string scheme;
    if (curl_url_get(u.get(), CURLUPART_SCHEME, &part, 0) == CURLUE_OK) {
        scheme = lower(part);
        curl_free(part);
    }
    if (scheme != "http" && scheme != "https")
        invalid("url", "scheme must be http or https, not '" + printable(scheme) + "'");
    part = nullptr;
    bool has_host = curl_url_get(u.get(), CURLUPART_HOST, &part, 0) == CURLUE_OK && part && *part;
    curl_free(part);
    if (!has_host) invalid("url", "has no host");
}

milliseconds json_duration(const nlohmann::json& v, const std::string& field) {
    if (!v.is_string())
        invalid(field, "must be a duration string like \"10s\" (or use " + field + "_ms)");
    try {
        return parse_duration(v.get<std::string>(), field);
    } catch (const ValidationError& e) {
        invalid(field, e.what());
    }
}

milliseconds json_ms(const nlohmann::json& v, const std::string& field) {
    if (!v.is_number_integer() || v.get<std::int64_t>() <= 0)
        invalid(field, "must be a positive integer number of milliseconds");
    return milliseconds(v.get<std::int64_t>());
}

// ---- HTTP ------------------------------------------------------------------------------

struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

void append_line(HeaderList& list, const std::string& line) {
    curl_slist* grown = curl_slist_append(list.get(), line.c_str());
    if (!grown) throw Error(ErrorCode::kInternal, "out of memory building webhook headers");
    (void)list.release();  // curl_slist_append returned the same head or a new one owning it
    list.reset(grown);
}

void append(HeaderList& list, const std::string& name, const std::string& value) {
    // "Name;" is curl's way to send a header with an empty value ("Name:" would remove it).
    append_line(list, value.empty() ? name + ";" : name + ": " + value);
}

/// Bytes outside visible ASCII (and '%') percent-encoded: publisher-supplied values such
/// as keys go into a header line without a way to inject another line.
std::string header_safe(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u > 0x20 && u < 0x7f && c != '%') {
            out += c;
        } else {
            out += '%';
            codec::append_hex_byte(out, u, true);
        }
    }
    return out;
}

std::string headers_header(const std::string& headers_json) {
    if (headers_json.empty()) return "{}";
    try {
        return nlohmann::json::parse(headers_json).dump(-1, ' ', true);
    } catch (const nlohmann::json::exception&) {
        return header_safe(headers_json);  // not JSON after all: still deliver it, escaped
    }
}

struct ResponseBody {
    std::string snippet;
    std::size_t total = 0;
};

std::size_t collect_body(char* data, std::size_t size, std::size_t n, void* user) {
    auto* body = static_cast<ResponseBody*>(user);
    std::size_t len = size * n;
    if (body->snippet.size() < kSnippetBytes)
        body->snippet.append(data, std::min(len, kSnippetBytes - body->snippet.size()));
    body->total += len;
    return len;  // the rest is read and dropped, so the connection stays reusable
}

std::string describe_body(const ResponseBody& body) {
    if (body.total == 0) return "(empty body)";
    std::string s = printable(body.snippet);
    if (body.total > body.snippet.size()) s += "...";
    return s;
}

std::optional<std::string> response_header(CURL* h, const char* name) {
    curl_header* hdr = nullptr;
    if (curl_easy_header(h, name, 0, CURLH_HEADER, -1, &hdr) != CURLHE_OK || !hdr) return {};
    return std::string(hdr->value);
}

/// Retry-After: delta-seconds or an HTTP-date (RFC 9110 §10.2.3), clamped to [0, 24 h].
std::optional<milliseconds> parse_retry_after(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    if (v.empty()) return {};
    std::int64_t seconds = 0;
    if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        for (char c : v) {
            seconds = seconds * 10 + (c - '0');
            if (seconds > kMaxRetryAfterS) break;
        }
    } else {
        time_t at = curl_getdate(std::string(v).c_str(), nullptr);
        if (at == -1) return {};
        seconds = static_cast<std::int64_t>(at) - static_cast<std::int64_t>(std::time(nullptr));
    }
    return milliseconds(std::clamp<std::int64_t>(seconds, 0, kMaxRetryAfterS) * 1000);
}

struct EasyDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;

}  // namespace

// ---- public ----------------------------------------------------------------------------

std::set<int> default_dead_letter_statuses() {
    std::set<int> s;
    for (int status = 400; status <= 499; ++status)
        if (status != 408 && status != 429) s.insert(status);
    return s;
}

void validate(const WebhookConfig& config) {
    init_curl_once();
    validate_url(config.url);
    if (config.timeout <= milliseconds(0)) invalid("timeout", "must be positive");
    if (config.connect_timeout <= milliseconds(0)) invalid("connect_timeout", "must be positive");
    for (const auto& [name, value] : config.headers) {
        if (!is_header_name(name))
            invalid("headers", "'" + printable(name) + "' is not a valid HTTP header name");
        if (!is_header_value(value))
            invalid("headers", "value of '" + name + "' must not contain control characters");
        if (is_reserved_header(name))
            invalid("headers", "'" + name + "' is set by mq and cannot be configured");
    }
    (void)secret_key(config.signing_secret);
    for (int status : config.dead_letter_statuses)
        if (status < 100 || status > 599 || (status >= 200 && status <= 299))
            invalid("dead_letter_statuses", std::to_string(status) + " is not a failure status");
}

WebhookConfig webhook_config_from_json(const nlohmann::json& j) {
    if (!j.is_object()) invalid("handler", "must be an object with a \"url\"");
    WebhookConfig c;
    bool timeout_seen = false;
    bool connect_timeout_seen = false;
    for (const auto& [field, v] : j.items()) {
        if (field == "type") {
            continue;
        } else if (field == "url") {
            if (!v.is_string()) invalid(field, "must be a string");
            c.url = v.get<std::string>();
        } else if (field == "headers") {
            if (!v.is_object()) invalid(field, "must be an object of name: value strings");
            for (const auto& [name, value] : v.items()) {
                if (!value.is_string()) invalid(field, "value of '" + name + "' must be a string");
                c.headers[name] = value.get<std::string>();
            }
        } else if (field == "timeout" || field == "timeout_ms") {
            if (timeout_seen) invalid(field, "give timeout or timeout_ms, not both");
            timeout_seen = true;
            c.timeout = field == "timeout" ? json_duration(v, field) : json_ms(v, field);
        } else if (field == "connect_timeout" || field == "connect_timeout_ms") {
            if (connect_timeout_seen)
                invalid(field, "give connect_timeout or connect_timeout_ms, not both");
            connect_timeout_seen = true;
            c.connect_timeout =
                field == "connect_timeout" ? json_duration(v, field) : json_ms(v, field);
        } else if (field == "signing_secret") {
            if (!v.is_string()) invalid(field, "must be a string");
            c.signing_secret = v.get<std::string>();
        } else if (field == "retry_on") {
            if (!v.is_array()) invalid(field, "must be a list of 4xx statuses");
            for (const auto& s : v) {
                if (!s.is_number_integer() || s.get<int>() < 400 || s.get<int>() > 499)
                    invalid(field,
                            "'" + s.dump() +
                                "' is not a 4xx status (other failures are retried already)");
                c.dead_letter_statuses.erase(s.get<int>());
            }
        } else {
            invalid(field, "unknown field");
        }
    }
    if (!j.contains("url")) invalid("url", "is required");
    validate(c);
    return c;
}

/// Idle curl easy handles; each keeps its connections open between deliveries.
struct WebhookHandler::Pool {
    /// A handle checked out for one delivery, returned (with its connection) at scope end.
    class Lease {
      public:
        Lease(Pool& pool, EasyHandle handle) : pool_(pool), handle_(std::move(handle)) {}
        ~Lease() { pool_.give_back(std::move(handle_)); }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        CURL* get() const { return handle_.get(); }

      private:
        Pool& pool_;
        EasyHandle handle_;
    };

    Lease lease() { return Lease(*this, take()); }

  private:
    EasyHandle take() {
        {
            std::lock_guard lock(mutex_);
            if (!idle_.empty()) {
                EasyHandle h = std::move(idle_.back());
                idle_.pop_back();
                return h;
            }
        }
        EasyHandle h(curl_easy_init());
        if (!h) throw Error(ErrorCode::kInternal, "curl_easy_init failed");
        return h;
    }
    void give_back(EasyHandle h) {
        std::lock_guard lock(mutex_);
        idle_.push_back(std::move(h));
    }

    std::mutex mutex_;
    std::vector<EasyHandle> idle_;  // most recently used last: its connection is the warmest
};

WebhookHandler::WebhookHandler(WebhookConfig config)
    : config_(std::move(config)), pool_(std::make_unique<Pool>()) {
    validate(config_);
    key_ = secret_key(config_.signing_secret);
}

WebhookHandler::~WebhookHandler() = default;

std::string WebhookHandler::sign(std::string_view secret, std::string_view id,
                                 std::int64_t timestamp, std::string_view body) {
    std::string key = secret_key(secret);
    if (key.empty()) invalid("signing_secret", "is empty");
    return "v1," + signature_of(key, id, timestamp, body);
}

bool WebhookHandler::verify(std::string_view secret, std::string_view id, std::int64_t timestamp,
                            std::string_view body, std::string_view signature_header) {
    std::string key;
    try {
        key = secret_key(secret);
    } catch (const ValidationError&) {
        return false;
    }
    if (key.empty()) return false;
    std::string expected = signature_of(key, id, timestamp, body);
    while (!signature_header.empty()) {
        std::size_t space = signature_header.find(' ');
        std::string_view entry = signature_header.substr(0, space);
        signature_header.remove_prefix(space == std::string_view::npos ? signature_header.size()
                                                                       : space + 1);
        if (entry.substr(0, 3) != "v1,") continue;
        std::string_view sig = entry.substr(3);
        if (codec::constant_time_equal(sig, expected)) return true;
    }
    return false;
}

namespace {

// CURLOPT_XFERINFOFUNCTION: a non-zero answer aborts the transfer (CURLE_ABORTED_BY_CALLBACK)
// once a stopping worker abandoned the delivery.
int abort_when_abandoned(void* flag, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<const std::atomic<bool>*>(flag)->load() ? 1 : 0;
}

// What the open-socket callback checks, and what it refused.
struct ConnectGuard {
    const DestinationPolicy* policy = nullptr;
    std::string refused;  ///< "<address> is loopback" for the last refused attempt
};

// CURLOPT_OPENSOCKETFUNCTION: the one place every connection of a policed webhook starts,
// whatever name resolution said before. A refused address gets no socket (the attempt
// fails with CURLE_COULDNT_CONNECT); libcurl tries the name's other addresses, if any.
curl_socket_t open_checked_socket(void* clientp, curlsocktype purpose, curl_sockaddr* a) {
    auto* guard = static_cast<ConnectGuard*>(clientp);
    if (purpose != CURLSOCKTYPE_IPCXN) {
        guard->refused = "not an IP connection";
        return CURL_SOCKET_BAD;
    }
    IpAddress ip;
    if (a->family == AF_INET && a->addrlen >= sizeof(sockaddr_in)) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(&a->addr);
        std::memcpy(ip.bytes.data(), &sin->sin_addr, 4);
    } else if (a->family == AF_INET6 && a->addrlen >= sizeof(sockaddr_in6)) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&a->addr);
        ip.v6 = true;
        std::memcpy(ip.bytes.data(), &sin6->sin6_addr, 16);
    } else {
        guard->refused = "address family " + std::to_string(a->family) + " is not IP";
        return CURL_SOCKET_BAD;
    }
    std::string why = guard->policy->refusal(ip);
    if (!why.empty()) {
        guard->refused = why;
        return CURL_SOCKET_BAD;
    }
    return ::socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

}  // namespace

DeliveryResult WebhookHandler::deliver(const Delivery& d) {
    const auto started = std::chrono::steady_clock::now();
    DeliveryResult result;
    auto finish = [&](DeliveryOutcome outcome, std::string error) {
        result.outcome = outcome;
        result.error = std::move(error);
        result.duration =
            std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
        return result;
    };

    const Message& m = d.message;
    const std::int64_t timestamp = now_ms() / 1000;

    HeaderList headers;
    std::string content_type = m.content_type;
    if (content_type.empty() || !is_header_value(content_type)) {
        content_type = "application/octet-stream";
        for (const auto& [name, value] : config_.headers)
            if (lower(name) == "content-type") content_type = value;
    }
    // W3C trace context: the message's trace with a new span id for this attempt; it
    // replaces a configured traceparent/tracestate so the receiver sees one of each.
    const trace::Handoff trace = trace::handoff(m);
    for (const auto& [name, value] : config_.headers) {
        std::string n = lower(name);
        if (n == "content-type") continue;
        if (!trace.traceparent.empty() && (n == "traceparent" || n == "tracestate")) continue;
        append(headers, name, value);
    }
    append(headers, "Content-Type", content_type);
    if (!trace.traceparent.empty()) {
        append(headers, "traceparent", trace.traceparent);
        if (!trace.tracestate.empty()) append(headers, "tracestate", header_safe(trace.tracestate));
    }
    append_line(headers, "Expect:");  // removes curl's 100-continue round trip for large bodies
    append(headers, "webhook-id", header_safe(m.id));
    append(headers, "webhook-timestamp", std::to_string(timestamp));
    if (!key_.empty())
        append(headers, "webhook-signature",
               "v1," + signature_of(key_, m.id, timestamp, m.payload));
    append(headers, "X-MQ-Attempt", std::to_string(d.attempt));
    append(headers, "X-MQ-Tenant", header_safe(d.tenant));
    append(headers, "X-MQ-Queue", header_safe(d.queue));
    append(headers, "X-MQ-Subscription", header_safe(d.subscription));
    append(headers, "X-MQ-Partition", std::to_string(d.partition));
    if (!m.key.empty()) append(headers, "X-MQ-Key", header_safe(m.key));
    if (!m.trace_id.empty()) append(headers, "X-MQ-Trace-Id", header_safe(m.trace_id));
    append(headers, "X-MQ-Headers", headers_header(m.headers_json));

    Pool::Lease handle = pool_->lease();
    CURL* h = handle.get();
    // Reset drops every option from the last delivery but keeps live connections.
    curl_easy_reset(h);
    ResponseBody body;
    char error_buffer[CURL_ERROR_SIZE] = {0};
    const long timeout_ms = static_cast<long>(config_.timeout.count());
    const long connect_ms =
        static_cast<long>(std::min(config_.connect_timeout, config_.timeout).count());
    curl_easy_setopt(h, CURLOPT_URL, config_.url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect could lead anywhere
    ConnectGuard guard;
    HeaderList pinned;
    if (config_.destination_policy) {
        guard.policy = config_.destination_policy.get();
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_checked_socket);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &guard);
        // A policy with its own resolver (a test seam) decides what the name is now:
        // libcurl connects to those addresses, each still checked above.
        if (guard.policy->has_custom_resolver()) {
            if (auto t = url_target(config_.url); t && !parse_ip(t->host)) {
                std::string line = t->host + ":" + std::to_string(t->port) + ":";
                bool first = true;
                for (const auto& ip : guard.policy->resolve(t->host)) {
                    line +=
                        (first ? "" : ",") + (ip.v6 ? "[" + ip.to_string() + "]" : ip.to_string());
                    first = false;
                }
                if (!first) append_line(pinned, line);
                curl_easy_setopt(h, CURLOPT_RESOLVE, pinned.get());
            }
        }
    }
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, m.payload.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(m.payload.size()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_USERAGENT, "mq-worker");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM timeouts in a threaded worker
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
    if (d.abandoned) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, abort_when_abandoned);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(d.abandoned));
    }

    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);  // the buffer dies with this frame
    if (rc != CURLE_OK) {
        std::string detail = error_buffer[0] ? std::string(error_buffer) : curl_easy_strerror(rc);
        if (!guard.refused.empty())
            return finish(DeliveryOutcome::kRetry,
                          "webhook destination refused: " + guard.refused +
                              " (webhooks created through the API reach public addresses only; "
                              "see WEBHOOK_ALLOWED_CIDRS)");
        if (rc == CURLE_ABORTED_BY_CALLBACK)
            return finish(DeliveryOutcome::kRetry,
                          "abandoned: the worker stopped while the request ran");
        if (rc == CURLE_OPERATION_TIMEDOUT)
            return finish(DeliveryOutcome::kRetry,
                          "webhook timed out (timeout " + std::to_string(timeout_ms) +
                              " ms, connect " + std::to_string(connect_ms) + " ms): " + detail);
        return finish(DeliveryOutcome::kRetry, "webhook request failed: " + detail);
    }

    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status <= 299) return finish(DeliveryOutcome::kAck, "");

    std::string error = "HTTP " + std::to_string(status) + ": " + describe_body(body);
    if (config_.dead_letter_statuses.count(static_cast<int>(status)))
        return finish(DeliveryOutcome::kDead, std::move(error));
    if (status >= 300 && status <= 399) {
        if (auto location = response_header(h, "Location"))
            error += " (redirect to " + printable(*location) + " not followed)";
    }
    if (auto retry_after = response_header(h, "Retry-After"))
        result.retry_after = parse_retry_after(*retry_after);
    return finish(DeliveryOutcome::kRetry, std::move(error));
}

}  // namespace mq
