// mq-api against backends that go away and come back: a private redis-server killed and
// restarted under a running API, a private PostgreSQL stopped and restarted, a Redis that
// is not there at start; and SIGTERM while a long-poll pull waits.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"
#include "private_services.hpp"

using namespace mqtest;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

HttpResult publish(const ApiProcess& api, const std::string& token, const std::string& queue) {
    return api.call_json("POST", "/api/v1/mq/publish",
                         {{"queue", queue}, {"payload", {{"hello", "world"}}}}, token);
}

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

TEST_CASE("api_redis_down_answers_503_quickly_and_recovers_without_restart", "[api]") {
    PrivateRedis redis;
    TenantScope t;
    auto token = create_token(t.tenant(), "tenant-admin", "ops");
    ApiOptions options;
    options.redis_url = redis.url();
    ApiProcess api(options);
    REQUIRE(api.call_json("POST", "/api/v1/mq/queues", {{"name", "orders"}}, token).status == 201);
    REQUIRE(publish(api, token, "orders").status == 201);

    redis.stop();
    auto t0 = Clock::now();
    auto down = publish(api, token, "orders");
    auto took = seconds_since(t0);
    INFO(down.body);
    CHECK(down.status == 503);
    CHECK(down.error_code() == "MQ_BACKEND_UNAVAILABLE");
    CHECK(took < 3.0);
    CHECK(down.body.find("orders:0") == std::string::npos);  // no Redis keys in the body

    t0 = Clock::now();
    auto health = api.call("GET", "/api/v1/mq/health");
    CHECK(seconds_since(t0) < 3.0);
    CHECK(health.status == 503);
    CHECK(health.json()["status"] == "down");
    CHECK(health.json()["checks"]["redis"]["status"] == "down");
    CHECK(health.json()["checks"]["postgres"]["status"] == "ok");

    redis.start();
    auto until = Clock::now() + 10s;
    HttpResult again;
    while (Clock::now() < until) {
        again = publish(api, token, "orders");
        if (again.status == 201) break;
        std::this_thread::sleep_for(200ms);
    }
    INFO(again.body << "\n" << api.log());
    CHECK(again.status == 201);
    CHECK(api.call("GET", "/api/v1/mq/health").status == 200);
    CHECK(api.running());
}

TEST_CASE("api_postgres_down_keeps_publishing_from_cache_and_refuses_queue_changes", "[api]") {
    PrivateServices svc;
    const std::map<std::string, std::string> env{{"REDIS_URL", svc.redis_url()},
                                                 {"DATABASE_URL", svc.database_url()}};
    auto tenant = unique_name("pgdown");
    auto token = migrated_tenant_admin_token(env, tenant);

    ApiOptions options;
    options.redis_url = svc.redis_url();
    options.database_url = svc.database_url();
    ApiProcess api(options);
    REQUIRE(api.call_json("POST", "/api/v1/mq/queues", {{"name", "orders"}}, token).status == 201);
    REQUIRE(publish(api, token, "orders").status == 201);

    svc.stop_postgres();
    auto t0 = Clock::now();
    auto cached = publish(api, token, "orders");
    INFO(cached.body);
    CHECK(cached.status == 201);
    CHECK(seconds_since(t0) < 3.0);

    t0 = Clock::now();
    auto refused = api.call_json("POST", "/api/v1/mq/queues", {{"name", "later"}}, token);
    INFO(refused.body);
    CHECK(refused.status == 503);
    CHECK(refused.error_code() == "MQ_BACKEND_UNAVAILABLE");
    CHECK(seconds_since(t0) < 5.0);
    CHECK(refused.body.find("postgresql://") == std::string::npos);

    // Publishing works, so the instance stays in service: 200 "degraded", and ready.
    auto health = api.call("GET", "/api/v1/mq/health");
    CHECK(health.status == 200);
    CHECK(health.json()["status"] == "degraded");
    CHECK(health.json()["checks"]["postgres"]["status"] == "down");
    CHECK(api.call("GET", "/readyz").status == 200);
    CHECK(health.json()["checks"]["redis"]["status"] == "ok");

    svc.start_postgres();
    auto until = Clock::now() + 15s;
    HttpResult created;
    while (Clock::now() < until) {
        created = api.call_json("POST", "/api/v1/mq/queues", {{"name", "later"}}, token);
        if (created.status != 503) break;
        std::this_thread::sleep_for(300ms);
    }
    INFO(created.body << "\n" << api.log());
    CHECK(created.status == 201);
    CHECK(publish(api, token, "later").status == 201);
    CHECK(api.call("GET", "/api/v1/mq/health").status == 200);
}

TEST_CASE("api_start_with_redis_unreachable_exits_5_with_a_clear_message", "[api]") {
    ApiOptions options;
    options.redis_url = "redis://127.0.0.1:" + std::to_string(dead_port()) + "/0";
    options.wait_ready = false;
    ApiProcess api(options);
    auto until = Clock::now() + 20s;
    while (api.running() && Clock::now() < until) std::this_thread::sleep_for(50ms);
    REQUIRE_FALSE(api.running());
    INFO(api.log());
    CHECK(api.terminate() == 5);
    auto log = api.log();
    CHECK(log.find("mq-api:") != std::string::npos);
    CHECK((log.find("redis") != std::string::npos || log.find("Redis") != std::string::npos));
    CHECK(log.find("127.0.0.1") != std::string::npos);
}

TEST_CASE("api_sigterm_answers_a_waiting_long_poll_and_exits_zero", "[api]") {
    TenantScope t;
    auto token = create_token(t.tenant(), "tenant-admin", "ops");
    ApiProcess api;
    REQUIRE(api.call_json("POST", "/api/v1/mq/queues", {{"name", "jobs"}}, token).status == 201);
    auto sub = api.call_json("POST", "/api/v1/mq/subscriptions", {{"queue", "jobs"}, {"name", "w"}},
                             token);
    REQUIRE(sub.status == 201);
    auto id = sub.json()["id"].get<std::string>();

    auto pull = std::async(std::launch::async, [&] {
        return api.call_json("POST", "/api/v1/mq/subscriptions/" + id + "/pull",
                             {{"wait_ms", 3000}}, token);
    });
    std::this_thread::sleep_for(400ms);  // the pull is waiting inside mq-api now
    REQUIRE(pull.wait_for(0ms) == std::future_status::timeout);

    auto t0 = Clock::now();
    int status = api.terminate(10s);
    auto took = seconds_since(t0);
    INFO(api.log());
    CHECK(status == 0);
    CHECK(took < 5.0);
    auto answered = pull.get();
    INFO(answered.body);
    CHECK(answered.status == 200);
    CHECK(answered.json()["messages"].is_array());
    CHECK(api.call("GET", "/api/v1/mq/health").status == 0);
}

TEST_CASE("api_queue_figures_with_redis_down_answer_503_and_status_and_prometheus_still_serve",
          "[api][inspector]") {
    PrivateRedis redis;
    TenantScope t;
    auto token = create_token(t.tenant(), "tenant-admin", "ops");
    ApiOptions options;
    options.redis_url = redis.url();
    ApiProcess api(options);
    REQUIRE(api.call_json("POST", "/api/v1/mq/queues", {{"name", "orders"}}, token).status == 201);
    REQUIRE(publish(api, token, "orders").status == 201);
    auto sub = api.call_json("POST", "/api/v1/mq/subscriptions",
                             {{"queue", "orders"}, {"name", "reader"}}, token);
    INFO(sub.body);
    REQUIRE(sub.status == 201);
    REQUIRE(api.call("GET", "/api/v1/mq/metrics/topics", "", token).status == 200);

    redis.stop();
    for (const char* path : {"/api/v1/mq/metrics", "/api/v1/mq/metrics/topics",
                             "/api/v1/mq/metrics/consumers", "/api/v1/mq/queues/orders"}) {
        auto t0 = Clock::now();
        auto r = api.call("GET", path, "", token);
        INFO(path << ": " << r.body);
        CHECK(r.status == 503);
        CHECK(r.error_code() == "MQ_BACKEND_UNAVAILABLE");
        CHECK(seconds_since(t0) < 5.0);
    }
    auto status = api.call("GET", "/api/v1/mq/status", "", token);
    INFO(status.body);
    REQUIRE(status.status == 200);
    CHECK(status.json()["redis"]["status"] == "down");
    CHECK(status.json()["totals"].is_null());
    auto prom = api.scrape();
    REQUIRE(prom.status == 200);
    CHECK(prom.body.find("mq_messages_total{") != std::string::npos);
    CHECK(prom.body.find("mq_queue_backlog{") == std::string::npos);

    // Restarted empty (no persistence): the figures come back without an API restart.
    redis.start();
    auto until = Clock::now() + 10s;
    HttpResult again;
    while (Clock::now() < until) {
        again = api.call("GET", "/api/v1/mq/metrics/topics", "", token);
        if (again.status == 200) break;
        std::this_thread::sleep_for(200ms);
    }
    INFO(again.body);
    REQUIRE(again.status == 200);
    CHECK(again.json()["topics"][0]["messages"] == 0);
    CHECK(again.json()["topics"][0]["backlog"] == 0);
    CHECK(api.call("GET", "/api/v1/mq/status", "", token).json()["totals"]["backlog"] == 0);
}
