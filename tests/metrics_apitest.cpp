// mq-api's Prometheus endpoint as a scraper sees it: promtool accepts the exposition without
// a lint complaint, the per-subscription lag, pending and oldest-unacked age match what was
// published, pulled and acked, mq_queue_size sums to the backlog (nothing counted twice),
// mq_build_info and the process families are there, and a Redis outage shows as
// mq_backend_up 0 in an exposition promtool still accepts.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"
#include "mq/core/version.hpp"
#include "private_services.hpp"
#include "prometheus_text.hpp"

using namespace mqtest;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// Pulls `n` messages of a subscription; returns their receipts.
json pull(const ApiProcess& api, const std::string& token, const std::string& sub, int n) {
    auto r = api.call_json("POST", "/api/v1/mq/subscriptions/" + sub + "/pull",
                           {{"max_messages", n}}, token);
    INFO(r.body);
    REQUIRE(r.status == 200);
    const json answer = r.json();
    json receipts = json::array();
    for (const auto& m : answer["messages"]) receipts.push_back(m["receipt"]);
    REQUIRE(receipts.size() == static_cast<std::size_t>(n));
    return receipts;
}

std::string scrape_checked(const ApiProcess& api) {
    auto r = api.scrape();
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(r.headers["content-type"].rfind("text/plain; version=0.0.4", 0) == 0);
    auto lint = promtool_check_metrics(r.body);
    INFO("promtool: " << lint.output);
    CHECK(lint.exit_code == 0);
    CHECK(lint.output.empty());  // no lint complaint either
    return r.body;
}

}  // namespace

TEST_CASE("api_metrics_pass_promtool_and_report_lag_pending_and_oldest_unacked_age",
          "[api][metrics]") {
    TenantScope t;
    ApiProcess api;
    auto token = create_token(t.tenant(), "tenant-admin", "ops");
    api_create_queue(api, token, "jobs");
    auto reader = api_subscribe(api, token, "jobs", "reader");
    api_subscribe(api, token, "jobs", "idle");
    api_publish_n(api, token, "jobs", 6);
    // "reader" takes 3 and acks 1: 2 unacked, 3 undelivered. "idle" takes nothing.
    auto receipts = pull(api, token, reader, 3);
    auto acked = api.call_json("POST", "/api/v1/mq/subscriptions/" + reader + "/ack",
                               {{"receipts", json::array({receipts[0]})}}, token);
    INFO(acked.body);
    REQUIRE(acked.status == 200);

    const std::string body = scrape_checked(api);
    INFO(body);
    auto sub = [&](const std::string& name) {
        return std::map<std::string, std::string>{
            {"tenant", t.tenant()}, {"queue", "jobs"}, {"subscription", name}};
    };
    CHECK(sample(body, "mq_subscription_lag", sub("reader")) == 3.0);
    CHECK(sample(body, "mq_subscription_pending", sub("reader")) == 2.0);
    CHECK(sample(body, "mq_subscription_backlog", sub("reader")) == 5.0);
    CHECK(sample(body, "mq_subscription_lag", sub("idle")) == 6.0);
    CHECK(sample(body, "mq_subscription_pending", sub("idle")) == 0.0);
    // Nothing pending for "idle": no oldest-unacked age.
    CHECK_FALSE(sample(body, "mq_subscription_oldest_pending_age_seconds", sub("idle")));
    auto age = sample(body, "mq_subscription_oldest_pending_age_seconds", sub("reader"));
    REQUIRE(age.has_value());
    CHECK(*age >= 0.0);
    CHECK(*age < 60.0);
    for (const char* family : {"mq_subscription_lag", "mq_subscription_pending",
                               "mq_subscription_oldest_pending_age_seconds"})
        CHECK(has_family(body, family, "gauge"));

    // The oldest unacked entry keeps its publish time: its age grows between scrapes.
    std::this_thread::sleep_for(1200ms);
    const std::string later = scrape_checked(api);
    auto older = sample(later, "mq_subscription_oldest_pending_age_seconds", sub("reader"));
    REQUIRE(older.has_value());
    CHECK(*older >= *age + 1.0);
    CHECK(sample(later, "mq_subscription_pending", sub("reader")) == 2.0);
}

TEST_CASE("api_mq_queue_size_sums_to_the_backlog_and_counts_no_entry_twice", "[api][metrics]") {
    TenantScope t;
    ApiProcess api;
    auto token = create_token(t.tenant(), "tenant-admin", "ops");
    api_create_queue(api, token, "solo");
    auto reader = api_subscribe(api, token, "solo", "reader");
    api_publish_n(api, token, "solo", 6);
    auto receipts = pull(api, token, reader, 3);
    auto acked = api.call_json("POST", "/api/v1/mq/subscriptions/" + reader + "/ack",
                               {{"receipts", json::array({receipts[0]})}}, token);
    REQUIRE(acked.status == 200);
    auto delayed =
        api.call_json("POST", "/api/v1/mq/publish/delayed",
                      {{"queue", "solo"}, {"payload", "later"}, {"delay_ms", 3600000}}, token);
    REQUIRE(delayed.status == 201);

    const std::string body = scrape_checked(api);
    INFO(body);
    const std::map<std::string, std::string> q = {{"tenant", t.tenant()}, {"queue", "solo"}};
    auto state = [&](const char* s) {
        auto l = q;
        l["state"] = s;
        return sample(body, "mq_queue_size", l);
    };
    // 6 in the stream (nothing trimmed yet), 1 finished, 2 unacked, 3 undelivered, 1 delayed.
    CHECK(sample(body, "mq_queue_stream_entries", q) == 6.0);
    CHECK(state("stream") == 3.0);
    CHECK(state("pending") == 2.0);
    CHECK_FALSE(state("delayed"));  // delayed entries are not backlog: a gauge of their own
    CHECK(sample(body, "mq_queue_backlog", q) == 5.0);
    CHECK(state("stream").value_or(0) + state("pending").value_or(0) ==
          sample(body, "mq_queue_backlog", q));
    CHECK(sample(body, "mq_queue_delayed", q) == 1.0);
    CHECK(sample(body, "mq_queue_dead_letters", q) == 0.0);
}

TEST_CASE("api_metrics_carry_build_info_process_figures_and_backends_up", "[api][metrics]") {
    TenantScope t;
    ApiProcess api;
    const std::string body = scrape_checked(api);
    INFO(body);
    CHECK(has_family(body, "mq_build_info", "gauge"));
    CHECK(sample(body, "mq_build_info", {{"version", mq::kVersion}}) == 1.0);
    CHECK(sample(body, "mq_backend_up", {{"backend", "redis"}}) == 1.0);
    CHECK(sample(body, "mq_backend_up", {{"backend", "postgres"}}) == 1.0);
    CHECK(has_family(body, "process_cpu_seconds_total", "counter"));
    CHECK(sample(body, "process_cpu_seconds_total").value_or(-1) >= 0.0);
    CHECK(sample(body, "process_resident_memory_bytes").value_or(0) > 1e6);
    CHECK(sample(body, "process_open_fds").value_or(0) >= 3.0);
    CHECK(sample(body, "process_max_fds").value_or(0) >= sample(body, "process_open_fds"));
    const double now_s =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto started = sample(body, "process_start_time_seconds").value_or(0);
    CHECK(started > now_s - 600);
    CHECK(started <= now_s + 1);
    CHECK(sample(body, "process_threads").value_or(0) >= 2.0);
    // The HTTP histogram keeps its buckets cumulative up to +Inf = count.
    const std::map<std::string, std::string> route = {{"method", "GET"}, {"route", "/metrics"}};
    auto second = api.scrape().body;
    auto count = sample(second, "mq_http_request_duration_seconds_count", route);
    REQUIRE(count.has_value());
    CHECK(*count >= 1.0);
    auto inf = route;
    inf["le"] = "+Inf";
    CHECK(sample(second, "mq_http_request_duration_seconds_bucket", inf) == count);
}

TEST_CASE("api_metrics_with_redis_down_still_pass_promtool_and_say_redis_is_down",
          "[api][metrics]") {
    PrivateRedis redis;
    TenantScope t;
    auto token = create_token(t.tenant(), "tenant-admin", "ops");
    ApiOptions options;
    options.redis_url = redis.url();
    ApiProcess api(options);
    api_create_queue(api, token, "orders");
    api_subscribe(api, token, "orders", "reader");
    api_publish_n(api, token, "orders", 2);
    auto before = scrape_checked(api);
    CHECK(sample(before, "mq_backend_up", {{"backend", "redis"}}) == 1.0);
    CHECK(sample(before, "mq_subscription_lag",
                 {{"tenant", t.tenant()}, {"queue", "orders"}, {"subscription", "reader"}}) == 2.0);

    redis.stop();
    const std::string body = scrape_checked(api);
    INFO(body);
    CHECK(sample(body, "mq_backend_up", {{"backend", "redis"}}) == 0.0);
    CHECK(sample(body, "mq_backend_up", {{"backend", "postgres"}}) == 1.0);
    CHECK(sample(body, "mq_queue_figures_up") == 0.0);
    CHECK(body.find("mq_subscription_lag{") == std::string::npos);
    CHECK(sample(body, "mq_build_info", {{"version", mq::kVersion}}) == 1.0);
}
