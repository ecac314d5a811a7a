// mq-worker's Prometheus endpoint: promtool accepts it, the lag, pending and oldest-unacked
// gauges of the subscriptions it runs agree with Redis, build info and process figures are
// there, a Redis outage shows as mq_backend_up 0, and the listen address comes from
// metrics_address / METRICS_ADDRESS / --metrics-address (flag > environment > file).

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "api_process.hpp"
#include "child_process.hpp"
#include "harness.hpp"
#include "mq/core/version.hpp"
#include "mq/publish/publisher.hpp"
#include "private_services.hpp"
#include "prometheus_text.hpp"

using namespace std::chrono_literals;
using mqtest::sample;

namespace {

// One mq-worker process with exactly `env` (and PATH); killed in the destructor if still
// running.
struct Worker : mqtest::ChildProcess {
    Worker(const std::vector<std::string>& args, mqtest::Env env) {
        env["PATH"] = "/usr/bin:/bin";
        start(MQ_WORKER_PATH, args, env);
    }
};

// A queue of one partition and a worker file whose one subscription ("slowpoke") holds each
// delivery for 30 s, one at a time: entries stay pending or undelivered while we look.
struct Fixture {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    std::string dir = "/tmp/" + mqtest::unique_name("mqm");
    mq::Queue q;

    Fixture() {
        std::filesystem::create_directories(dir);
        mq::QueueSpec spec;
        spec.name = "jobs";
        spec.partition_count = 1;
        q = ts.catalog().create_queue(ts.tenant(), spec, mq::Config{});
    }
    ~Fixture() { std::filesystem::remove_all(dir); }

    std::string config(const std::string& extra = "") {
        std::string path = dir + "/worker-" + mqtest::unique_name("c") + ".yaml";
        std::ofstream(path) << "tenant: " << ts.tenant() << "\nredis_key_prefix: \"" << rs.prefix()
                            << "\"\nshutdown_timeout: 1s\n"
                            << extra
                            << "subscriptions:\n"
                               "  - queue: jobs\n    name: slowpoke\n    start_from: earliest\n"
                               "    concurrency: 1\n"
                               "    handler:\n      type: exec\n      command: [\"/bin/sh\", "
                               "\"-c\", \"sleep 30\"]\n"
                               "      timeout: 60s\n";
        return path;
    }
    void publish(int n) {
        mq::Publisher pub(rs.redis(), rs.keys());
        std::vector<mq::PublishRequest> batch(static_cast<std::size_t>(n));
        for (auto& r : batch) r.payload = "job";
        pub.publish_batch(q, batch);
    }
    std::map<std::string, std::string> labels() const {
        return {{"tenant", ts.tenant()}, {"queue", "jobs"}, {"subscription", "slowpoke"}};
    }
};

mqtest::Env backend_env(const std::string& redis_url) {
    return {{"REDIS_URL", redis_url}, {"DATABASE_URL", mqtest::services().database_url}};
}

// GET http://address:port/metrics with curl (the harness's client speaks to 127.0.0.1 only);
// "" when nothing answers.
std::string curl_metrics(const std::string& address, int port) {
    const std::string cmd =
        "curl -s -m 5 http://" + address + ":" + std::to_string(port) + "/metrics 2>/dev/null";
    std::string out;
    if (FILE* p = popen(cmd.c_str(), "r")) {
        char buf[4096];
        std::size_t n;
        while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
        pclose(p);
    }
    return out;
}

// The group's pending count and lag as Redis itself reports them (XINFO GROUPS).
std::pair<long long, long long> redis_pending_and_lag(Fixture& f) {
    auto reply =
        f.rs.redis().command({"XINFO", "GROUPS", f.rs.keys().stream(f.ts.tenant(), "jobs", 0)});
    long long pending = -1, lag = -1;
    for (const auto& group : reply.elements) {
        for (std::size_t i = 0; i + 1 < group.elements.size(); i += 2) {
            const auto key = group.elements[i].as_string();
            if (key == "pending") pending = group.elements[i + 1].as_integer();
            if (key == "lag") lag = group.elements[i + 1].as_integer();
        }
    }
    return {pending, lag};
}

}  // namespace

TEST_CASE("worker_metrics_pass_promtool_and_agree_with_redis_on_lag_pending_and_age",
          "[worker][metrics]") {
    Fixture f;
    f.publish(5);
    const int port = mqtest::dead_port();
    Worker w({"--config", f.config(), "--metrics-port", std::to_string(port)},
             backend_env(mqtest::services().redis_url));
    std::string body;
    bool seen = mqtest::eventually(
        [&] {
            auto r = mqtest::http_request(port, "GET", "/metrics");
            body = r.body;
            return r.status == 200 &&
                   sample(body, "mq_subscription_pending", f.labels()).value_or(0) >= 1;
        },
        20s);
    INFO(body << "\n" << w.log());
    REQUIRE(seen);
    auto lint = mqtest::promtool_check_metrics(body);
    INFO("promtool: " << lint.output);
    CHECK(lint.exit_code == 0);
    CHECK(lint.output.empty());

    // The figures agree with Redis (the one delivery in the handler holds its entry; the
    // worker's read-ahead may hold a few more, still unacked).
    auto [pending, lag] = redis_pending_and_lag(f);
    CHECK(sample(body, "mq_subscription_pending", f.labels()) == static_cast<double>(pending));
    CHECK(sample(body, "mq_subscription_lag", f.labels()) == static_cast<double>(lag));
    CHECK(pending + lag == 5);
    CHECK(sample(body, "mq_subscription_backlog", f.labels()) == 5.0);
    auto age = sample(body, "mq_subscription_oldest_pending_age_seconds", f.labels());
    REQUIRE(age.has_value());

    CHECK(sample(body, "mq_build_info", {{"version", mq::kVersion}}) == 1.0);
    CHECK(sample(body, "mq_backend_up", {{"backend", "redis"}}) == 1.0);
    CHECK(sample(body, "mq_worker_queue_figures_up") == 1.0);
    CHECK(sample(body, "process_resident_memory_bytes").value_or(0) > 1e6);
    CHECK(sample(body, "process_open_fds").value_or(0) >= 3.0);
    CHECK(sample(body, "process_cpu_seconds_total").value_or(-1) >= 0.0);
    CHECK(sample(body, "process_start_time_seconds").value_or(0) > 1.6e9);
    auto acked = f.labels();
    acked["outcome"] = "acked";
    CHECK(sample(body, "mq_worker_deliveries_total", acked) == 0.0);
    CHECK(mqtest::has_family(body, "mq_worker_handler_duration_seconds", "histogram"));

    // Nothing is acked while the handler sleeps: the oldest unacked entry only gets older.
    std::this_thread::sleep_for(1200ms);
    auto later = mqtest::http_request(port, "GET", "/metrics").body;
    auto older = sample(later, "mq_subscription_oldest_pending_age_seconds", f.labels());
    REQUIRE(older.has_value());
    CHECK(*older >= *age + 1.0);
}

TEST_CASE("worker_metrics_with_redis_down_pass_promtool_and_say_redis_is_down",
          "[worker][metrics]") {
    mqtest::PrivateRedis redis;
    Fixture f;
    // The queue lives in the shared Redis's catalog (PostgreSQL); the worker reads the
    // private one, which has the group after the worker starts.
    const int port = mqtest::dead_port();
    Worker w({"--config", f.config(), "--metrics-port", std::to_string(port)},
             backend_env(redis.url()));
    std::string body;
    REQUIRE(mqtest::eventually(
        [&] {
            body = mqtest::http_request(port, "GET", "/metrics").body;
            return sample(body, "mq_backend_up", {{"backend", "redis"}}) == 1.0;
        },
        20s));
    redis.stop();
    bool down = mqtest::eventually(
        [&] {
            body = mqtest::http_request(port, "GET", "/metrics").body;
            return sample(body, "mq_backend_up", {{"backend", "redis"}}) == 0.0;
        },
        15s);
    INFO(body << "\n" << w.log());
    REQUIRE(down);
    CHECK(sample(body, "mq_worker_queue_figures_up") == 0.0);
    CHECK(body.find("mq_subscription_lag{") == std::string::npos);
    CHECK(sample(body, "mq_build_info", {{"version", mq::kVersion}}) == 1.0);
    auto lint = mqtest::promtool_check_metrics(body);
    INFO("promtool: " << lint.output);
    CHECK(lint.exit_code == 0);
    CHECK(lint.output.empty());
}

TEST_CASE("worker_metrics_address_comes_from_the_file_the_environment_or_the_flag",
          "[worker][metrics]") {
    Fixture f;
    auto env = backend_env(mqtest::services().redis_url);
    auto serves = [](const std::string& address, int port) {
        return mqtest::eventually(
            [&] { return curl_metrics(address, port).find("mq_build_info{") != std::string::npos; },
            15s);
    };
    SECTION("default: loopback 127.0.0.1 only") {
        const int port = mqtest::dead_port();
        Worker w({"--config", f.config(), "--metrics-port", std::to_string(port)}, env);
        INFO(w.log());
        CHECK(serves("127.0.0.1", port));
        CHECK(curl_metrics("127.0.0.2", port).empty());
    }
    SECTION("metrics_address in the file") {
        const int port = mqtest::dead_port();
        Worker w({"--config", f.config("metrics_address: 127.0.0.3\n"), "--metrics-port",
                  std::to_string(port)},
                 env);
        INFO(w.log());
        CHECK(serves("127.0.0.3", port));
        CHECK(mqtest::http_request(port, "GET", "/metrics").status == 0);  // not on 127.0.0.1
    }
    SECTION("METRICS_ADDRESS wins over the file, --metrics-address over both") {
        const int port = mqtest::dead_port();
        auto with_env = env;
        with_env["METRICS_ADDRESS"] = "127.0.0.2";
        {
            Worker w({"--config", f.config("metrics_address: 127.0.0.3\n"), "--metrics-port",
                      std::to_string(port)},
                     with_env);
            INFO(w.log());
            CHECK(serves("127.0.0.2", port));
            CHECK(curl_metrics("127.0.0.3", port).empty());
        }
        const int port2 = mqtest::dead_port();
        Worker w({"--config", f.config("metrics_address: 127.0.0.3\n"), "--metrics-port",
                  std::to_string(port2), "--metrics-address", "127.0.0.4"},
                 with_env);
        INFO(w.log());
        CHECK(serves("127.0.0.4", port2));
        CHECK(curl_metrics("127.0.0.2", port2).empty());
    }
}

TEST_CASE("worker_refuses_a_metrics_address_that_is_not_an_ip_address", "[worker][metrics]") {
    Fixture f;
    auto env = backend_env(mqtest::services().redis_url);
    SECTION("from the environment") {
        auto bad = env;
        bad["METRICS_ADDRESS"] = "localhost:9464";
        Worker w({"--config", f.config(), "--check"}, bad);
        CHECK(w.wait_exit(10s) == 2);
        INFO(w.log());
        CHECK(w.log().find("METRICS_ADDRESS") != std::string::npos);
        CHECK(w.log().find("must be an IP address") != std::string::npos);
    }
    SECTION("from the file, named with its line") {
        Worker w({"--config", f.config("metrics_address: \"999.0.0.1\"\n"), "--check"}, env);
        CHECK(w.wait_exit(10s) == 2);
        INFO(w.log());
        CHECK(w.log().find(".yaml:4") != std::string::npos);
        CHECK(w.log().find("999.0.0.1") != std::string::npos);
    }
    SECTION("from the flag") {
        Worker w({"--config", f.config(), "--check", "--metrics-address", "0.0.0.0; rm -rf /"},
                 env);
        CHECK(w.wait_exit(10s) == 2);
        INFO(w.log());
        CHECK(w.log().find("--metrics-address") != std::string::npos);
    }
}
