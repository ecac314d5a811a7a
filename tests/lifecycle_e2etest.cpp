// mq-worker's signals and probes (docs/operations.md, "Signals and health"): SIGHUP
// re-reads the worker file and reconciles its subscriptions through the running
// supervisor (added ones start, removed ones stop, changed ones drain and start again,
// unchanged ones run on; deliveries in flight finish exactly once); a file that does not
// load, or declares what cannot be declared, is logged and the running configuration
// stays; settings that cannot change are logged as needing a restart. /livez and /readyz
// on the metrics port: ready while Redis answers, whatever PostgreSQL does.
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "api_process.hpp"
#include "child_process.hpp"
#include "harness.hpp"
#include "mq/publish/publisher.hpp"
#include "private_services.hpp"

using namespace std::chrono_literals;
using mqtest::eventually;
using nlohmann::json;

namespace {

// `mq-worker --config FILE --metrics-port P` on the fixture's services (or those `env`
// names), started once /livez answers; SIGKILLed if still running at the end.
class Worker : public mqtest::ChildProcess {
  public:
    explicit Worker(const std::string& config, const mqtest::Env& env = {})
        : port_(mqtest::dead_port()) {
        start(MQ_WORKER_PATH,
              {"--config", config, "--metrics-port", std::to_string(port_), "--consumer-name",
               "reloading"},
              mqtest::service_env(env));
        REQUIRE(eventually([&] { return get("/livez").status == 200 || !alive(); }, 20s));
        INFO(log());
        REQUIRE(alive());
    }
    void signal(int sig) { REQUIRE(ChildProcess::signal(sig)); }
    mqtest::HttpResult get(const std::string& target) {
        return mqtest::http_request(port_, "GET", target, "", {}, 5s);
    }

  private:
    int port_;
};

std::vector<std::string> lines_of(const std::string& path) {
    std::vector<std::string> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back(line);
    return out;
}

// A tenant, a key prefix, queue `jobs`, and a worker file at one path that a test rewrites.
struct ReloadFixture {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    std::string dir = "/tmp/" + mqtest::unique_name("mq-reload");
    std::string path = dir + "/worker.yaml";
    mq::Queue q;

    ReloadFixture() {
        std::filesystem::create_directories(dir);
        mq::QueueSpec spec;
        spec.name = "jobs";
        q = ts.catalog().create_queue(ts.tenant(), spec, mq::Config{});
    }
    ~ReloadFixture() { std::filesystem::remove_all(dir); }

    void write(const std::string& subscriptions, const std::string& extra = "") {
        std::ofstream(path, std::ios::trunc)
            << "tenant: " << ts.tenant() << "\nredis_key_prefix: \"" << rs.prefix()
            << "\"\nshutdown_timeout: 10s\n"
            << extra << "subscriptions:\n"
            << subscriptions;
    }
    std::string started(const std::string& name) const { return dir + "/" + name + ".started"; }
    std::string done(const std::string& name) const { return dir + "/" + name + ".done"; }
    // An exec subscription that notes each message id when it starts and when it finishes,
    // `sleep` seconds apart.
    std::string exec_sub(const std::string& name, const std::string& sleep = "0",
                         int concurrency = 2) const {
        return "  - queue: jobs\n    name: " + name +
               "\n    start_from: earliest\n    concurrency: " + std::to_string(concurrency) +
               "\n    visibility_timeout: 20s\n    retry: {max_attempts: 3, initial_backoff: "
               "100ms}\n    handler:\n      type: exec\n      command: [\"/bin/sh\", \"-c\", "
               "\"echo $MQ_MESSAGE_ID >> " +
               started(name) + "; sleep " + sleep + "; echo $MQ_MESSAGE_ID >> " + done(name) +
               "\"]\n      timeout: 15s\n";
    }
    std::string publish() {
        mq::Publisher pub(rs.redis(), rs.keys());
        mq::PublishRequest r;
        r.payload = "job";
        return pub.publish(q, r).message_id;
    }
    bool has(const std::string& file, const std::string& id) {
        auto v = lines_of(file);
        return std::count(v.begin(), v.end(), id) >= 1;
    }
    long times(const std::string& file, const std::string& id) {
        auto v = lines_of(file);
        return std::count(v.begin(), v.end(), id);
    }
};

}  // namespace

TEST_CASE("sighup_starts_added_stops_removed_restarts_changed_and_in_flight_deliveries_finish_once",
          "[worker][lifecycle]") {
    ReloadFixture f;
    f.write(f.exec_sub("steady", "2") + f.exec_sub("tuned", "2") + f.exec_sub("gone"));
    Worker w(f.path);
    REQUIRE(eventually([&] { return w.get("/readyz").status == 200; }, 10s));
    auto first = f.publish();
    // Both slow handlers hold the message now; `gone` has finished it.
    REQUIRE(eventually(
        [&] {
            return f.has(f.started("steady"), first) && f.has(f.started("tuned"), first) &&
                   f.has(f.done("gone"), first);
        },
        10s));
    CHECK_FALSE(f.has(f.done("steady"), first));

    // steady as it was, tuned with another concurrency, gone removed, fresh added.
    f.write(f.exec_sub("steady", "2") + f.exec_sub("tuned", "2", 3) + f.exec_sub("fresh"));
    w.signal(SIGHUP);
    REQUIRE(eventually([&] { return w.count_in_log("SIGHUP: reloaded") == 1; }, 10s));
    INFO(w.log());
    CHECK(w.log().find("1 subscription(s) added (jobs/fresh), 1 changed (jobs/tuned), 1 "
                       "removed (jobs/gone), 1 unchanged") != std::string::npos);
    CHECK(w.alive());

    // The deliveries in flight finish, once each; the changed runner drained before its
    // restart, so nothing was handed out again.
    REQUIRE(eventually(
        [&] { return f.has(f.done("steady"), first) && f.has(f.done("tuned"), first); }, 10s));
    CHECK(eventually([&] { return f.has(f.done("fresh"), first); }, 10s));  // fresh started
    CHECK(eventually(
        [&] {
            return w.log().find(
                       "/jobs/gone: deleted or no longer to be run "
                       "here") != std::string::npos;
        },
        5s));
    CHECK(eventually(
        [&] { return w.log().find("/jobs/tuned: settings or queue changed") != std::string::npos; },
        5s));

    // The next message reaches steady, tuned and fresh, never gone.
    auto second = f.publish();
    REQUIRE(eventually(
        [&] {
            return f.has(f.done("steady"), second) && f.has(f.done("tuned"), second) &&
                   f.has(f.done("fresh"), second);
        },
        15s));
    std::this_thread::sleep_for(300ms);
    CHECK_FALSE(f.has(f.started("gone"), second));
    for (const char* name : {"steady", "tuned"}) {
        INFO(name);
        CHECK(f.times(f.started(name), first) == 1);
        CHECK(f.times(f.done(name), first) == 1);
    }
    CHECK(w.get("/readyz").status == 200);
    // SIGTERM still drains and exits 0.
    CHECK(w.terminate() == 0);
}

TEST_CASE("a_broken_worker_file_on_sighup_is_logged_and_the_running_configuration_stays",
          "[worker][lifecycle]") {
    ReloadFixture f;
    f.write(f.exec_sub("keeper"));
    Worker w(f.path);
    REQUIRE(eventually([&] { return w.get("/readyz").status == 200; }, 10s));

    auto reload_failed = [&](std::size_t n) {
        return eventually(
            [&] { return w.count_in_log("SIGHUP: reload of " + f.path + " failed") == n; }, 10s);
    };
    // Not YAML at all.
    std::ofstream(f.path, std::ios::trunc) << "subscriptions: [ {queue: jobs\n";
    w.signal(SIGHUP);
    REQUIRE(reload_failed(1));
    // YAML the schema refuses (file:line named).
    f.write("  - queue: jobs\n    name: bad\n    handler: {type: carrier-pigeon}\n");
    w.signal(SIGHUP);
    REQUIRE(reload_failed(2));
    CHECK(w.log().find(f.path + ":") != std::string::npos);
    // Valid, but naming a queue that does not exist: nothing of it is declared.
    f.write(f.exec_sub("keeper") +
            "  - queue: nowhere\n    name: lost\n    handler: {type: exec, "
            "command: [\"/bin/true\"]}\n");
    w.signal(SIGHUP);
    REQUIRE(reload_failed(3));
    INFO(w.log());
    CHECK(w.alive());
    CHECK(w.count_in_log("SIGHUP: reloaded") == 0);
    CHECK(f.ts.db().transact([&](pqxx::work& tx) {
        return tx
            .exec_params1(
                "SELECT count(*) FROM message_subscriptions WHERE tenant_id = $1 AND "
                "name = 'lost'",
                f.ts.tenant())[0]
            .as<int>();
    }) == 0);

    // The old configuration runs on.
    auto id = f.publish();
    CHECK(eventually([&] { return f.has(f.done("keeper"), id); }, 10s));
    CHECK(w.get("/readyz").status == 200);

    // What a running worker cannot change is logged as needing a restart; the level applies.
    f.write(f.exec_sub("keeper"), "log_level: debug\nmaintenance: false\n");
    w.signal(SIGHUP);
    REQUIRE(eventually([&] { return w.count_in_log("SIGHUP: reloaded") == 1; }, 10s));
    CHECK(w.log().find("MAINTENANCE changed in " + f.path + ": needs a restart") !=
          std::string::npos);
    CHECK(w.log().find("SIGHUP: log level is now debug") != std::string::npos);
    auto again = f.publish();
    CHECK(eventually([&] { return f.has(f.done("keeper"), again); }, 10s));
    CHECK(w.get("/livez").status == 200);
    CHECK(w.terminate() == 0);
}

TEST_CASE("worker_readyz_follows_redis_not_postgres_and_livez_stays_200",
          "[worker][lifecycle][health]") {
    mqtest::PrivateServices svc;
    const std::map<std::string, std::string> env{{"REDIS_URL", svc.redis_url()},
                                                 {"DATABASE_URL", svc.database_url()}};
    auto tenant = mqtest::unique_name("probe");
    REQUIRE(mqtest::mqctl({"db", "migrate"}, env).status == 0);
    REQUIRE(mqtest::mqctl({"tenant", "create", tenant}, env).status == 0);
    REQUIRE(mqtest::mqctl({"--tenant", tenant, "queue", "create", "jobs"}, env).status == 0);
    auto dir = mqtest::make_private_dir();
    auto path = dir + "/worker.yaml";
    std::ofstream(path) << "tenant: " << tenant
                        << "\nsubscriptions:\n  - queue: jobs\n    name: probe\n    handler: "
                           "{type: exec, command: [\"/bin/true\"]}\n";
    Worker w(path, env);
    auto ready = w.get("/readyz");
    CHECK(ready.status == 200);
    CHECK(ready.json() == json{{"status", "ready"}});
    CHECK(w.get("/livez").json() == json{{"status", "alive"}});

    svc.stop_postgres();
    std::this_thread::sleep_for(1200ms);  // past the PING cache
    CHECK(w.get("/readyz").status == 200);

    auto url = svc.redis_url();
    auto port = url.substr(url.rfind(':') + 1);
    port = port.substr(0, port.find('/'));
    mqtest::run_shell("redis-cli -h 127.0.0.1 -p " + port + " shutdown nosave >/dev/null 2>&1");
    REQUIRE(eventually([&] { return !mqtest::redis_answers(std::stoi(port)); }, 10s));
    mqtest::HttpResult not_ready;
    CHECK(eventually(
        [&] {
            not_ready = w.get("/readyz");
            return not_ready.status == 503;
        },
        5s));
    CHECK(not_ready.json() == json{{"status", "not_ready"}, {"reason", "redis_unreachable"}});
    CHECK(w.get("/livez").status == 200);
    CHECK(w.alive());
    std::filesystem::remove_all(dir);
}
