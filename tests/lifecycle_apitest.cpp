// mq-api's signals and probes (docs/operations.md, "Signals and health"): SIGHUP keeps it
// serving and reloads what it can (a TLS certificate replaced on disk is served to new
// connections; a broken certificate or file is logged and the running one stays; a setting
// that cannot change is logged as needing a restart); /livez and /readyz answer without a
// token, /readyz caches its Redis PING; with PostgreSQL down /readyz and
// /api/v1/mq/health answer 200 ("degraded"), with Redis down 503 while /livez stays 200.
#include <signal.h>
#include <sys/wait.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"
#include "private_services.hpp"
#include "test_ca.hpp"

using namespace mqtest;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

/// curl over HTTPS to `host`:port (resolved to 127.0.0.1) + target, verified against `ca`.
/// Returns curl's exit code (0: verified and answered; 60: certificate refused).
int curl_https(const std::string& ca, const std::string& host, int port,
               const std::string& target) {
    const std::string p = std::to_string(port);
    std::string cmd = "curl -sS -o /dev/null --max-time 10 --cacert '" + ca + "' --resolve '" +
                      host + ":" + p + ":127.0.0.1' 'https://" + host + ":" + p + target +
                      "' >/dev/null 2>&1";
    int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void copy_file(const std::string& from, const std::string& to) {
    std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
}

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("sighup_keeps_mq_api_serving_and_new_connections_get_a_replaced_certificate",
          "[api][lifecycle][https]") {
    const TestCa& ca = TestCa::shared();
    const std::string dir = make_private_dir();
    const std::string cert = dir + "/tls.crt";
    const std::string key = dir + "/tls.key";
    const std::string settings = dir + "/mq.yaml";
    copy_file(ca.server_cert(), cert);
    copy_file(ca.server_key(), key);
    std::ofstream(settings) << "max_message_size: 1048576\n";
    ApiOptions options;
    options.env = {{"TLS_CERT_FILE", cert}, {"TLS_KEY_FILE", key}, {"MQ_CONFIG", settings}};
    ApiProcess api(options);
    // The first certificate names 127.0.0.1 and localhost, not elsewhere.example.
    REQUIRE(curl_https(ca.ca_file(), "localhost", api.port(), "/livez") == 0);
    REQUIRE(curl_https(ca.ca_file(), "elsewhere.example", api.port(), "/livez") == 60);

    // A renewed certificate written over the old files, then `systemctl reload`.
    copy_file(ca.elsewhere_cert(), cert);
    copy_file(ca.elsewhere_key(), key);
    REQUIRE(kill(api.pid(), SIGHUP) == 0);
    REQUIRE(eventually([&] { return count_of(api.log(), "SIGHUP: reloaded") == 1; }, 5s));
    INFO(api.log());
    CHECK(api.log().find("TLS certificate " + cert) != std::string::npos);
    CHECK(api.running());
    CHECK(curl_https(ca.ca_file(), "elsewhere.example", api.port(), "/livez") == 0);
    CHECK(curl_https(ca.ca_file(), "localhost", api.port(), "/livez") == 60);

    // A broken certificate: logged, the running one stays, the process serves on.
    std::ofstream(cert, std::ios::trunc) << "not a certificate\n";
    REQUIRE(kill(api.pid(), SIGHUP) == 0);
    REQUIRE(eventually([&] { return api.log().find("SIGHUP: reload failed") != std::string::npos; },
                       5s));
    CHECK(api.log().find("TLS_CERT_FILE") != std::string::npos);
    CHECK(api.running());
    CHECK(curl_https(ca.ca_file(), "elsewhere.example", api.port(), "/readyz") == 0);

    // A broken settings file: the same.
    copy_file(ca.elsewhere_cert(), cert);
    std::ofstream(settings, std::ios::trunc) << "max_message_size: [unclosed\n";
    REQUIRE(kill(api.pid(), SIGHUP) == 0);
    REQUIRE(eventually([&] { return count_of(api.log(), "SIGHUP: reload failed") == 2; }, 5s));
    CHECK(api.log().find(settings) != std::string::npos);
    CHECK(api.running());

    // A setting that cannot change while serving: logged as needing a restart.
    std::ofstream(settings, std::ios::trunc) << "max_message_size: 2048\n";
    REQUIRE(kill(api.pid(), SIGHUP) == 0);
    REQUIRE(eventually([&] { return count_of(api.log(), "SIGHUP: reloaded") == 2; }, 5s));
    CHECK(api.log().find("MAX_MESSAGE_SIZE changed: needs a restart") != std::string::npos);
    CHECK(curl_https(ca.ca_file(), "elsewhere.example", api.port(), "/readyz") == 0);

    // SIGTERM still drains and exits 0.
    CHECK(api.terminate(10s) == 0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("sighup_keeps_plain_http_mq_api_answering_and_a_waiting_long_poll_completes",
          "[api][lifecycle]") {
    ApiSession s;
    REQUIRE(s.api.call_json("POST", "/api/v1/mq/queues", {{"name", "orders"}}, s.token).status ==
            201);
    auto sub = s.api.call_json("POST", "/api/v1/mq/subscriptions",
                               {{"queue", "orders"}, {"name", "reader"}}, s.token);
    REQUIRE(sub.status == 201);
    auto id = sub.json()["id"].get<std::string>();
    // A long poll waits inside mq-api while the reload happens.
    auto pull = std::async(std::launch::async, [&] {
        return s.api.call_json("POST", "/api/v1/mq/subscriptions/" + id + "/pull",
                               {{"wait_ms", 3000}}, s.token);
    });
    std::this_thread::sleep_for(300ms);
    for (int i = 0; i < 3; ++i) REQUIRE(kill(s.api.pid(), SIGHUP) == 0);
    REQUIRE(eventually([&] { return count_of(s.api.log(), "SIGHUP: reloaded") >= 1; }, 5s));
    auto published = s.api.call_json("POST", "/api/v1/mq/publish",
                                     {{"queue", "orders"}, {"payload", {{"n", 1}}}}, s.token);
    INFO(published.body);
    CHECK(published.status == 201);
    auto pulled = pull.get();
    INFO(pulled.body << "\n" << s.api.log());
    CHECK(pulled.status == 200);
    CHECK(pulled.json()["messages"].size() == 1);
    CHECK(s.api.log().find("SIGHUP: reloaded nothing (no change)") != std::string::npos);
    CHECK(s.api.running());
    CHECK(s.api.call("GET", "/livez").status == 200);
    CHECK(s.api.terminate(10s) == 0);
}

TEST_CASE("livez_and_readyz_need_no_token_and_readyz_pings_redis_at_most_once_a_second",
          "[api][lifecycle][health]") {
    PrivateRedis private_redis;  // only this mq-api talks to it: its PINGs can be counted
    ApiOptions options;
    options.redis_url = private_redis.url();
    ApiProcess api(options);
    auto live = api.call("GET", "/livez");
    CHECK(live.status == 200);
    CHECK(live.json() == json{{"status", "alive"}});
    CHECK(live.headers["content-type"] == "application/json");
    auto ready = api.call("GET", "/readyz");
    CHECK(ready.status == 200);
    CHECK(ready.json() == json{{"status", "ready"}});
    CHECK(api.call("POST", "/readyz").status == 405);

    // A probe storm: 200 requests cost Redis about one PING per second, not one per
    // request (INFO commandstats counts the server's PINGs).
    mq::Config config;
    config.redis_url = private_redis.url();
    mq::redis::Connection redis(mq::redis::endpoint_from_config(config));
    auto pings = [&] {
        auto info = redis.command({"INFO", "commandstats"}).as_string();
        auto at = info.find("cmdstat_ping:calls=");
        return at == std::string::npos ? 0L : std::atol(info.c_str() + at + 19);
    };
    auto before = pings();
    auto t0 = std::chrono::steady_clock::now();
    int ok = 0;
    for (int i = 0; i < 200; ++i) ok += api.call("GET", "/readyz").status == 200;
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(ok == 200);
    INFO("200 probes in " << took << " s");
    CHECK(pings() - before <= static_cast<long>(took) + 2);
}

TEST_CASE("readyz_and_health_stay_200_while_postgres_is_down_and_fail_while_redis_is_down",
          "[api][lifecycle][health]") {
    PrivateServices svc;
    const std::map<std::string, std::string> env{{"REDIS_URL", svc.redis_url()},
                                                 {"DATABASE_URL", svc.database_url()}};
    REQUIRE(mqctl({"db", "migrate"}, env).status == 0);
    ApiOptions options;
    options.redis_url = svc.redis_url();
    options.database_url = svc.database_url();
    ApiProcess api(options);
    REQUIRE(api.call("GET", "/readyz").status == 200);
    REQUIRE(api.call("GET", "/api/v1/mq/health").status == 200);

    svc.stop_postgres();
    auto health = api.call("GET", "/api/v1/mq/health");
    INFO(health.body);
    CHECK(health.status == 200);
    CHECK(health.json()["status"] == "degraded");
    CHECK(health.json()["checks"]["postgres"]["status"] == "down");
    CHECK(health.json()["checks"]["redis"]["status"] == "ok");
    CHECK(api.call("GET", "/readyz").status == 200);
    CHECK(api.call("GET", "/livez").status == 200);

    // Redis gone as well: not ready (within the PING cache's second), yet alive.
    auto port = svc.redis_url().substr(svc.redis_url().rfind(':') + 1);
    port = port.substr(0, port.find('/'));
    REQUIRE(run_shell("redis-cli -h 127.0.0.1 -p " + port + " shutdown nosave >/dev/null 2>&1") !=
            -1);
    REQUIRE(eventually([&] { return !redis_answers(std::stoi(port)); }, 10s));
    HttpResult not_ready;
    CHECK(eventually(
        [&] {
            not_ready = api.call("GET", "/readyz");
            return not_ready.status == 503;
        },
        3s));
    CHECK(not_ready.json() == json{{"status", "not_ready"}, {"reason", "redis_unreachable"}});
    CHECK(api.call("GET", "/livez").status == 200);
    auto down = api.call("GET", "/api/v1/mq/health");
    CHECK(down.status == 503);
    CHECK(down.json()["status"] == "down");
    CHECK(api.running());
}
