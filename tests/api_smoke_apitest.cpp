// The API process itself: starts, answers health, lists its routes, refuses unknown
// routes and methods in the error format, drains on SIGTERM.
#include <catch2/catch.hpp>

#include "api_process.hpp"
#include "harness.hpp"

using namespace mqtest;

TEST_CASE("api_health_answers_without_a_token", "[api]") {
    ApiProcess api;
    auto r = api.call("GET", "/api/v1/mq/health");
    REQUIRE(r.status == 200);
    auto j = r.json();
    CHECK(j["status"] == "ok");
    CHECK(j["checks"]["redis"]["status"] == "ok");
    CHECK(j["checks"]["redis_stream"]["status"] == "ok");
    CHECK(j["checks"]["postgres"]["status"] == "ok");
    CHECK_FALSE(r.headers["x-request-id"].empty());
}

TEST_CASE("api_unknown_route_and_method_answer_in_the_error_format", "[api]") {
    ApiProcess api;
    auto r = api.call("GET", "/api/v1/mq/nope");
    CHECK(r.status == 404);
    CHECK(r.error_code() == "MQ_NOT_FOUND");
    auto m = api.call("PATCH", "/api/v1/mq/queues");
    CHECK(m.status == 405);
    CHECK(m.error_code() == "MQ_METHOD_NOT_ALLOWED");
    CHECK(m.json()["error"].contains("retryAfter"));
    CHECK(m.headers["allow"] == "POST, GET");  // RFC 9110: the methods the path has
    auto one = api.call("DELETE", "/api/v1/mq/subscriptions/some-id/ack");
    CHECK(one.status == 405);
    CHECK(one.headers["allow"] == "POST");
    CHECK(one.json()["error"]["details"]["allow"] == "POST");
}

TEST_CASE("api_bearer_routes_refuse_missing_and_unknown_tokens", "[api]") {
    ApiProcess api;
    auto none = api.call("GET", "/api/v1/mq/queues");
    CHECK(none.status == 401);
    CHECK(none.error_code() == "MQ_UNAUTHORIZED");
    CHECK(none.headers["www-authenticate"] == "Bearer");
    auto bad = api.call("GET", "/api/v1/mq/queues", "", "mq_notatokenatall");
    CHECK(bad.status == 401);
}

TEST_CASE("api_request_id_is_echoed_when_sane", "[api]") {
    ApiProcess api;
    auto r = api.call("GET", "/api/v1/mq/health", "", "", {{"X-Request-Id", "abc-123"}});
    CHECK(r.headers["x-request-id"] == "abc-123");
    auto odd =
        api.call("GET", "/api/v1/mq/health", "", "", {{"X-Request-Id", "bad id with spaces"}});
    CHECK(odd.headers["x-request-id"] != "bad id with spaces");
    CHECK(odd.headers["x-request-id"].size() == 36);
}

TEST_CASE("api_sigterm_exits_zero_and_stops_listening", "[api]") {
    ApiProcess api;
    REQUIRE(api.call("GET", "/api/v1/mq/health").status == 200);
    CHECK(api.terminate() == 0);
    CHECK(api.call("GET", "/api/v1/mq/health").status == 0);
}
