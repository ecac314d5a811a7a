// Monitoring over HTTP: tenant-scoped JSON metrics (and scope=all for admins only), per
// queue and per consumer rows, status, health, Prometheus text whose values move, the
// METRICS_ENABLED switch and the served OpenAPI document.
#include <catch2/catch.hpp>
#include <fstream>
#include <optional>
#include <sstream>

#include "api_process.hpp"
#include "harness.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

// The value of one Prometheus series written exactly as `series` (name{labels}).
std::optional<double> series_value(const std::string& text, const std::string& series) {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line))
        if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    return std::nullopt;
}

const json* find_by(const json& list, const char* field, const std::string& value) {
    for (const auto& row : list)
        if (row.value(field, std::string()) == value) return &row;
    return nullptr;
}

}  // namespace

TEST_CASE("api_metrics_count_only_the_callers_tenant_and_scope_all_is_for_admins", "[api]") {
    TenantScope a, b;
    ApiProcess api;
    auto token_a = create_token(a.tenant(), "tenant-admin", "ops-a");
    auto token_b = create_token(b.tenant(), "tenant-admin", "ops-b");
    api_create_queue(api, token_a, "orders");
    api_create_queue(api, token_b, "orders");
    api_publish_n(api, token_a, "orders", 3);
    api_publish_n(api, token_b, "orders", 1);

    auto ma = api.call("GET", "/api/v1/mq/metrics", "", token_a);
    REQUIRE(ma.status == 200);
    auto ja = ma.json();
    CHECK(ja["tenant"] == a.tenant());
    CHECK(ja["queues"] == 1);
    CHECK(ja["messages"] == 3);
    CHECK(ja["published_total"] == 3);

    auto jb = api.call("GET", "/api/v1/mq/metrics", "", token_b).json();
    CHECK(jb["tenant"] == b.tenant());
    CHECK(jb["messages"] == 1);
    CHECK(jb["published_total"] == 1);

    auto denied = api.call("GET", "/api/v1/mq/metrics?scope=all", "", token_a);
    CHECK(denied.status == 403);
    CHECK(denied.error_code() == "MQ_FORBIDDEN");
    auto bad_scope = api.call("GET", "/api/v1/mq/metrics?scope=everything", "", token_a);
    CHECK(bad_scope.status == 400);

    auto admin = create_token(a.tenant(), "admin", "root");
    auto all = api.call("GET", "/api/v1/mq/metrics?scope=all", "", admin);
    REQUIRE(all.status == 200);
    auto jall = all.json();
    CHECK(jall["tenants"].get<int>() >= 2);
    CHECK(jall["messages"].get<std::int64_t>() >= 4);
    CHECK(jall["published_total"].get<std::int64_t>() >= 4);
}

TEST_CASE("api_metrics_topics_and_consumers_show_backlog_and_pending_pulls", "[api]") {
    TenantScope t;
    ApiProcess api;
    auto token = create_token(t.tenant(), "tenant-admin", "ops");
    api_create_queue(api, token, "busy");
    api_create_queue(api, token, "idle");
    auto sub_id = api_subscribe(api, token, "busy", "reader");
    api_publish_n(api, token, "busy", 2);

    auto topics = api.call("GET", "/api/v1/mq/metrics/topics", "", token);
    REQUIRE(topics.status == 200);
    auto list = topics.json()["topics"];
    CHECK(list.size() == 2);
    const auto* busy = find_by(list, "name", "busy");
    const auto* idle = find_by(list, "name", "idle");
    REQUIRE(busy);
    REQUIRE(idle);
    CHECK((*busy)["messages"] == 2);
    CHECK((*busy)["lag"] == 2);
    CHECK((*busy)["pending"] == 0);
    CHECK((*busy)["subscriptions"] == 1);
    CHECK((*idle)["messages"] == 0);

    auto pulled = api.call_json("POST", "/api/v1/mq/subscriptions/" + sub_id + "/pull",
                                {{"max_messages", 1}}, token);
    INFO(pulled.body);
    REQUIRE(pulled.status == 200);
    REQUIRE(pulled.json()["messages"].size() == 1);

    auto consumers = api.call("GET", "/api/v1/mq/metrics/consumers", "", token);
    REQUIRE(consumers.status == 200);
    INFO(consumers.body);
    auto rows = consumers.json()["consumers"];
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["subscription"] == "reader");
    CHECK(rows[0]["queue"] == "busy");
    CHECK(rows[0]["id"] == sub_id);
    CHECK(rows[0]["pending"] == 1);
    CHECK(rows[0]["lag"] == 1);
    const auto* consumer = find_by(rows[0]["consumers"], "name", "pull:ops");
    REQUIRE(consumer);
    CHECK((*consumer)["pending"] == 1);

    auto after = api.call("GET", "/api/v1/mq/metrics/topics", "", token).json()["topics"];
    const auto* busy_after = find_by(after, "name", "busy");
    REQUIRE(busy_after);
    CHECK((*busy_after)["pending"] == 1);
    CHECK((*busy_after)["lag"] == 1);
}

TEST_CASE("api_status_reports_redis_and_process_and_health_is_ok", "[api]") {
    TenantScope t;
    ApiProcess api;
    auto token = create_token(t.tenant(), "consumer", "reader");
    auto r = api.call("GET", "/api/v1/mq/status", "", token);
    INFO(r.body);
    REQUIRE(r.status == 200);
    auto j = r.json();
    CHECK(j["redis"]["status"] == "ok");
    CHECK_FALSE(j["redis"]["version"].get<std::string>().empty());
    CHECK(j["redis"]["maxmemory_policy"] == "noeviction");
    // Every master: three on the test cluster (label cluster), else the one server.
    const bool cluster = mqtest::services().redis_url.find("+cluster") != std::string::npos;
    CHECK(j["redis"]["nodes"] == (cluster ? 3 : 1));
    CHECK(j["redis"]["connected_clients"].get<std::int64_t>() >= (cluster ? 3 : 1));
    CHECK(j["redis"]["used_memory_bytes"].get<std::int64_t>() > 0);
    CHECK(j["redis"]["uptime_s"].get<std::int64_t>() >= 0);
    CHECK(j["process"]["rss_bytes"].get<std::int64_t>() > 0);
    CHECK(j["process"]["threads"].get<int>() > 1);
    CHECK(j["queues"] == 0);
    CHECK(api.call("GET", "/api/v1/mq/status").status == 401);

    auto h = api.call("GET", "/api/v1/mq/health");
    CHECK(h.status == 200);
    CHECK(h.json()["status"] == "ok");
    // No token: no figure of any tenant (queues, subscriptions) and no configured limit.
    auto checks = h.json()["checks"];
    CHECK_FALSE(checks.contains("queues"));
    CHECK_FALSE(checks.contains("consumers"));
    CHECK_FALSE(checks["memory"].contains("limit_bytes"));
    for (const char* name : {"redis", "redis_stream", "postgres", "config_cache", "memory"})
        CHECK(checks.contains(name));
}

TEST_CASE("api_prometheus_metrics_have_the_families_and_move_after_requests", "[api]") {
    TenantScope t;
    ApiProcess api;
    auto token = create_token(t.tenant(), "tenant-admin", "ops");
    api_create_queue(api, token, "jobs");
    auto sub_id = api_subscribe(api, token, "jobs", "w");

    auto before = api.scrape();
    REQUIRE(before.status == 200);
    CHECK(before.headers["content-type"].rfind("text/plain", 0) == 0);
    for (const char* family : {"mq_messages_total", "mq_message_latency_seconds", "mq_queue_size",
                               "mq_http_request_duration_seconds"})
        CHECK(before.body.find(std::string("# TYPE ") + family + " ") != std::string::npos);

    const std::string published =
        "mq_messages_total{tenant=\"" + t.tenant() + "\",outcome=\"published\"}";
    const std::string stream =
        "mq_queue_size{tenant=\"" + t.tenant() + "\",queue=\"jobs\",state=\"stream\"}";
    const std::string publish_count =
        "mq_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/mq/publish\"}";
    CHECK(series_value(before.body, published).value_or(0) == 0);
    CHECK(series_value(before.body, stream) == 0.0);
    CHECK_FALSE(series_value(before.body, publish_count).has_value());
    auto latency_before = series_value(before.body, "mq_message_latency_seconds_count");
    REQUIRE(latency_before.has_value());

    api_publish_n(api, token, "jobs", 2);
    auto pulled = api.call_json("POST", "/api/v1/mq/subscriptions/" + sub_id + "/pull",
                                {{"max_messages", 2}}, token);
    REQUIRE(pulled.status == 200);
    CHECK(pulled.json()["messages"].size() == 2);

    auto after = api.scrape();
    REQUIRE(after.status == 200);
    CHECK(series_value(after.body, published) == 2.0);
    // Both entries were pulled: none waits in the stream, both are pending (counted once).
    CHECK(series_value(after.body, stream) == 0.0);
    CHECK(series_value(after.body, publish_count) == 2.0);
    CHECK(series_value(after.body, "mq_message_latency_seconds_count") == *latency_before + 2);
    const std::string pending =
        "mq_queue_size{tenant=\"" + t.tenant() + "\",queue=\"jobs\",state=\"pending\"}";
    CHECK(series_value(after.body, pending) == 2.0);
}

TEST_CASE("api_queue_figures_agree_across_json_metrics_status_and_prometheus", "[api][inspector]") {
    TenantScope t;
    ApiProcess api;
    auto token = create_token(t.tenant(), "tenant-admin", "ops");
    api_create_queue(api, token, "jobs");
    auto fast = api_subscribe(api, token, "jobs", "fast");
    auto slow = api_subscribe(api, token, "jobs", "slow");
    api_publish_n(api, token, "jobs", 5);
    auto delayed =
        api.call_json("POST", "/api/v1/mq/publish/delayed",
                      {{"queue", "jobs"}, {"payload", "later"}, {"delay_ms", 3600000}}, token);
    INFO(delayed.body);
    REQUIRE(delayed.status == 201);
    // "fast" takes 3 (held pending) of 5; "slow" takes nothing.
    auto pulled = api.call_json("POST", "/api/v1/mq/subscriptions/" + fast + "/pull",
                                {{"max_messages", 3}}, token);
    REQUIRE(pulled.status == 200);
    REQUIRE(pulled.json()["messages"].size() == 3);

    auto topics = api.call("GET", "/api/v1/mq/metrics/topics", "", token);
    REQUIRE(topics.status == 200);
    const json topic_list = topics.json()["topics"];
    const json* jobs = find_by(topic_list, "name", "jobs");
    REQUIRE(jobs);
    CHECK((*jobs)["messages"] == 5);
    CHECK((*jobs)["pending"] == 3);
    CHECK((*jobs)["lag"] == 2 + 5);
    CHECK((*jobs)["backlog"] == 5);  // the slowest subscription has all 5 to do
    CHECK((*jobs)["delayed"] == 1);
    REQUIRE((*jobs)["oldest_age_ms"].is_number_integer());
    REQUIRE((*jobs)["oldest_pending_age_ms"].is_number_integer());

    auto consumers = api.call("GET", "/api/v1/mq/metrics/consumers", "", token).json()["consumers"];
    const json* f = find_by(consumers, "subscription", "fast");
    const json* s = find_by(consumers, "subscription", "slow");
    REQUIRE(f);
    REQUIRE(s);
    CHECK((*f)["backlog"] == 5);
    CHECK((*f)["pending"] == 3);
    CHECK((*f)["lag"] == 2);
    CHECK((*f)["oldest_pending_age_ms"].is_number_integer());
    CHECK((*s)["backlog"] == 5);
    CHECK((*s)["oldest_pending_age_ms"].is_null());

    auto metrics = api.call("GET", "/api/v1/mq/metrics", "", token).json();
    CHECK(metrics["backlog"] == 5);
    CHECK(metrics["pending"] == 3);
    auto status = api.call("GET", "/api/v1/mq/status", "", token);
    REQUIRE(status.status == 200);
    CHECK(status.json()["totals"]["backlog"] == 5);
    CHECK(status.json()["totals"]["messages"] == 5);
    CHECK(status.json()["totals"]["delayed"] == 1);
    auto shown = api.call("GET", "/api/v1/mq/queues/jobs", "", token);
    REQUIRE(shown.status == 200);
    CHECK(shown.json()["stats"]["backlog"] == 5);

    auto prom = api.scrape().body;
    INFO(prom);
    const std::string q = "tenant=\"" + t.tenant() + "\",queue=\"jobs\"";
    // The states are disjoint and sum to the backlog. Both subscriptions have 5 to finish;
    // the slowest is the one that has delivered least ("slow": 5 waiting, none pending).
    // Delayed entries are not backlog: mq_queue_delayed counts them.
    CHECK(series_value(prom, "mq_queue_size{" + q + ",state=\"stream\"}") == 5.0);
    CHECK(series_value(prom, "mq_queue_size{" + q + ",state=\"pending\"}") == 0.0);
    CHECK_FALSE(series_value(prom, "mq_queue_size{" + q + ",state=\"delayed\"}"));
    CHECK(series_value(prom, "mq_queue_delayed{" + q + "}") == 1.0);
    CHECK(series_value(prom, "mq_queue_backlog{" + q + "}") == 5.0);
    CHECK(series_value(prom, "mq_queue_stream_entries{" + q + "}") == 5.0);
    CHECK(series_value(prom, "mq_subscription_backlog{" + q + ",subscription=\"fast\"}") == 5.0);
    CHECK(series_value(prom, "mq_subscription_pending{" + q + ",subscription=\"fast\"}") == 3.0);
    CHECK(series_value(prom, "mq_subscription_lag{" + q + ",subscription=\"fast\"}") == 2.0);
    CHECK(series_value(prom, "mq_subscription_lag{" + q + ",subscription=\"slow\"}") == 5.0);
    CHECK(series_value(prom, "mq_subscription_oldest_pending_age_seconds{" + q +
                                 ",subscription=\"fast\"}") >= 0.0);
    CHECK_FALSE(series_value(
        prom, "mq_subscription_oldest_pending_age_seconds{" + q + ",subscription=\"slow\"}"));
    CHECK(series_value(prom, "mq_queue_oldest_entry_age_seconds{" + q + "}") >= 0.0);
    for (const char* family :
         {"mq_queue_backlog", "mq_subscription_backlog", "mq_subscription_lag",
          "mq_subscription_pending", "mq_subscription_oldest_pending_age_seconds"})
        CHECK(prom.find(std::string("# TYPE ") + family + " gauge") != std::string::npos);

    // "slow" catches up: now "fast" is the slowest, with 3 pending and 2 waiting.
    auto got = api.call_json("POST", "/api/v1/mq/subscriptions/" + slow + "/pull",
                             {{"max_messages", 5}}, token);
    INFO(got.body);
    REQUIRE(got.status == 200);
    const json got_body = got.json();
    json receipts = json::array();
    for (const auto& m : got_body["messages"]) receipts.push_back(m["receipt"]);
    REQUIRE(receipts.size() == 5);
    auto acked = api.call_json("POST", "/api/v1/mq/subscriptions/" + slow + "/ack",
                               {{"receipts", receipts}}, token);
    INFO(acked.body);
    REQUIRE(acked.status == 200);
    prom = api.scrape().body;
    CHECK(series_value(prom, "mq_queue_size{" + q + ",state=\"stream\"}") == 2.0);
    CHECK(series_value(prom, "mq_queue_size{" + q + ",state=\"pending\"}") == 3.0);
    CHECK(series_value(prom, "mq_queue_backlog{" + q + "}") == 5.0);
    CHECK(series_value(prom, "mq_subscription_backlog{" + q + ",subscription=\"slow\"}") == 0.0);
}

TEST_CASE("api_metrics_disabled_answers_404_on_the_prometheus_route", "[api]") {
    ApiOptions options;
    options.env["METRICS_ENABLED"] = "false";
    ApiProcess api(options);
    auto r = api.scrape();
    CHECK(r.status == 404);
    CHECK(r.body.find("mq_messages_total") == std::string::npos);
    CHECK(api.call("GET", "/api/v1/mq/health").status == 200);
}

TEST_CASE("api_serves_the_openapi_document_of_the_source_tree", "[api]") {
    ApiProcess api;
    auto r = api.call("GET", "/api/v1/mq/openapi.json");
    REQUIRE(r.status == 200);
    CHECK(r.headers["content-type"].find("json") != std::string::npos);
    std::ifstream in(std::string(MQ_SOURCE_DIR) + "/schemas/openapi.json");
    REQUIRE(in.good());
    auto expected = json::parse(in);
    auto served = r.json();
    REQUIRE(served.is_object());
    CHECK(served == expected);
    CHECK(served["paths"].contains("/api/v1/mq/publish"));
}
