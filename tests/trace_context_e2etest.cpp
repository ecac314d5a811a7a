// One W3C trace followed end to end (docs/wire-format.md, "Trace context"): published
// through mq-api with a traceparent header, it reaches a webhook (traceparent and
// tracestate headers), an exec handler (TRACEPARENT, TRACESTATE), the log handler's line
// and a pull, each with the publisher's trace id and a span id of its own; a message
// published without a trace hands none on.

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "api_process.hpp"
#include "child_process.hpp"
#include "eventually.hpp"
#include "harness.hpp"
#include "http_sink.hpp"
#include "mq/config/config.hpp"
#include "mq/queue/catalog.hpp"

using namespace std::chrono_literals;
using mqtest::eventually;
using nlohmann::json;

namespace {

const std::string kTrace = "0af7651916cd43dd8448eb211c80319c";
const std::string kParent = "b7ad6b7169203331";
const std::string kTraceparent = "00-" + kTrace + "-" + kParent + "-01";
const std::string kTracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

std::vector<std::string> lines_of(const std::string& path) {
    std::vector<std::string> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back(line);
    return out;
}

// The span id of a delivery's traceparent after checking it carries the published trace.
std::string span_of(const std::string& traceparent) {
    INFO("traceparent: " << traceparent);
    REQUIRE(traceparent.size() == 55);
    CHECK(traceparent.substr(0, 36) == "00-" + kTrace + "-");
    CHECK(traceparent.substr(52) == "-01");
    std::string span = traceparent.substr(36, 16);
    CHECK(span != kParent);
    CHECK(span != std::string(16, '0'));
    return span;
}

}  // namespace

TEST_CASE("one_trace_id_followed_from_publish_to_webhook_exec_log_and_pull", "[e2e][trace]") {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    mq::QueueSpec spec;
    spec.name = "traced";
    ts.catalog().create_queue(ts.tenant(), spec, mq::Config{});

    mqtest::HttpSink sink;
    std::string dir = "/tmp/" + mqtest::unique_name("mq-trace");
    std::filesystem::create_directories(dir);
    const std::string exec_out = dir + "/exec.txt", log_out = dir + "/log.jsonl";
    std::string config = dir + "/worker.yaml";
    std::ofstream(config) << "tenant: " << ts.tenant() << "\nredis_key_prefix: \"" << rs.prefix()
                          << "\"\nshutdown_timeout: 5s\nsubscriptions:\n"
                          << "  - queue: traced\n    name: hook\n    start_from: earliest\n"
                          << "    handler:\n      type: webhook\n      url: " << sink.url("/hook")
                          << "\n      timeout: 2s\n"
                          << "  - queue: traced\n    name: run\n    start_from: earliest\n"
                          << "    handler:\n      type: exec\n      command: [\"/bin/sh\", \"-c\", "
                          << "\"echo \\\"$MQ_MESSAGE_ID|$TRACEPARENT|$TRACESTATE\\\" >> "
                          << exec_out << "\"]\n"
                          << "  - queue: traced\n    name: logged\n    start_from: earliest\n"
                          << "    handler:\n      type: log\n      path: " << log_out << "\n";
    // A TRACEPARENT in the worker's own environment must not reach a handler.
    mqtest::ChildProcess worker(
        MQ_WORKER_PATH, {"--config", config, "--metrics-port", "0"},
        mqtest::service_env(
            {{"TRACEPARENT", "00-11111111111111111111111111111111-2222222222222222-01"}}));

    mqtest::ApiOptions options;
    options.key_prefix = rs.prefix();
    mqtest::ApiProcess api(options);
    auto token = mqtest::create_token(ts.tenant(), "tenant-admin", "ops");
    auto pull_sub = mqtest::api_subscribe(api, token, "traced", "puller");

    auto traced = api.call_json("POST", "/api/v1/mq/publish",
                                {{"queue", "traced"}, {"payload", {{"step", "traced"}}}}, token,
                                {{"traceparent", kTraceparent}, {"tracestate", kTracestate}});
    REQUIRE(traced.status == 201);
    const std::string traced_id = traced.json()["id"];
    auto plain = api.call_json("POST", "/api/v1/mq/publish",
                               {{"queue", "traced"}, {"payload", {{"step", "plain"}}}}, token);
    REQUIRE(plain.status == 201);
    const std::string plain_id = plain.json()["id"];

    bool delivered = eventually(
        [&] {
            return sink.request_count() >= 2 && lines_of(exec_out).size() >= 2 &&
                   lines_of(log_out).size() >= 2;
        },
        20s);
    worker.terminate(15s);
    INFO(worker.log());
    REQUIRE(delivered);
    std::set<std::string> spans;

    // Webhook: the headers.
    for (const auto& req : sink.requests()) {
        if (req.header("webhook-id") == traced_id) {
            spans.insert(span_of(req.header("traceparent")));
            CHECK(req.header("tracestate") == kTracestate);
            CHECK(req.header("X-MQ-Trace-Id") == kTrace);
        } else {
            CHECK(req.header("webhook-id") == plain_id);
            CHECK_FALSE(req.has_header("traceparent"));
            CHECK_FALSE(req.has_header("tracestate"));
        }
    }
    // Exec: the environment.
    for (const auto& line : lines_of(exec_out)) {
        INFO(line);
        auto bar = line.find('|'), bar2 = line.rfind('|');
        REQUIRE(bar != std::string::npos);
        std::string id = line.substr(0, bar), tp = line.substr(bar + 1, bar2 - bar - 1),
                    state = line.substr(bar2 + 1);
        if (id == traced_id) {
            spans.insert(span_of(tp));
            CHECK(state == kTracestate);
        } else {
            CHECK(id == plain_id);
            CHECK(tp.empty());  // not the worker's own TRACEPARENT
            CHECK(state.empty());
        }
    }
    // Log handler: the line's fields.
    for (const auto& line : lines_of(log_out)) {
        auto j = json::parse(line);
        if (j["id"] == traced_id) {
            CHECK(j["trace_id"] == kTrace);
            spans.insert(span_of(j["traceparent"].get<std::string>()));
            CHECK(j["tracestate"] == kTracestate);
        } else {
            CHECK_FALSE(j.contains("trace_id"));
            CHECK_FALSE(j.contains("traceparent"));
        }
    }
    // Pull: the message's fields.
    auto pulled = api.call_json("POST", "/api/v1/mq/subscriptions/" + pull_sub + "/pull",
                                {{"max_messages", 10}}, token);
    REQUIRE(pulled.status == 200);
    auto messages = pulled.json()["messages"];
    REQUIRE(messages.size() == 2);
    for (const auto& m : messages) {
        if (m["id"] == traced_id) {
            CHECK(m["trace_id"] == kTrace);
            spans.insert(span_of(m["traceparent"].get<std::string>()));
            CHECK(m["tracestate"] == kTracestate);
        } else {
            CHECK(m["traceparent"].is_null());
        }
    }
    CHECK(spans.size() == 4);  // one new span per delivery
    std::filesystem::remove_all(dir);
}
