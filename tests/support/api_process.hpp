#pragma once

// Runs mq-api against the test services (or other Redis/PostgreSQL URLs) on a free
// loopback port, with its own key prefix, and talks HTTP to it.

#include <sys/types.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "child_process.hpp"
#include "harness.hpp"

namespace mqtest {

struct HttpResult {
    int status = 0;  ///< 0: no answer (connection refused/closed)
    std::string body;
    std::map<std::string, std::string> headers;  ///< names in lower case
    /// The body as JSON (null when it is not JSON).
    nlohmann::json json() const;
    /// error.code of an error body, "" otherwise.
    std::string error_code() const;
};

/// One HTTP/1.1 request on a fresh connection to 127.0.0.1:port.
HttpResult http_request(int port, const std::string& method, const std::string& target,
                        const std::string& body = "",
                        const std::map<std::string, std::string>& headers = {},
                        std::chrono::milliseconds timeout = std::chrono::seconds(40));

/// METRICS_TOKEN of every ApiProcess (ApiOptions::env may override it).
inline const std::string kMetricsToken = "test-metrics-scrape-token";

struct ApiOptions {
    std::string redis_url;                   ///< empty: the fixture's
    std::string database_url;                ///< empty: the fixture's
    std::string key_prefix;                  ///< empty: a unique one
    std::map<std::string, std::string> env;  ///< extra environment (INTERNAL_SERVICE_TOKEN, ...)
    bool wait_ready = true;
};

class ApiProcess {
  public:
    explicit ApiProcess(ApiOptions options = {});
    ~ApiProcess();  ///< SIGTERM, then SIGKILL after 5 s
    ApiProcess(const ApiProcess&) = delete;
    ApiProcess& operator=(const ApiProcess&) = delete;

    int port() const { return port_; }
    pid_t pid() const { return process_.pid(); }
    const std::string& key_prefix() const { return prefix_; }
    /// Everything the process wrote to stdout/stderr so far.
    std::string log() const;

    /// A request with `Authorization: Bearer <token>` when token is not empty.
    HttpResult call(const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& token = "",
                    std::map<std::string, std::string> headers = {}) const;
    HttpResult call_json(const std::string& method, const std::string& target,
                         const nlohmann::json& body, const std::string& token,
                         std::map<std::string, std::string> headers = {}) const;

    /// GET /metrics with the scrape token (METRICS_TOKEN).
    HttpResult scrape() const { return call("GET", "/metrics", "", kMetricsToken); }

    /// Sends SIGTERM and waits (SIGKILL after `wait`); returns the exit status (128 + signal
    /// when a signal ended it).
    int terminate(std::chrono::milliseconds wait = std::chrono::seconds(40));
    /// Has it exited? (non-blocking)
    bool running();

  private:
    ChildProcess process_;
    int port_ = 0;
    std::string prefix_;
    std::string log_path_;
};

/// `mqctl token create` for `tenant`; returns the secret.
std::string create_token(const std::string& tenant, const std::string& role,
                         const std::string& principal);

/// The start of most API tests: a tenant of its own, an mq-api process and a
/// tenant-admin token (principal "ops") of that tenant.
struct ApiSession {
    explicit ApiSession(ApiOptions options = {}) : api(std::move(options)) {}
    TenantScope tenant;
    ApiProcess api;
    std::string token = create_token(tenant.tenant(), "tenant-admin", "ops");
};

/// Through the API with `token`, each REQUIRE'd to answer 201: a queue named `name`; `n`
/// messages {"i": 0..n-1} to `queue`; a subscription from the earliest entry (its id).
void api_create_queue(const ApiProcess& api, const std::string& token, const std::string& name);
void api_publish_n(const ApiProcess& api, const std::string& token, const std::string& queue,
                   int n);
std::string api_subscribe(const ApiProcess& api, const std::string& token, const std::string& queue,
                          const std::string& name);

}  // namespace mqtest
