// mqctl, mq-api and mq-worker over rediss:// to a TLS-only redis-server: one message
// published by each of mqctl and mq-api, both delivered by mq-worker; and how each binary
// reports a TLS setting it cannot use (exit status and message).
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "api_process.hpp"
#include "child_process.hpp"
#include "harness.hpp"
#include "private_services.hpp"
#include "test_ca.hpp"

using Catch::Matchers::Contains;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// mq-worker with `args` and only the given environment (plus PATH); killed at the end.
struct Worker : mqtest::ChildProcess {
    Worker(const std::vector<std::string>& args, mqtest::Env env) {
        env["PATH"] = "/usr/bin:/bin";
        start(MQ_WORKER_PATH, args, env);
    }
};

std::map<std::string, std::string> with(std::map<std::string, std::string> env,
                                        const std::map<std::string, std::string>& more) {
    for (const auto& [k, v] : more) env[k] = v;
    return env;
}

}  // namespace

TEST_CASE("mqctl_mq_api_and_mq_worker_publish_and_deliver_over_rediss", "[security][tls][e2e]") {
    const mqtest::TestCa& ca = mqtest::TestCa::shared();
    mqtest::TlsRedis redis(ca, {true, "", "", ""});  // client certificates required too
    mqtest::TenantScope ts;
    const auto env = redis.env();
    const std::string prefix = mqtest::unique_name("tls") + ":";
    const std::vector<std::string> as_tenant{"--tenant", ts.tenant(), "--key-prefix", prefix};
    auto mqctl = [&](std::vector<std::string> args) {
        args.insert(args.begin(), as_tenant.begin(), as_tenant.end());
        return mqtest::mqctl(args, env);
    };

    // mqctl: create the queue (streams in the TLS Redis) and publish one message.
    auto created = mqctl({"queue", "create", "jobs"});
    INFO(created.err);
    REQUIRE(created.status == 0);
    auto published = mqctl({"-o", "json", "publish", "jobs", "from-mqctl"});
    INFO(published.err);
    REQUIRE(published.status == 0);
    const std::string first = json::parse(published.out)["id"];

    // mq-api: publish the second one.
    mqtest::ApiOptions options;
    options.redis_url = redis.url();
    options.env = env;
    options.env.erase("REDIS_URL");
    options.key_prefix = prefix;
    mqtest::ApiProcess api(options);
    const std::string token = mqtest::create_token(ts.tenant(), "producer", "svc");
    auto r = api.call_json("POST", "/api/v1/mq/publish",
                           {{"queue", "jobs"}, {"payload", "from-api"}}, token);
    INFO(r.body << "\n" << api.log());
    REQUIRE(r.status == 201);
    const std::string second = r.json()["id"];

    // mq-worker: delivers both to an exec handler that appends each message id to a file.
    const std::string dir = std::filesystem::temp_directory_path() / mqtest::unique_name("tlsw");
    std::filesystem::create_directories(dir);
    const std::string out = dir + "/delivered";
    const std::string config = dir + "/worker.yaml";
    std::ofstream(config) << "tenant: " << ts.tenant() << "\nredis_url: \"" << redis.url()
                          << "\"\nredis_tls_ca_file: \"" << ca.ca_file()
                          << "\"\nredis_tls_cert_file: \"" << ca.client_cert()
                          << "\"\nredis_tls_key_file: \"" << ca.client_key()
                          << "\"\nredis_key_prefix: \"" << prefix
                          << "\"\nshutdown_timeout: 2s\nsubscriptions:\n"
                             "  - queue: jobs\n    name: tls-sub\n    start_from: earliest\n"
                             "    handler:\n      type: exec\n"
                             "      command: [\"/bin/sh\", \"-c\", \"echo $MQ_MESSAGE_ID >> "
                          << out << "\"]\n";
    // Only PATH and DATABASE_URL in its environment: the TLS settings come from the YAML.
    Worker worker({"--config", config, "--metrics-port", "0"},
                  {{"DATABASE_URL", mqtest::services().database_url}});
    const std::set<std::string> both{first, second};
    std::set<std::string> seen;
    bool delivered = mqtest::eventually(
        [&] {
            std::istringstream lines(read_file(out));
            seen.clear();
            for (std::string l; std::getline(lines, l);)
                if (!l.empty()) seen.insert(l);
            return seen == both;
        },
        30s);
    INFO(worker.log());
    CHECK(delivered);
    std::filesystem::remove_all(dir);
}

TEST_CASE("apps_refuse_tls_settings_they_cannot_use_with_the_right_exit_status",
          "[security][tls][e2e]") {
    const mqtest::TestCa& ca = mqtest::TestCa::shared();
    mqtest::TlsRedis redis;
    mqtest::TenantScope ts;
    const auto env = with(redis.env(), {{"MQ_TENANT", ts.tenant()}});
    auto created = mqtest::mqctl({"queue", "create", "jobs"}, env);
    INFO(created.err);
    REQUIRE(created.status == 0);

    // A CA file that does not exist: a configuration error (exit 2), naming the setting.
    auto r =
        mqtest::mqctl({"stats", "jobs"}, with(env, {{"REDIS_TLS_CA_FILE", "/nonexistent/ca.pem"}}));
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("REDIS_TLS_CA_FILE=/nonexistent/ca.pem"));

    // The wrong CA: the server cannot be trusted, so it is unavailable (exit 5).
    r = mqtest::mqctl({"stats", "jobs"}, with(env, {{"REDIS_TLS_CA_FILE", ca.other_ca_file()}}));
    CHECK(r.status == 5);
    CHECK_THAT(r.err,
               Contains("TLS handshake with Redis at 127.0.0.1:" + std::to_string(redis.port())) &&
                   Contains("certificate verification failed"));
    // The right one works.
    r = mqtest::mqctl({"stats", "jobs"}, env);
    INFO(r.err);
    CHECK(r.status == 0);

    // TLS settings with a redis:// URL are refused rather than ignored.
    r = mqtest::mqctl({"stats", "jobs"}, with(env, {{"REDIS_URL", mqtest::services().redis_url}}));
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("rediss://"));

    // mq-worker --check reads the TLS files too.
    const std::string config = mqtest::temp_file("redis_url: \"" + redis.url() +
                                                 "\"\nredis_tls_ca_file: /nonexistent/ca.pem\n");
    Worker check({"--config", config, "--check"}, {});
    CHECK(check.wait_exit(20s) == 2);
    CHECK_THAT(check.log(), Contains("REDIS_TLS_CA_FILE=/nonexistent/ca.pem"));

    // mq-api with an unusable key stops at startup with a configuration error.
    mqtest::ApiOptions options;
    options.redis_url = redis.url();
    options.env = {{"REDIS_TLS_CA_FILE", ca.ca_file()},
                   {"REDIS_TLS_CERT_FILE", ca.client_cert()},
                   {"REDIS_TLS_KEY_FILE", ca.other_client_key()}};
    options.wait_ready = false;
    mqtest::ApiProcess api(options);
    CHECK(mqtest::eventually([&] { return !api.running(); }, 20s));
    CHECK(api.terminate() == 2);
    CHECK_THAT(api.log(), Contains("REDIS_TLS_KEY_FILE"));
}
