// LOG_FORMAT=json on the real daemons: every line mq-api and mq-worker write parses as one
// JSON object with time, level, service and message, whatever the request paths, tokens and
// webhook answers held; request lines carry request_id (and the access-log columns), the
// worker's failure lines tenant, queue, subscription and message_id.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "api_process.hpp"
#include "child_process.hpp"
#include "eventually.hpp"
#include "harness.hpp"
#include "http_sink.hpp"
#include "mq/consume/dead_letters.hpp"
#include "mq/core/keys.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/redis/client.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using mqtest::eventually;
using nlohmann::json;

namespace {

// Every line of `log` as JSON; a line that does not parse, or lacks one of the four fixed
// fields, fails the test (naming the line).
std::vector<json> parse_log(const std::string& log, const std::string& service) {
    std::vector<json> out;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
        INFO("log line: " << line);
        json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
        REQUIRE_FALSE(j.is_discarded());
        REQUIRE(j.is_object());
        CHECK(j["time"].is_string());
        CHECK(j["level"].is_string());
        CHECK(j["service"] == service);
        CHECK(j["message"].is_string());
        out.push_back(std::move(j));
    }
    return out;
}

// Access-log lines (they carry "status") whose field `key` is `value`.
std::vector<json> access_lines(const std::vector<json>& lines, const std::string& key,
                               const json& value) {
    std::vector<json> out;
    for (const auto& j : lines)
        if (j.contains("status") && j.contains(key) && j[key] == value) out.push_back(j);
    return out;
}

}  // namespace

TEST_CASE("mq_api_json_log_lines_parse_whatever_paths_tokens_and_errors_hold", "[logging]") {
    mqtest::ApiSession s(mqtest::ApiOptions{{}, {}, {}, {{"LOG_FORMAT", "json"}}});
    auto& api = s.api;

    // A quote in a path that matches a route, with a bad token: 401.
    auto quoted = api.call("GET", "/api/v1/mq/queues/a\"b", "", "not\"a-token",
                           {{"X-Request-Id", "req-quote-1"}});
    CHECK(quoted.status == 401);
    // Quotes, a backslash and invalid UTF-8 in a path no route matches: 404.
    auto unknown = api.call("GET", "/no/\"such\"\\path/\xff\xfe/\xc0\xaf", "", "",
                            {{"X-Request-Id", "req-bad-utf8"}});
    CHECK(unknown.status == 404);
    // Control bytes in the target: refused by the HTTP parser (or answered); mq-api lives on.
    mqtest::http_request(api.port(), "GET", "/x\x01\x1b[31m\"", "", {});
    // A good request: the access line names the tenant.
    auto ok = api.call("GET", "/api/v1/mq/queues", "", s.token, {{"X-Request-Id", "req-ok-1"}});
    CHECK(ok.status == 200);
    // A backend failure: the reason is logged (at error) under the request id. The queue's
    // stream replaced by a string makes every stream command fail (WRONGTYPE).
    REQUIRE(api.call_json("POST", "/api/v1/mq/queues", {{"name", "q"}}, s.token).status == 201);
    mq::redis::Connection c(mq::redis::parse_url(mqtest::services().redis_url));
    auto key = mq::KeyLayout(api.key_prefix()).stream(s.tenant.tenant(), "q", 0);
    c.command({"DEL", key});
    c.command({"SET", key, "not a stream"});
    auto failed = api.call_json("POST", "/api/v1/mq/publish", {{"queue", "q"}, {"payload", 1}},
                                s.token, {{"X-Request-Id", "req-fail-1"}});
    CHECK(failed.status >= 500);
    c.command({"DEL", key});

    REQUIRE(eventually([&] { return api.log().find("req-fail-1") != std::string::npos; }, 5s));
    CHECK(api.terminate() == 0);
    auto log = api.log();
    INFO(log);
    auto lines = parse_log(log, "mq-api");
    REQUIRE(lines.size() >= 6);

    auto q = access_lines(lines, "request_id", "req-quote-1");
    REQUIRE(q.size() == 1);
    CHECK(q[0]["status"] == 401);
    CHECK(q[0]["method"] == "GET");
    CHECK(q[0]["path"] == "/api/v1/mq/queues/a\"b");
    CHECK(q[0]["route"] == "/api/v1/mq/queues/{name}");
    CHECK(q[0]["duration_ms"].is_number());
    CHECK(q[0]["level"] == "info");
    CHECK_FALSE(q[0].contains("tenant"));  // not authenticated

    auto u = access_lines(lines, "request_id", "req-bad-utf8");
    REQUIRE(u.size() == 1);
    CHECK(u[0]["status"] == 404);
    CHECK_THAT(u[0]["path"].get<std::string>(), Contains("\"such\"\\path/\xef\xbf\xbd"));

    auto good = access_lines(lines, "request_id", "req-ok-1");
    REQUIRE(good.size() == 1);
    CHECK(good[0]["status"] == 200);
    CHECK(good[0]["tenant"] == s.tenant.tenant());

    // Every access line has its request id; request ids mq-api made up are UUIDs.
    for (const auto& j : lines)
        if (j.contains("status")) CHECK(j["request_id"].is_string());

    bool error_logged = false;
    for (const auto& j : lines)
        if (j["level"] == "error" && j.value("request_id", "") == "req-fail-1" &&
            !j.contains("status")) {
            error_logged = true;
            CHECK_THAT(j["message"].get<std::string>(), Contains("WRONGTYPE"));
        }
    CHECK(error_logged);
    CHECK(access_lines(lines, "request_id", "req-fail-1").size() == 1);
}

TEST_CASE("mq_api_json_log_ends_with_a_json_line_when_it_cannot_start", "[logging]") {
    mqtest::ApiOptions options;
    options.redis_url = "redis://127.0.0.1:" + std::to_string(mqtest::dead_port()) + "/0";
    options.wait_ready = false;
    options.env = {{"LOG_FORMAT", "json"}};
    mqtest::ApiProcess api(options);
    REQUIRE(eventually([&] { return !api.running(); }, 20s));
    CHECK(api.terminate() == 5);
    auto log = api.log();
    INFO(log);
    auto lines = parse_log(log, "mq-api");
    REQUIRE_FALSE(lines.empty());
    CHECK(lines.back()["level"] == "critical");
    CHECK_THAT(lines.back()["message"].get<std::string>(), Contains("127.0.0.1"));
}

TEST_CASE("mq_worker_json_log_lines_parse_and_name_the_message_a_failing_webhook_refused",
          "[logging]") {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    mq::QueueSpec spec;
    spec.name = "jobs";
    spec.partition_count = 1;
    mq::Queue q = ts.catalog().create_queue(ts.tenant(), spec, mq::Config{});

    // The webhook fails with a body a naive log line could not hold.
    mqtest::HttpSink sink;
    mqtest::SinkResponse refusal;
    refusal.status = 500;
    refusal.body = "{\"error\": \"bad \\\"input\\\"\"}\nline two\r\n\x01\x1b[31m\xff\xfe";
    sink.set_default(refusal);

    std::string dir = "/tmp/" + mqtest::unique_name("mq-jsonlog");
    std::filesystem::create_directories(dir);
    std::string config = dir + "/worker.yaml";
    std::ofstream(config) << "tenant: " << ts.tenant() << "\nredis_key_prefix: \"" << rs.prefix()
                          << "\"\nshutdown_timeout: 5s\nsubscriptions:\n"
                          << "  - queue: jobs\n    name: hook\n    start_from: earliest\n"
                          << "    retry: {max_attempts: 2, initial_backoff: 100ms}\n"
                          << "    handler:\n      type: webhook\n      url: " << sink.url("/hook")
                          << "\n      timeout: 2s\n";
    mqtest::ChildProcess worker(
        MQ_WORKER_PATH, {"--config", config, "--metrics-port", "0"},
        mqtest::service_env({{"LOG_FORMAT", "json"}, {"LOG_LEVEL", "debug"}}));

    mq::Publisher pub(rs.redis(), rs.keys());
    std::set<std::string> ids;
    for (int i = 0; i < 2; ++i) {
        mq::PublishRequest r;
        r.payload = "job";
        ids.insert(pub.publish(q, r).message_id);
    }
    mq::DeadLetterStore dlq(rs.redis(), rs.keys());
    bool dead = eventually([&] { return dlq.count(q) == 2; }, 20s);
    worker.signal(SIGTERM);
    auto status = worker.wait_exit(15s);
    bool exited = status.has_value();
    if (!exited) worker.kill_now();
    auto log = worker.log();
    std::filesystem::remove_all(dir);
    INFO(log);
    REQUIRE(dead);
    CHECK(exited);
    CHECK(status == 0);

    auto lines = parse_log(log, "mq-worker");
    std::set<std::string> dead_lettered, failed_attempts;
    for (const auto& j : lines) {
        if (!j.contains("message_id")) continue;
        CHECK(j["tenant"] == ts.tenant());
        CHECK(j["queue"] == "jobs");
        CHECK(j["subscription"] == "hook");
        CHECK(j["attempt"].is_number_integer());
        CHECK(ids.count(j["message_id"].get<std::string>()) == 1);
        const auto message = j["message"].get<std::string>();
        CHECK_THAT(message, Contains("HTTP 500"));
        CHECK_THAT(message, Contains("bad \\\"input\\\""));  // the body's own quotes, kept
        if (j["level"] == "warning") dead_lettered.insert(j["message_id"]);
        if (j["level"] == "debug") failed_attempts.insert(j["message_id"]);
    }
    CHECK(dead_lettered == ids);    // the final failure of each message, with its fields
    CHECK(failed_attempts == ids);  // and the first attempt's (debug)
    // The runner's own lines name the subscription.
    bool start_line = false;
    for (const auto& j : lines)
        if (j["message"].get<std::string>().find("delivering with") != std::string::npos)
            start_line = j.value("subscription", "") == "hook" && j.value("queue", "") == "jobs";
    CHECK(start_line);
}
