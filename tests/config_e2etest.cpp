// The one configuration model as operators meet it: --print-config on all three programs,
// flags over environment over file, unknown keys and options answered with the closest
// known one (exit 2), and mq-worker's metrics listener on METRICS_ADDRESS.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "api_process.hpp"
#include "child_process.hpp"
#include "eventually.hpp"
#include "harness.hpp"

using Catch::Matchers::Contains;
using namespace std::chrono_literals;

namespace {

std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// Runs `binary` with `args` and exactly `env` (no backend is touched by these runs).
mqtest::Run run(const std::string& binary, const std::vector<std::string>& args,
                const std::map<std::string, std::string>& env = {}) {
    std::string out = mqtest::temp_file(""), err = mqtest::temp_file("");
    std::string cmd = "env -i PATH=/usr/bin:/bin";
    for (const auto& [k, v] : env) cmd += " " + k + "=" + quote(v);
    cmd += " " + quote(binary);
    for (const auto& a : args) cmd += " " + quote(a);
    cmd += " </dev/null >" + quote(out) + " 2>" + quote(err);
    int rc = std::system(cmd.c_str());
    mqtest::Run r;
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

/// The SOURCE column of one SETTING row of a --print-config table.
std::string row(const std::string& table, const std::string& name) {
    std::istringstream in(table);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(name + " ", 0) == 0) return line;
    return "";
}

}  // namespace

TEST_CASE("mq_api_print_config_shows_each_value_with_its_source_flag_over_env_over_file",
          "[config][e2e]") {
    const std::string file =
        mqtest::temp_file("api_threads: 3\nport: 4000\naccess_log: off\nlog_level: warn\n");
    auto r = run(MQ_API_PATH, {"--config", file, "--threads", "6", "--print-config"},
                 {{"API_THREADS", "5"},
                  {"PORT", "4100"},
                  {"REDIS_URL", "redis://app:hunter2@cache:6379/0"},
                  {"RECEIPT_SECRET", "receipt-key"}});
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    CHECK_THAT(row(r.out, "API_THREADS"), Contains(" 6 ") && Contains("flag --threads"));
    CHECK_THAT(row(r.out, "PORT"), Contains("4100") && Contains("env"));
    CHECK_THAT(row(r.out, "ACCESS_LOG"), Contains("off") && Contains("file (" + file + ":3)"));
    CHECK_THAT(row(r.out, "MAX_CONNECTIONS"), Contains("default"));
    CHECK_THAT(row(r.out, "REDIS_URL"), Contains("redis://app:****@cache:6379/0"));
    CHECK_THAT(row(r.out, "RECEIPT_SECRET"), Contains("****"));
    CHECK(r.out.find("hunter2") == std::string::npos);
    CHECK(r.out.find("receipt-key") == std::string::npos);

    // MQ_CONFIG names the file as well, and -o json is the same data for scripts.
    auto j = run(MQ_API_PATH, {"--print-config", "-o", "json"}, {{"MQ_CONFIG", file}});
    REQUIRE(j.status == 0);
    auto doc = nlohmann::json::parse(j.out);
    CHECK(doc["binary"] == "mq-api");
    bool seen = false;
    for (const auto& s : doc["settings"])
        if (s["name"] == "API_THREADS") {
            seen = true;
            CHECK(s["value"] == "3");
            CHECK(s["source"] == "file");
            CHECK(s["key"] == "api_threads");
        }
    CHECK(seen);
}

TEST_CASE("mq_api_refuses_an_unknown_key_or_option_naming_the_closest_one", "[config][e2e]") {
    const std::string file = mqtest::temp_file("port: 4000\napi_thread: 3\n");
    auto r = run(MQ_API_PATH, {"--config", file, "--print-config"});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains(file + ":2: unknown setting 'api_thread' (did you mean "
                                      "'api_threads'?)"));
    CHECK(r.out.empty());

    auto flag = run(MQ_API_PATH, {"--thread", "3", "--print-config"});
    CHECK(flag.status == 2);
    CHECK_THAT(flag.err, Contains("did you mean '--threads'?"));
}

TEST_CASE("mq_api_bad_value_exits_2_naming_the_setting_and_where", "[config][e2e]") {
    auto f = run(MQ_API_PATH, {"--threads", "0", "--print-config"});
    CHECK(f.status == 2);
    CHECK_THAT(f.err, Contains("API_THREADS=0 (flag --threads)"));
    auto e = run(MQ_API_PATH, {"--print-config"}, {{"TENANT_PUBLISH_RATE", "fast"}});
    CHECK(e.status == 2);
    CHECK_THAT(e.err, Contains("TENANT_PUBLISH_RATE=fast (environment)"));
    auto a = run(MQ_API_PATH, {"--print-config", "--address", "everywhere"});
    CHECK(a.status == 2);
    CHECK_THAT(a.err, Contains("LISTEN_ADDRESS=everywhere (flag --address)"));
}

TEST_CASE("mq_worker_print_config_reads_its_file_environment_and_flags", "[config][e2e]") {
    const std::string file =
        mqtest::temp_file("tenant: t1\nmetrics_port: 9500\nshutdown_timeout: 5s\n");
    auto r = run(
        MQ_WORKER_PATH,
        {"-c", file, "--metrics-address", "0.0.0.0", "--allow-operator-handlers", "--print-config"},
        {{"METRICS_PORT", "9600"}, {"DATABASE_URL", "postgresql://u:pw@db/mq"}});
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    CHECK_THAT(row(r.out, "METRICS_PORT"), Contains("9600") && Contains("env"));
    CHECK_THAT(row(r.out, "METRICS_ADDRESS"), Contains("0.0.0.0") && Contains("flag"));
    CHECK_THAT(row(r.out, "MQ_ALLOW_OPERATOR_HANDLERS"), Contains("true") && Contains("flag"));
    CHECK_THAT(row(r.out, "SHUTDOWN_TIMEOUT"), Contains("5s") && Contains("file"));
    CHECK_THAT(row(r.out, "MQ_TENANT"), Contains("t1"));
    CHECK_THAT(row(r.out, "DATABASE_URL"), Contains("postgresql://u:****@db/mq"));
    CHECK(row(r.out, "API_THREADS").empty());

    auto typo = run(MQ_WORKER_PATH, {"-c", file, "--metrics-prot", "1", "--check"});
    CHECK(typo.status == 2);
    CHECK_THAT(typo.err, Contains("did you mean '--metrics-port'?"));
    const std::string bad = mqtest::temp_file("metrics_adress: 0.0.0.0\nsubscriptions: []\n");
    auto key = run(MQ_WORKER_PATH, {"-c", bad, "--check"});
    CHECK(key.status == 2);
    CHECK_THAT(key.err, Contains("did you mean 'metrics_address'?"));
}

TEST_CASE("mqctl_print_config_needs_no_subcommand_and_masks_passwords", "[config][e2e]") {
    auto r = run(MQCTL_PATH, {"--print-config", "--tenant", "acme"},
                 {{"REDIS_URL", "redis://:sekret@127.0.0.1:1/0"}});
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    CHECK_THAT(row(r.out, "MQ_TENANT"), Contains("acme") && Contains("flag"));
    CHECK_THAT(row(r.out, "REDIS_URL"), Contains("redis://:****@127.0.0.1:1/0"));
    CHECK(r.out.find("sekret") == std::string::npos);
    auto j = run(MQCTL_PATH, {"--print-config", "-o", "json"});
    REQUIRE(j.status == 0);
    CHECK(nlohmann::json::parse(j.out)["binary"] == "mqctl");
    // Without --print-config a subcommand is still required.
    auto none = run(MQCTL_PATH, {});
    CHECK(none.status == 2);
    CHECK_THAT(none.err, Contains("subcommand"));
    // A file with a key another program reads is fine for mqctl; a typo is not.
    const std::string shared = mqtest::temp_file("api_threads: 4\nmq_tenant: t2\n");
    auto s = run(MQCTL_PATH, {"--config", shared, "--print-config"});
    CHECK(s.status == 0);
    CHECK_THAT(row(s.out, "MQ_TENANT"), Contains("t2"));
    const std::string typo = mqtest::temp_file("redis_ulr: redis://x\n");
    auto t = run(MQCTL_PATH, {"--config", typo, "--print-config"});
    CHECK(t.status == 2);
    CHECK_THAT(t.err, Contains("did you mean 'redis_url'?"));
}

TEST_CASE("mq_worker_metrics_listen_on_metrics_address", "[config][e2e][worker]") {
    const int port = mqtest::dead_port();
    mqtest::TenantScope scope;  // a migrated database and a tenant of its own
    const std::string tenant = scope.tenant();
    mqtest::ChildProcess worker(
        MQ_WORKER_PATH, {"--from-db", "--tenant", tenant, "--metrics-port", std::to_string(port)},
        mqtest::service_env({{"METRICS_ADDRESS", "0.0.0.0"},
                             {"MAINTENANCE", "off"},
                             {"REDIS_KEY_PREFIX", "cfgtest" + std::to_string(getpid()) + ":"}}));
    bool up = mqtest::eventually(
        [&] { return mqtest::http_request(port, "GET", "/healthz").status == 200; }, 10s, 100ms);
    worker.signal(SIGTERM);
    auto status = worker.wait_exit(20s);
    INFO(worker.log());
    CHECK(up);
    CHECK_THAT(worker.log(), Contains("metrics on http://0.0.0.0:" + std::to_string(port)));
    CHECK((status && *status < 128));  // exited, not ended by a signal
}
