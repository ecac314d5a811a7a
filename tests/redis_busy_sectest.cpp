// Redis answers "try again" (LOADING after a restart, BUSY while a script runs, OOM at
// maxmemory): mq-api answers 503 MQ_BACKEND_UNAVAILABLE with Retry-After, never 500; mqctl
// exits 5 (backend unavailable); nothing acknowledged is lost. docs/security.md, "Backend
// busy or loading".
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"
#include "private_services.hpp"

using namespace mqtest;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

/// A redis-server of this test with an RDB file in its own directory, restartable with
/// extra flags (e.g. a slow load).
class RestartableRedis {
  public:
    RestartableRedis() : port_(dead_port()), dir_(make_private_dir()) { start(); }
    ~RestartableRedis() {
        stop();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    int port() const { return port_; }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
    std::string cli(const std::string& args) const {
        return "redis-cli -h 127.0.0.1 -p " + std::to_string(port_) + " " + args;
    }
    /// Starts without waiting for the load to finish when `extra` slows it down.
    void start(const std::string& extra = "", bool wait_loaded = true) {
        REQUIRE(run_shell("redis-server --bind 127.0.0.1 --port " + std::to_string(port_) +
                          " --save '' --appendonly no --dbfilename dump.rdb"
                          " --maxmemory-policy noeviction --daemonize yes --dir " +
                          dir_ + " --pidfile " + dir_ + "/redis.pid --logfile " + dir_ +
                          "/redis.log " + extra) == 0);
        auto until = Clock::now() + 20s;
        auto ready = [&] {
            return run_shell(cli("ping") + " 2>/dev/null | grep -q -e PONG -e LOADING") == 0;
        };
        while (!ready() && Clock::now() < until) std::this_thread::sleep_for(20ms);
        REQUIRE(ready());
        if (wait_loaded) wait_until_loaded();
    }
    void wait_until_loaded() {
        auto until = Clock::now() + 60s;
        while (!redis_answers(port_) && Clock::now() < until) std::this_thread::sleep_for(50ms);
        REQUIRE(redis_answers(port_));
    }
    bool loading() const { return run_shell(cli("ping") + " 2>/dev/null | grep -q LOADING") == 0; }
    void save_and_stop() {
        REQUIRE(run_shell(cli("save") + " >/dev/null") == 0);
        stop();
    }
    void stop() {
        run_shell(cli("shutdown nosave") + " >/dev/null 2>&1");
        auto until = Clock::now() + 10s;
        while (run_shell(cli("ping") + " >/dev/null 2>&1") == 0 && Clock::now() < until)
            std::this_thread::sleep_for(20ms);
    }

  private:
    int port_;
    std::string dir_;
};

json publish_body(int i) { return {{"queue", "q"}, {"payload", {{"n", i}}}}; }

std::int64_t stream_length(const RestartableRedis& redis, const ApiProcess& api,
                           const std::string& tenant) {
    auto key = mq::KeyLayout(api.key_prefix()).stream(tenant, "q", 0);
    mq::redis::Connection c(mq::redis::parse_url(redis.url()));
    return c.command({"XLEN", key}).as_integer();
}

/// Checks an answer given while Redis cannot serve: a 503 in the error shape with a
/// Retry-After, or (Redis back) a 201.
void check_try_again_answer(const HttpResult& r) {
    INFO(r.status << " " << r.body);
    CHECK(r.status != 500);
    CHECK(r.status != 0);
    if (r.status == 503) {
        CHECK(r.error_code() == "MQ_BACKEND_UNAVAILABLE");
        CHECK(r.headers.count("retry-after") == 1);
        CHECK(r.json()["error"]["retryAfter"].is_number_integer());
        // Redis's own words stay in the log.
        CHECK(r.body.find("LOADING") == std::string::npos);
        CHECK(r.body.find("BUSY") == std::string::npos);
        CHECK(r.body.find("OOM") == std::string::npos);
        CHECK(r.body.find("127.0.0.1") == std::string::npos);
    }
}

}  // namespace

TEST_CASE(
    "publishes while Redis loads its data after a restart answer 503 with Retry-After and "
    "lose nothing acknowledged",
    "[security][redis][loading]") {
    RestartableRedis redis;
    TenantScope t;
    ApiOptions options;
    options.redis_url = redis.url();
    options.env["MAINTENANCE"] = "off";
    ApiProcess api(options);
    auto token = create_token(t.tenant(), "tenant-admin", "ops");
    REQUIRE(api.call_json("POST", "/api/v1/mq/queues", {{"name", "q"}}, token).status == 201);
    int accepted = 0;
    for (int i = 0; i < 20; ++i) {
        auto r = api.call_json("POST", "/api/v1/mq/publish", publish_body(i), token);
        REQUIRE(r.status == 201);
        ++accepted;
    }
    // Enough keys that loading takes seconds with a per-key delay (Redis's own test knob),
    // and events processed every KiB so clients get LOADING rather than silence.
    REQUIRE(run_shell(redis.cli("eval \"for i=1,10000 do redis.call('SET','filler:'..i,'x') "
                                "end return 1\" 0 >/dev/null")) == 0);
    redis.save_and_stop();
    redis.start("--key-load-delay 200 --loading-process-events-interval-bytes 1024", false);
    REQUIRE(redis.loading());

    int unavailable = 0, others = 0, after_loading = 0;
    auto until = Clock::now() + 60s;
    int i = 100;
    while (Clock::now() < until && after_loading < 5) {
        bool was_loading = redis.loading();
        auto r = api.call_json("POST", "/api/v1/mq/publish", publish_body(i++), token);
        check_try_again_answer(r);
        if (r.status == 201) {
            ++accepted;
            if (!was_loading) ++after_loading;
        } else if (r.status == 503) {
            ++unavailable;
        } else {
            ++others;
        }
    }
    INFO("503: " << unavailable << ", other: " << others
                 << ", 201 after loading: " << after_loading);
    CHECK(unavailable > 0);
    CHECK(others == 0);
    CHECK(after_loading == 5);
    // Every publish answered 201 is in the stream: the ones before the restart (saved) and
    // the ones after loading; none of the refused ones.
    CHECK(stream_length(redis, api, t.tenant()) == accepted);
    CHECK(api.log().find("LOADING") != std::string::npos);  // the reason went to the log
}

TEST_CASE("a script keeping Redis BUSY gives 503 with Retry-After in mq-api and exit 5 in mqctl",
          "[security][redis][busy]") {
    RestartableRedis redis;
    TenantScope t;
    ApiOptions options;
    options.redis_url = redis.url();
    options.env["MAINTENANCE"] = "off";
    ApiProcess api(options);
    auto token = create_token(t.tenant(), "tenant-admin", "ops");
    REQUIRE(api.call_json("POST", "/api/v1/mq/queues", {{"name", "q"}}, token).status == 201);
    REQUIRE(api.call_json("POST", "/api/v1/mq/publish", publish_body(0), token).status == 201);

    REQUIRE(run_shell(redis.cli("config set busy-reply-threshold 50 >/dev/null")) == 0);
    // A script that runs until SCRIPT KILL (read-only, so it can be killed).
    pid_t busy = fork();
    REQUIRE(busy >= 0);
    if (busy == 0) {
        execlp("redis-cli", "redis-cli", "-h", "127.0.0.1", "-p",
               std::to_string(redis.port()).c_str(), "eval", "while true do end", "0",
               static_cast<char*>(nullptr));
        _exit(127);
    }
    REQUIRE(eventually([&] { return run_shell(redis.cli("ping") + " | grep -q BUSY") == 0; }, 10s));
    int unavailable = 0;
    for (int i = 1; i <= 5; ++i) {
        auto r = api.call_json("POST", "/api/v1/mq/publish", publish_body(i), token);
        check_try_again_answer(r);
        unavailable += r.status == 503;
    }
    CHECK(unavailable == 5);
    // A batch: the whole request is refused the same way (nothing stored).
    auto batch =
        api.call_json("POST", "/api/v1/mq/publish/batch",
                      {{"queue", "q"}, {"messages", {{{"payload", 1}}, {{"payload", 2}}}}}, token);
    INFO(batch.body);
    CHECK(batch.status != 500);
    if (batch.status == 200) {
        const auto body = batch.json();  // iterated below: keep it alive
        for (const auto& item : body["results"])
            CHECK(item["error"]["code"] == "MQ_BACKEND_UNAVAILABLE");
    }

    // mqctl: exit 5, "backend unavailable".
    auto run = mqctl({"--tenant", t.tenant(), "publish", "q", "{}"},
                     {{"REDIS_URL", redis.url()}, {"REDIS_KEY_PREFIX", api.key_prefix()}});
    INFO(run.out << run.err);
    CHECK(run.status == 5);

    REQUIRE(run_shell(redis.cli("script kill >/dev/null")) == 0);
    int status = 0;
    waitpid(busy, &status, 0);
    auto ok = api.call_json("POST", "/api/v1/mq/publish", publish_body(9), token);
    INFO(ok.body);
    CHECK(ok.status == 201);
    // The five refused publishes and the batch stored nothing: 2 entries, not 9.
    CHECK(stream_length(redis, api, t.tenant()) == 2);
}

TEST_CASE("publishes to a Redis out of memory (noeviction) answer 503 and never 500",
          "[security][redis][oom]") {
    RestartableRedis redis;
    TenantScope t;
    ApiOptions options;
    options.redis_url = redis.url();
    options.env["MAINTENANCE"] = "off";
    ApiProcess api(options);
    auto token = create_token(t.tenant(), "tenant-admin", "ops");
    REQUIRE(api.call_json("POST", "/api/v1/mq/queues", {{"name", "q"}}, token).status == 201);
    REQUIRE(api.call_json("POST", "/api/v1/mq/publish", publish_body(0), token).status == 201);
    // maxmemory just above what is used now: a few large publishes fill it.
    mq::redis::Connection c(mq::redis::parse_url(redis.url()));
    auto info = c.command({"INFO", "memory"}).as_string();
    auto at = info.find("used_memory:");
    REQUIRE(at != std::string::npos);
    auto used = std::stoll(info.substr(at + 12));
    c.command({"CONFIG", "SET", "maxmemory", std::to_string(used + 512 * 1024)});

    const std::string big(100 * 1024, 'x');
    int accepted = 1, unavailable = 0;
    for (int i = 0; i < 40 && unavailable < 3; ++i) {
        auto r =
            api.call_json("POST", "/api/v1/mq/publish", {{"queue", "q"}, {"payload", big}}, token);
        check_try_again_answer(r);
        if (r.status == 201) ++accepted;
        if (r.status == 503) ++unavailable;
    }
    CHECK(unavailable == 3);
    c.command({"CONFIG", "SET", "maxmemory", "0"});
    auto ok = api.call_json("POST", "/api/v1/mq/publish", publish_body(1), token);
    CHECK(ok.status == 201);
    CHECK(stream_length(redis, api, t.tenant()) == accepted + 1);
}
