// The handler trust boundary (docs/security.md, "Handler trust boundary"): no API token,
// of any role, can make a worker run a command or write a file. Every route and field that
// could set a handler is tried, then `mq-worker --from-db --allow-operator-handlers` runs
// the tenant's database and nothing the API tried happens. An operator's exec subscription
// runs only when the worker is started with the flag (or MQ_ALLOW_OPERATOR_HANDLERS), and a
// row set through the API before origins were recorded never runs until an operator
// confirms it.

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "api_process.hpp"
#include "child_process.hpp"
#include "eventually.hpp"
#include "harness.hpp"
#include "mq/consume/subscription.hpp"
#include "mq/error.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/worker/worker_config.hpp"
#include "mqctl_shell.hpp"

using namespace std::chrono_literals;
using mqtest::eventually;
namespace fs = std::filesystem;

namespace {

constexpr const char* kSubs = "/api/v1/mq/subscriptions";

// `mq-worker --from-db --tenant T` plus `extra` and `extra_env`; killed at scope end.
struct Worker : mqtest::ChildProcess {
    Worker(const std::string& tenant, const std::string& prefix,
           const std::vector<std::string>& extra, const mqtest::Env& extra_env = {}) {
        std::vector<std::string> args{"--from-db", "--tenant", tenant, "--reconcile-interval-ms",
                                      "300"};
        args.insert(args.end(), extra.begin(), extra.end());
        auto env = mqtest::service_env({{"REDIS_KEY_PREFIX", prefix}, {"MQ_TENANT", tenant}});
        for (const auto& [k, v] : extra_env) env[k] = v;
        start(MQ_WORKER_PATH, args, env);
    }
    bool logged(const std::string& text) const { return log().find(text) != std::string::npos; }
};

std::size_t lines_in(const std::string& path) {
    std::ifstream in(path);
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) ++n;
    return n;
}

struct Dir {
    std::string path = "/tmp/" + mqtest::unique_name("mq-trust");
    Dir() { fs::create_directories(path); }
    ~Dir() { fs::remove_all(path); }
    std::string file(const std::string& name) const { return path + "/" + name; }
    std::vector<std::string> entries() const {
        std::vector<std::string> out;
        for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path().string());
        return out;
    }
};

void publish(const std::string& prefix, const mq::Queue& queue, int n) {
    mq::redis::Connection conn(mq::redis::parse_url(mqtest::services().redis_url));
    mq::Publisher pub(conn, mq::KeyLayout(prefix));
    for (int i = 0; i < n; ++i) {
        mq::PublishRequest r;
        r.payload = "{\"n\": " + std::to_string(i) + "}";
        pub.publish(queue, r);
    }
}

}  // namespace

TEST_CASE("no_api_token_can_make_a_worker_run_a_command_or_write_a_file",
          "[security][trust][api][worker]") {
    mqtest::ApiSession s;
    Dir dir;
    const std::string tenant = s.tenant.tenant();
    REQUIRE(s.api.call_json("POST", "/api/v1/mq/queues", {{"name", "jobs"}}, s.token).status ==
            201);
    // Every shell command the attacker tries leaves a file named pwned-* in dir; every log
    // path it tries is a file in dir too. The test passes only if dir stays empty of them.
    int n = 0;
    auto pwn = [&] { return "touch " + dir.file("pwned-" + std::to_string(++n)); };
    auto log_file = [&] { return dir.file("written-" + std::to_string(++n) + ".jsonl"); };
    auto post = [&](const nlohmann::json& body, const std::string& token) {
        return s.api.call_json("POST", kSubs, body, token);
    };
    auto refused = [](const mqtest::HttpResult& r, const char* code = "MQ_HANDLER_FORBIDDEN") {
        INFO(r.body);
        CHECK(r.status == 403);
        CHECK(r.error_code() == code);
    };

    // --- creation, by every role ------------------------------------------------------
    const std::string admin = mqtest::create_token(tenant, "admin", "root");
    const std::string producer = mqtest::create_token(tenant, "producer", "svc");
    const std::string consumer = mqtest::create_token(tenant, "consumer", "svc");
    for (const auto& [token, code] :
         std::vector<std::pair<std::string, const char*>>{{s.token, "MQ_HANDLER_FORBIDDEN"},
                                                          {admin, "MQ_HANDLER_FORBIDDEN"},
                                                          {producer, "MQ_FORBIDDEN"},
                                                          {consumer, "MQ_FORBIDDEN"}}) {
        refused(post({{"queue", "jobs"},
                      {"name", "x" + std::to_string(n)},
                      {"type", "exec"},
                      {"handler", {{"command", pwn()}}}},
                     token),
                code);
        refused(post({{"queue", "jobs"},
                      {"name", "x" + std::to_string(n)},
                      {"type", "log"},
                      {"handler", {{"path", log_file()}}}},
                     token),
                code);
    }
    const std::vector<nlohmann::json> hostile = {
        // exec in its two command forms, with every extra a client might hope helps
        {{"type", "exec"},
         {"handler", {{"command", nlohmann::json::array({"/bin/sh", "-c", pwn()})}}}},
        {{"type", "exec"}, {"handler", {{"command", pwn()}}}, {"origin", "operator"}},
        {{"type", "exec"},
         {"handler", {{"command", pwn()}}},
         {"created_by", "mqctl"},
         {"managed_by", "worker"}},
        {{"type", "exec"}},  // no command at all: still the type that is refused
        // log to files, including the special files and a handler that is not even valid
        {{"type", "log"}, {"handler", {{"path", log_file()}}}},
        {{"type", "log"}, {"handler", {{"path", "/dev/null"}}}},
        {{"type", "log"}, {"handler", {{"path", "/proc/self/fd/1"}}}},
        {{"type", "log"}, {"handler", {{"path", log_file()}, {"extra", true}}}},
        {{"type", "log"}, {"handler", {{"path", log_file()}}}, {"origin", "operator"}},
    };
    for (const auto& h : hostile) {
        nlohmann::json body = h;
        body["queue"] = "jobs";
        body["name"] = "h" + std::to_string(++n);
        refused(post(body, s.token));
    }
    // Spellings the type check refuses as invalid: 400, never stored.
    for (const char* type : {"EXEC", "exec ", "Log", "shell"}) {
        auto r = post({{"queue", "jobs"},
                       {"name", "v" + std::to_string(++n)},
                       {"type", type},
                       {"handler", {{"command", pwn()}}}},
                      s.token);
        INFO(r.body);
        CHECK(r.status == 400);
    }

    // --- what a token may create, then tries to turn into a command ------------------
    auto created = [&](const nlohmann::json& body) {
        auto r = post(body, s.token);
        INFO(r.body);
        REQUIRE(r.status == 201);
        CHECK(r.json()["origin"] == "api");
        CHECK(r.json()["created_by"].get<std::string>().rfind("token:", 0) == 0);
        return std::string(kSubs) + "/" + r.json()["id"].get<std::string>();
    };
    // A pull subscription carrying an exec-looking handler and a claim to be the operator's.
    const std::string pull = created({{"queue", "jobs"},
                                      {"name", "pull"},
                                      {"origin", "operator"},
                                      {"handler", {{"command", pwn()}}}});
    const std::string to_stdout = created(
        {{"queue", "jobs"}, {"name", "stdout"}, {"type", "log"}, {"handler", {{"path", "-"}}}});
    const std::string hook = created({{"queue", "jobs"},
                                      {"name", "hook"},
                                      {"type", "webhook"},
                                      {"handler", {{"url", "http://127.0.0.1:9/hook"}}}});
    for (const auto& target : {pull, to_stdout, hook}) {
        INFO(target);
        refused(s.api.call_json("PUT", target,
                                {{"type", "exec"}, {"handler", {{"command", pwn()}}}}, s.token));
        refused(s.api.call_json("PUT", target,
                                {{"type", "log"}, {"handler", {{"path", log_file()}}}}, s.token));
        refused(s.api.call_json("PUT", target,
                                {{"type", "exec"},
                                 {"handler", {{"command", pwn()}}},
                                 {"origin", "operator"},
                                 {"created_by", "mqctl"}},
                                s.token));
    }
    // The pull one keeps its stored handler: type alone would turn it into a command.
    refused(s.api.call_json("PUT", pull, {{"type", "exec"}}, s.token));
    // The stdout log one: only the path changes.
    refused(s.api.call_json("PUT", to_stdout, {{"handler", {{"path", log_file()}}}}, s.token));

    // --- an operator's exec subscription: a token may pause, resume or delete it, but
    // change nothing of it (its command would run as the operator's) ----------------
    const std::string operator_out = dir.file("operator.out");
    auto sh = mqtest::mqctl({"--tenant", tenant, "--key-prefix", s.api.key_prefix(), "-o", "json",
                             "sub", "create", "jobs", "ops", "--command",
                             "cat >> " + operator_out + "; echo >> " + operator_out, "--from",
                             "earliest"});
    INFO(sh.err);
    REQUIRE(sh.status == 0);
    auto ops = nlohmann::json::parse(sh.out);
    CHECK(ops["origin"] == "operator");
    CHECK(ops["created_by"] == "mqctl");
    const std::string ops_target = std::string(kSubs) + "/" + ops["id"].get<std::string>();
    refused(s.api.call_json("PUT", ops_target, {{"handler", {{"command", pwn()}}}}, s.token));
    refused(s.api.call_json("PUT", ops_target, {{"concurrency", 2}}, s.token));
    refused(s.api.call_json("PUT", ops_target,
                            {{"type", "webhook"}, {"handler", {{"url", "http://127.0.0.1:9/"}}}},
                            s.token));
    CHECK(s.api.call("POST", ops_target + "/pause", "", s.token).status == 200);
    CHECK(s.api.call("POST", ops_target + "/resume", "", s.token).status == 200);
    auto ops_now = s.api.call("GET", ops_target, "", s.token).json();
    CHECK(ops_now["handler"] == ops["handler"]);
    CHECK(ops_now["origin"] == "operator");

    // Nothing refused was stored.
    auto list = s.api.call("GET", kSubs, "", s.token).json()["subscriptions"];
    std::set<std::string> names;
    for (const auto& sub : list) names.insert(sub["name"].get<std::string>());
    CHECK(names == std::set<std::string>{"pull", "stdout", "hook", "ops"});
    for (const auto& sub : list)
        if (sub["name"] != "ops") CHECK(sub["origin"] == "api");

    // --- a worker runs the whole database, operator handlers allowed -------------------
    auto queue = s.tenant.catalog().get_queue(tenant, "jobs");
    publish(s.api.key_prefix(), queue, 3);
    {
        Worker w(tenant, s.api.key_prefix(), {"--allow-operator-handlers", "--metrics-port", "0"},
                 {{"WEBHOOK_ALLOWED_CIDRS", "127.0.0.0/8"}});
        INFO(w.log());
        // The operator's command runs: the worker did read and run the database.
        REQUIRE(eventually([&] { return lines_in(operator_out) >= 3; }, 15s));
        std::this_thread::sleep_for(1s);  // several full reconciles
        CHECK(w.alive());
        CHECK(w.terminate() == 0);
    }
    // Nothing an API token tried left a trace: only the operator's output exists.
    CHECK(dir.entries() == std::vector<std::string>{operator_out});
}

TEST_CASE("an_operators_exec_subscription_runs_from_the_database_only_when_the_worker_allows_it",
          "[security][trust][worker]") {
    mqtest::MqctlShell sh;
    Dir dir;
    sh.create_queue({"jobs"});
    const std::string out = dir.file("out");
    sh.ok({"sub", "create", "jobs", "ops", "--command", "cat >> " + out + "; echo >> " + out,
           "--from", "earliest"});
    publish(sh.redis().prefix(), sh.queue("jobs"), 3);

    const int port = mqtest::dead_port();
    {
        Worker w(sh.tenant(), sh.redis().prefix(), {"--metrics-port", std::to_string(port)});
        INFO(w.log());
        REQUIRE(eventually(
            [&] {
                auto r = mqtest::http_request(port, "GET", "/metrics");
                return r.status == 200 &&
                       r.body.find(
                           "mq_worker_subscriptions_skipped{reason=\"operator_handlers_not_"
                           "allowed\"} 1") != std::string::npos;
            },
            10s));
        std::this_thread::sleep_for(1s);  // several full reconciles: still one log line
        std::string log = w.log();
        auto first = log.find("jobs/ops: skipped: its exec handler runs on this host");
        REQUIRE(first != std::string::npos);
        CHECK(log.find("jobs/ops: skipped", first + 1) == std::string::npos);
        CHECK(w.alive());
        CHECK(w.terminate() == 0);
    }
    CHECK_FALSE(fs::exists(out));

    {
        Worker w(sh.tenant(), sh.redis().prefix(), {"--allow-operator-handlers"});
        INFO(w.log());
        REQUIRE(eventually([&] { return lines_in(out) == 3; }, 15s));
        CHECK(w.terminate() == 0);
    }
    // The same through the environment.
    publish(sh.redis().prefix(), sh.queue("jobs"), 2);
    {
        Worker w(sh.tenant(), sh.redis().prefix(), {}, {{"MQ_ALLOW_OPERATOR_HANDLERS", "true"}});
        INFO(w.log());
        REQUIRE(eventually([&] { return lines_in(out) == 5; }, 15s));
        CHECK(w.terminate() == 0);
    }
}

TEST_CASE("a_legacy_api_exec_row_never_runs_until_an_operator_confirms_it",
          "[security][trust][worker]") {
    mqtest::MqctlShell sh;
    Dir dir;
    sh.create_queue({"jobs"});
    const std::string out = dir.file("legacy.out");
    // As a tenant-admin token could store it before migration 008: the row carries the
    // column defaults (origin 'api').
    sh.ok({"sub", "create", "jobs", "legacy", "--from", "earliest"});
    sh.db().exec(
        "UPDATE message_subscriptions SET type = 'exec', origin = DEFAULT, created_by = "
        "'legacy', handler_config = '{\"command\": \"cat >> " +
        out + "; echo >> " + out + "\"}' WHERE tenant_id = '" + sh.tenant() +
        "' AND name = 'legacy'");
    publish(sh.redis().prefix(), sh.queue("jobs"), 2);
    const int port = mqtest::dead_port();
    Worker w(sh.tenant(), sh.redis().prefix(),
             {"--allow-operator-handlers", "--metrics-port", std::to_string(port)});
    INFO(w.log());
    REQUIRE(eventually(
        [&] {
            return w.logged(
                "jobs/legacy: skipped: its exec handler was set through the API (legacy)");
        },
        10s));
    // The counter is set after the log line is written: wait for it too.
    CHECK(eventually(
        [&] {
            auto metrics = mqtest::http_request(port, "GET", "/metrics");
            return metrics.status == 200 &&
                   metrics.body.find("mq_worker_subscriptions_skipped{reason=\"api_origin\"} 1") !=
                       std::string::npos;
        },
        10s));
    std::this_thread::sleep_for(1s);
    CHECK_FALSE(fs::exists(out));

    // Read, then confirmed: the running worker picks it up without a restart.
    auto confirmed = sh.json_of({"sub", "update", "jobs", "legacy", "--confirm-handler"});
    CHECK(confirmed["origin"] == "operator");
    CHECK(confirmed["created_by"] == "mqctl");
    REQUIRE(eventually([&] { return lines_in(out) == 2; }, 10s));
    CHECK(w.terminate() == 0);
}

TEST_CASE("handlers_are_built_only_for_the_origin_that_may_set_them", "[security][trust]") {
    mq::Subscription s;
    s.name = "s";
    s.type = "exec";
    s.handler = {{"command", "true"}};
    CHECK(mq::is_operator_only(s));
    try {
        mq::make_handler(s);  // origin api by default
        FAIL("built");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kHandlerForbidden);
    }
    s.origin = mq::kOriginOperator;
    CHECK(mq::make_handler(s));

    s.type = "log";
    s.origin = mq::kOriginApi;
    for (const char* path : {"-", "stdout", "stderr"}) {
        s.handler = {{"path", path}};
        CHECK_FALSE(mq::is_operator_only(s));
        CHECK(mq::make_handler(s));
    }
    s.handler = {{"path", "/tmp/x"}};
    CHECK(mq::is_operator_only(s));
    CHECK_THROWS_AS(mq::make_handler(s), mq::Error);
    s.handler = {{"path", "-"}, {"bogus", 1}};
    CHECK(mq::is_operator_only(s));  // unreadable: the worst is assumed

    // Origin is never read from JSON.
    auto parsed = mq::subscription_from_json(
        {{"name", "a"}, {"queue", "q"}, {"origin", "operator"}, {"created_by", "mqctl"}});
    CHECK(parsed.origin == mq::kOriginApi);
    CHECK(parsed.created_by.empty());
}

TEST_CASE("the_worker_file_allows_operator_handlers_and_webhook_ranges_explicitly",
          "[security][trust][ssrf]") {
    const std::string path = mqtest::temp_file(
        "allow_operator_handlers: true\n"
        "webhook_allowed_cidrs: [\"10.1.0.0/16\", \"127.0.0.1\"]\n"
        "subscriptions:\n"
        "  - queue: jobs\n"
        "    name: nightly\n"
        "    handler: {type: exec, command: \"true\"}\n");
    auto wc = mq::load_worker_config(path, {});
    CHECK(wc.base.allow_operator_handlers);
    REQUIRE(wc.base.webhook_allowed_cidrs.size() == 2);
    CHECK(wc.base.webhook_allowed_cidrs[1].to_string() == "127.0.0.1/32");
    // The file's own subscriptions are the operator's.
    REQUIRE(wc.subscriptions.size() == 1);
    CHECK(wc.subscriptions[0].origin == mq::kOriginOperator);
    CHECK(wc.subscriptions[0].created_by == "worker");
    // The environment wins over the file.
    auto off = mq::load_worker_config(path, {{"MQ_ALLOW_OPERATOR_HANDLERS", "false"}});
    CHECK_FALSE(off.base.allow_operator_handlers);
    // Off unless said.
    auto plain = mq::load_worker_config(mqtest::temp_file("subscriptions: []\n"), {});
    CHECK_FALSE(plain.base.allow_operator_handlers);
    CHECK(plain.base.webhook_allowed_cidrs.empty());
    // A bad range stops the worker naming the file and line.
    try {
        mq::load_worker_config(mqtest::temp_file("webhook_allowed_cidrs: [\"10.0.0.0/40\"]\n"), {});
        FAIL("accepted");
    } catch (const mq::ValidationError& e) {
        CHECK(std::string(e.what()).find("WEBHOOK_ALLOWED_CIDRS") != std::string::npos);
        CHECK(std::string(e.what()).find(":1") != std::string::npos);
    }
}
