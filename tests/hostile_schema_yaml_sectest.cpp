// Hostile queue schemas and YAML files (issue 11, item 7), as a tenant or a careless operator
// would send them: through mq-api (422, the process stays up and serves other tenants), mqctl
// (exit 2, nothing created) and mq-worker --check (exit 2). Every case here crashed or
// stalled a process before the schemas were vetted and the YAML loader bounded.

#include <sys/wait.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"
#include "mqctl_shell.hpp"

using Catch::Matchers::Contains;
using mqtest::ApiSession;
using nlohmann::json;

namespace {

const std::string kQueues = "/api/v1/mq/queues";
const std::string kPublish = "/api/v1/mq/publish";

std::string nested_properties(int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += R"({"type":"object","properties":{"a":)";
    s += "{}";
    for (int i = 0; i < depth; ++i) s += "}}";
    return s;
}

// Schemas refused when stored, by name.
std::vector<std::pair<std::string, std::string>> hostile_schemas() {
    std::string big = R"({"type":"object","properties":{)";
    for (int i = 0; i < 3000; ++i)
        big += (i ? "," : "") + std::string("\"p") + std::to_string(i) + R"(":{"type":"string"})";
    big += "}}";
    return {
        {"self-ref", R"({"$ref": "#"})"},
        {"ref-loop",
         R"({"$ref": "#/definitions/a", "definitions": {"a": {"$ref": "#/definitions/b"},
                                                                "b": {"$ref": "#/definitions/a"}}})"},
        {"allof-loop", R"({"allOf": [{"$ref": "#"}]})"},
        {"remote-ref", R"({"properties": {"a": {"$ref": "http://169.254.169.254/latest"}}})"},
        {"deep", nested_properties(20)},  // 41 levels: under the body limit (64), over ours
        {"backreference", R"({"properties": {"a": {"type": "string", "pattern": "^(a)\\1$"}}})"},
        {"lookahead-key", R"j({"patternProperties": {"^(?=a)": {"type": "string"}}})j"},
        {"too-big", big},
    };
}

// A process run with a time bound: exit status, or 128+signal, or 124 on timeout.
int run_bounded(const std::string& command, std::string* output = nullptr) {
    std::string out = mqtest::temp_file("");
    int rc = std::system(("timeout -s KILL 60 " + command + " >" + out + " 2>&1").c_str());
    if (output) {
        std::ifstream in(out);
        output->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (WIFSIGNALED(rc)) return 128 + WTERMSIG(rc);
    return WEXITSTATUS(rc);
}

// Nine levels of ten aliases: 10^9 nodes once expanded.
std::string billion_laughs() {
    std::string text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
    for (int i = 1; i < 9; ++i) {
        std::string prev = "*a" + std::to_string(i - 1);
        text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
        for (int j = 0; j < 10; ++j) text += (j ? ", " : "") + prev;
        text += "]\n";
    }
    return text;
}

template <class F>
double seconds_of(F&& f) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("api_hostile_schemas_answer_422_and_create_nothing", "[security][schema]") {
    ApiSession s;
    REQUIRE(s.api.call_json("POST", kQueues, {{"name", "plain"}}, s.token).status == 201);
    for (const auto& [name, schema] : hostile_schemas()) {
        INFO(name);
        std::string body = R"({"name": ")" + name + R"(", "schema": )" + schema + "}";
        auto r = s.api.call("POST", kQueues, body, s.token, {{"Content-Type", "application/json"}});
        CHECK(r.status == 422);
        CHECK(r.error_code() == "MQ_SCHEMA_INVALID");
        CHECK(r.json()["error"]["details"]["field"] == "schema");
        CHECK(s.api.call("GET", kQueues + "/" + name, "", s.token).status == 404);
        // The same through an update of an existing queue.
        auto u = s.api.call("PUT", kQueues + "/plain", R"({"schema": )" + schema + "}", s.token,
                            {{"Content-Type", "application/json"}});
        CHECK(u.status == 422);
        CHECK(u.error_code() == "MQ_SCHEMA_INVALID");
    }
    auto ref =
        s.api.call("POST", kQueues,
                   R"({"name": "r", "schema": {"properties": {"x": {"$ref": "#/properties/x"}}}})",
                   s.token, {{"Content-Type", "application/json"}});
    CHECK_THAT(ref.json()["error"]["message"].get<std::string>(), Contains("$ref cycle"));
    CHECK(ref.json()["error"]["details"]["pointer"] == "/properties/x");
    REQUIRE(s.api.running());
    CHECK(s.api.call("GET", "/api/v1/mq/health").status == 200);
    CHECK(s.api.call_json("POST", kPublish, {{"queue", "plain"}, {"payload", "ok"}}, s.token)
              .status == 201);
}

TEST_CASE("api_hostile_payloads_are_bounded_and_other_tenants_keep_publishing",
          "[security][schema]") {
    ApiSession s;
    auto create = [&](const std::string& name, const json& schema) {
        auto r = s.api.call_json("POST", kQueues, {{"name", name}, {"schema", schema}}, s.token);
        REQUIRE(r.status == 201);
    };
    create("lower", {{"type", "object"},
                     {"properties", {{"s", {{"type", "string"}, {"pattern", "^[a-z]*$"}}}}}});
    create("evil", {{"type", "object"},
                    {"properties", {{"s", {{"type", "string"}, {"pattern", "^(a+)+$"}}}}}});
    create("unique", {{"type", "array"}, {"uniqueItems", true}});
    create("names", {{"type", "object"},
                     {"patternProperties", {{"^(a|aa)+$", {{"type", "integer"}}}}},
                     {"additionalProperties", false}});
    create("stamp", {{"type", "object"},
                     {"properties", {{"at", {{"type", "string"}, {"format", "date-time"}}}}}});

    // Another tenant publishes all along; its answers stay fast.
    mqtest::TenantScope other_tenant;
    std::string other_token = mqtest::create_token(other_tenant.tenant(), "tenant-admin", "ops");
    REQUIRE(s.api.call_json("POST", kQueues, {{"name", "calm"}}, other_token).status == 201);
    std::atomic<bool> stop{false};
    std::atomic<int> calm_ok{0}, calm_bad{0};
    std::atomic<double> calm_worst{0};
    std::thread calm([&] {
        while (!stop) {
            double t = seconds_of([&] {
                auto r = s.api.call_json("POST", kPublish, {{"queue", "calm"}, {"payload", "hi"}},
                                         other_token);
                (r.status == 201 ? calm_ok : calm_bad)++;
            });
            if (t > calm_worst) calm_worst = t;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });

    auto publish = [&](const std::string& queue, const std::string& payload) {
        std::string body = R"({"queue": ")" + queue + R"(", "payload": )" + payload + "}";
        mqtest::HttpResult r;
        double t = seconds_of([&] {
            r = s.api.call("POST", kPublish, body, s.token, {{"Content-Type", "application/json"}});
        });
        INFO(queue << " answered " << r.status << " in " << t << " s: " << r.body.substr(0, 300));
        CHECK(t < 5.0);
        CHECK(r.status != 0);
        CHECK(r.status < 500);
        return r;
    };
    std::string big(900 * 1000, 'a');
    CHECK(publish("lower", R"({"s": ")" + big + R"("})").status == 201);
    CHECK(publish("lower", R"({"s": ")" + big + R"(Z"})").status == 422);
    CHECK(publish("evil", R"({"s": ")" + std::string(31, 'a') + R"(!"})").status == 422);
    std::string items = "[";
    for (int i = 0; i < 120000; ++i) items += (i ? "," : "") + std::to_string(i);
    items += "]";
    auto u = publish("unique", items);
    CHECK(u.status == 422);
    CHECK(u.error_code() == "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(publish("names", R"({")" + std::string(40, 'a') + R"(!": 1})").status == 422);
    CHECK(publish("names", R"({")" + std::string(40, 'a') + R"(": 1})").status == 201);
    CHECK(publish("stamp", R"({"at": ")" + std::string(500000, '1') + R"("})").status == 422);
    CHECK(publish("stamp", R"({"at": "2026-12-03T12:00:00Z"})").status == 201);
    auto deep = publish("lower", std::string(5000, '[') + std::string(5000, ']'));
    CHECK(deep.status == 400);

    stop = true;
    calm.join();
    CHECK(calm_bad == 0);
    CHECK(calm_ok > 0);
    CHECK(calm_worst < 5.0);
    REQUIRE(s.api.running());
    double health =
        seconds_of([&] { CHECK(s.api.call("GET", "/api/v1/mq/health").status == 200); });
    CHECK(health < 2.0);
}

TEST_CASE("mqctl_refuses_hostile_schema_files_with_exit_2_and_creates_nothing",
          "[security][schema][mqctl]") {
    mqtest::MqctlShell sh;
    auto schemas = hostile_schemas();
    schemas.emplace_back("very-deep", std::string(200000, '{') + std::string(200000, '}'));
    schemas.emplace_back("very-deep-array", R"({"enum": )" + std::string(200000, '[') +
                                                std::string(200000, ']') + "}");
    for (const auto& [name, schema] : schemas) {
        INFO(name);
        auto r = sh.run({"queue", "create", name, "--schema-file", mqtest::temp_file(schema)});
        REQUIRE_EXIT(r, 2);
        CHECK_THAT(r.err, Contains("schema"));
    }
    CHECK(sh.db().catalog().list_queues(sh.tenant()).empty());
    // And through queue update.
    sh.create_queue({"plain"});
    REQUIRE_EXIT(sh.run({"queue", "update", "plain", "--schema-file",
                         mqtest::temp_file(R"({"$ref": "#"})")}),
                 2);
    CHECK(sh.queue("plain").schema.is_null());
}

TEST_CASE("mqctl_publish_checks_hostile_payloads_in_bounded_time", "[security][schema][mqctl]") {
    mqtest::MqctlShell sh;
    sh.create_queue(
        {"evil", "--schema-file", mqtest::temp_file(R"({"type":"string","pattern":"^(a+)+$"})")});
    sh.create_queue(
        {"lower", "--schema-file", mqtest::temp_file(R"({"type":"string","pattern":"^[a-z]*$"})")});
    double t = seconds_of([&] {
        auto r = sh.run({"publish", "evil", "\"" + std::string(31, 'a') + "!\""});
        REQUIRE_EXIT(r, 2);
        CHECK_THAT(r.err, Contains("does not match the queue's schema"));
    });
    CHECK(t < 10.0);
    std::string big = "\"" + std::string(900 * 1000, 'a') + "\"";
    REQUIRE_EXIT(sh.run({"publish", "lower", "--file", mqtest::temp_file(big)}), 0);
    CHECK(sh.xlen("lower", 0) == 1);
    CHECK(sh.xlen("evil", 0) == 0);
}

TEST_CASE("hostile_yaml_files_exit_2_in_mqctl_apply_and_mq_worker_check", "[security][yaml]") {
    const std::map<std::string, std::string> files = {
        {"recursive-alias", "subscriptions: &a [*a]\n"},
        {"billion-laughs", billion_laughs()},
        {"two-documents", "subscriptions: []\n---\nsubscriptions: []\n"},
        {"deep", std::string(100000, '[') + std::string(100000, ']') + "\n"},
        {"long-string", "subscriptions:\n  - name: " + std::string(100000, '1') + "\n"},
    };
    mqtest::MqctlShell sh;
    for (const auto& [name, text] : files) {
        INFO(name);
        std::string path = mqtest::temp_file(text);
        auto r = sh.run({"apply", "-f", path});
        REQUIRE_EXIT(r, 2);
        CHECK_THAT(r.err, Contains(path));

        std::string out;
        int rc = run_bounded(std::string(MQ_WORKER_PATH) + " --check --config " + path, &out);
        INFO(out);
        CHECK(rc == 2);
        CHECK_THAT(out, Contains(path));
    }
    std::string out;
    std::string loop = mqtest::temp_file("a: &a [*a]\n");
    CHECK(run_bounded(std::string(MQCTL_PATH) + " --config " + loop + " queue list", &out) == 2);
    CHECK_THAT(out, Contains(loop + ":1") && Contains("recursive alias"));
}
