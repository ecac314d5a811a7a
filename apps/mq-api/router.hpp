#pragma once

// The route table: method + path pattern ("/api/v1/mq/queues/{name}") -> handler, with
// what each route needs (authentication, body limit, which threads run it).

#include <prometheus/histogram.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http.hpp"

namespace mqapi {

enum class Auth {
    kNone,     ///< health, openapi, Prometheus
    kBearer,   ///< Authorization: Bearer <token>
    kService,  ///< X-Service-Token (internal routes)
};

enum class Runs {
    kInline,    ///< on the I/O thread: must not block (parses, then hands off)
    kBlocking,  ///< on the blocking pool: may wait for PostgreSQL or Redis
};

/// Inline handlers complete through `reply`, possibly later from another thread.
using AsyncHandler = std::function<void(Request&, Reply)>;
/// Blocking handlers return the response; a thrown mq::Error becomes its error response.
using SyncHandler = std::function<Response(Request&)>;

/// Counters of one route, for /metrics (mq_http_requests_total and
/// mq_http_request_duration_seconds, both left out until the route answered once).
struct RouteStats {
    prometheus::Histogram duration{prometheus::Histogram::BucketBoundaries{
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}};
    std::atomic<std::uint64_t> by_class[6] = {};  // 1xx..5xx by first digit
    void record(int status, std::uint64_t micros);
};

struct Route {
    http::verb method;
    std::string pattern;
    Auth auth = Auth::kBearer;
    Runs runs = Runs::kBlocking;
    std::size_t body_limit = 0;  ///< 0: the server's default for single messages
    AsyncHandler async;
    SyncHandler sync;
    std::vector<std::string> segments;  // pattern split on '/'
    std::unique_ptr<RouteStats> stats = std::make_unique<RouteStats>();
};

/// What a client may see of `error`: codes that can carry backend text (MQ_INTERNAL_ERROR,
/// MQ_PUBLISH_FAILED, MQ_BACKEND_UNAVAILABLE: SQL, Redis replies, hosts, paths) get a
/// generic message naming the request id, and the original is logged with that id
/// (docs/security.md, "What answers reveal"). A backend-unavailable error always carries a
/// retry time. Other errors are ours, written for the client, and pass unchanged.
mq::Error client_error(const mq::Error& error, std::string_view request_id);

/// Applies client_error to an error answer on its way out (every answer passes here, so a
/// route that forgot cannot leak): 5xx answers in the error shape are rewritten.
void redact_answer(Response& response, std::string_view request_id);

class Router {
  public:
    void add(http::verb method, std::string pattern, Auth auth, SyncHandler handler,
             std::size_t body_limit = 0);
    void add_async(http::verb method, std::string pattern, Auth auth, AsyncHandler handler,
                   std::size_t body_limit = 0);

    struct Match {
        const Route* route = nullptr;
        bool path_known = false;  ///< some route has this path (with another method): 405
        /// With no route: the methods the path has, for the 405's `Allow` header.
        std::vector<http::verb> allowed;
        std::map<std::string, std::string> params;
    };
    Match match(http::verb method, std::string_view path) const;

    const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

  private:
    Route& add_route(http::verb method, std::string pattern, Auth auth, Runs runs,
                     std::size_t body_limit);
    std::vector<std::unique_ptr<Route>> routes_;
};

}  // namespace mqapi
