// The transactional outbox as operators run it: `mqctl outbox relay` and mq-worker's relay
// killed with SIGKILL mid-batch (nothing lost, nothing twice), Redis and PostgreSQL going
// away under a running relay, and the mqctl commands around failed rows.
#include <signal.h>

#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "api_process.hpp"
#include "child_process.hpp"
#include "mqctl_shell.hpp"
#include "outbox_db.hpp"
#include "private_services.hpp"

using namespace std::chrono_literals;
using mqtest::eventually;

namespace {

// A long-running relay (mqctl outbox relay, mq-worker) on the fixture's services plus
// `env`, with its output in a file; killed in the destructor if still running.
struct Process : mqtest::ChildProcess {
    Process(std::vector<std::string> argv, const mqtest::Env& env) {
        const std::string path = argv.front();
        argv.erase(argv.begin());
        start(path, argv, mqtest::service_env(env));
    }
};

class Shell : public mqtest::MqctlShell {
  public:
    mqtest::ServiceDatabase service;

    std::vector<std::string> relay_argv() {
        return {mqtest::mqctl_path(), "--tenant", tenant(), "--key-prefix",
                redis_.prefix(),      "outbox",   "relay",  "--outbox-url",
                service.url()};
    }
    std::vector<std::string> payloads(const std::string& queue, int partitions = 1) {
        std::vector<std::string> out;
        for (const auto& m :
             mqtest::stream_messages(redis_.redis(), redis_.keys(), tenant(), queue, partitions))
            out.push_back(m.payload);
        return out;
    }
    void require_exactly_once(const std::string& queue, int partitions, int n) {
        auto got = payloads(queue, partitions);
        std::set<std::string> distinct(got.begin(), got.end());
        CHECK(distinct.size() == static_cast<std::size_t>(n));
        CHECK(got.size() == static_cast<std::size_t>(n));  // none twice
    }
};

}  // namespace

TEST_CASE_METHOD(Shell, "outbox_relay_killed_mid_batch_loses_nothing_and_publishes_nothing_twice",
                 "[outbox][e2e]") {
    create_queue({"orders", "--partitions", "3"});
    const int n = 3000;
    service.enqueue_n("orders", n);
    std::map<std::string, std::string> env{{"OUTBOX_BATCH_SIZE", "40"}};
    // Three relays, each killed with SIGKILL while it works through the rows.
    for (int round = 1; round <= 3; ++round) {
        Process relay(relay_argv(), env);
        const std::int64_t target = n - round * 600;
        bool progressed = eventually([&] { return service.rows() <= target; }, 60s);
        INFO(relay.log());
        REQUIRE(progressed);
        relay.kill_now();
    }
    CHECK(service.rows() > 0);
    // A fresh relay finishes the job: rows a killed relay had stored in Redis but not
    // deleted are found duplicates (same idempotency key) and only deleted.
    auto once = run({"-o", "json", "outbox", "relay", "--once", "--outbox-url", service.url()});
    REQUIRE_EXIT(once, 0);
    CHECK(service.rows() == 0);
    require_exactly_once("orders", 3, n);
}

TEST_CASE_METHOD(Shell, "outbox_relay_in_mq_worker_survives_kill_and_exports_metrics",
                 "[outbox][e2e][worker]") {
    create_queue({"orders"});
    const int port = mqtest::dead_port();
    auto config = mqtest::temp_file(
        "outbox_sources:\n  - " + tenant() + "=" + service.url() +
        "\noutbox_batch_size: 25\nmaintenance: off\nmetrics_port: " + std::to_string(port) +
        "\nredis_key_prefix: '" + redis_.prefix() + "'\n");
    service.enqueue_n("orders", 2000);
    {
        Process worker({MQ_WORKER_PATH, "--config", config}, {});
        bool progressed = eventually([&] { return service.rows() <= 1500; }, 60s);
        INFO(worker.log());
        REQUIRE(progressed);
        worker.kill_now();
    }
    Process worker({MQ_WORKER_PATH, "--config", config}, {});
    bool drained = eventually([&] { return service.rows() == 0; }, 60s);
    INFO(worker.log());
    REQUIRE(drained);
    require_exactly_once("orders", 1, 2000);
    // Metrics: what this process relayed, nothing pending.
    std::string body;
    bool seen = eventually(
        [&] {
            auto r = mqtest::http_request(port, "GET", "/metrics");
            body = r.body;
            return r.status == 200 &&
                   body.find("mq_outbox_pending{tenant=\"" + tenant()) != std::string::npos &&
                   body.find("mq_outbox_up{tenant=\"" + tenant()) != std::string::npos;
        },
        10s);
    INFO(body);
    REQUIRE(seen);
    CHECK(body.find("mq_outbox_relayed_total") != std::string::npos);
    CHECK(body.find("mq_outbox_oldest_pending_age_seconds") != std::string::npos);
    CHECK(body.find(service.url()) == std::string::npos);  // host:port/db only
}

TEST_CASE_METHOD(Shell, "outbox_rows_stay_while_redis_is_down_and_the_relay_recovers",
                 "[outbox][e2e][outage]") {
    mqtest::PrivateRedis redis;
    std::map<std::string, std::string> env{{"REDIS_URL", redis.url()},
                                           {"OUTBOX_POLL_INTERVAL", "100ms"}};
    REQUIRE_EXIT(run({"queue", "create", "orders"}, env), 0);
    Process relay(relay_argv(), env);
    service.enqueue_n("orders", 10, "a");
    REQUIRE(eventually([&] { return service.rows() == 0; }, 20s));
    redis.stop();
    service.enqueue_n("orders", 10, "b");
    std::this_thread::sleep_for(1500ms);
    CHECK(service.rows() == 10);  // nothing lost, nothing marked failed
    CHECK(service.failed_rows() == 0);
    CHECK(relay.wait_exit(0ms) == std::nullopt);  // still running
    redis.start();
    bool drained = eventually([&] { return service.rows() == 0; }, 30s);
    INFO(relay.log());
    REQUIRE(drained);
    mq::redis::Connection conn(mq::redis::parse_url(redis.url()));
    auto got = mqtest::stream_messages(conn, redis_.keys(), tenant(), "orders");
    // The private Redis kept no data across the restart: the b-rows arrived after it.
    std::set<std::string> b;
    for (const auto& m : got)
        if (m.payload[0] == 'b') b.insert(m.payload);
    CHECK(b.size() == 10);
    CHECK_THAT(relay.log(), Catch::Contains("retrying with backoff"));
}

TEST_CASE("outbox_relay_keeps_running_while_postgresql_is_down_and_recovers",
          "[outbox][e2e][outage]") {
    mqtest::PrivateServices backends;
    const std::string tenant = "outbox-pg";
    std::map<std::string, std::string> env{{"REDIS_URL", backends.redis_url()},
                                           {"DATABASE_URL", backends.database_url()},
                                           {"OUTBOX_POLL_INTERVAL", "100ms"}};
    REQUIRE_EXIT(mqtest::mqctl({"db", "migrate"}, env), 0);
    REQUIRE_EXIT(mqtest::mqctl({"tenant", "create", tenant}, env), 0);
    REQUIRE_EXIT(mqtest::mqctl({"--tenant", tenant, "queue", "create", "orders"}, env), 0);
    // The outbox of mq's own database (migration 011), relayed by `mqctl outbox relay`.
    Process relay({mqtest::mqctl_path(), "--tenant", tenant, "outbox", "relay"}, env);
    auto enqueue = [&](const std::string& payload) {
        mq::pg::Database db(backends.database_url());
        db.transact(
            [&](pqxx::work& tx) { tx.exec_params("SELECT mq.enqueue('orders', $1)", payload); });
    };
    mq::redis::Connection redis(mq::redis::parse_url(backends.redis_url()));
    mq::KeyLayout keys("mq:");
    auto count = [&] { return mqtest::stream_messages(redis, keys, tenant, "orders").size(); };
    enqueue("before");
    REQUIRE(eventually([&] { return count() == 1; }, 20s));
    backends.stop_postgres();
    std::this_thread::sleep_for(1500ms);
    CHECK(relay.wait_exit(0ms) == std::nullopt);  // rode out the outage
    backends.start_postgres();
    enqueue("after");
    bool delivered = eventually([&] { return count() == 2; }, 30s);
    INFO(relay.log());
    REQUIRE(delivered);
    // SIGTERM stops it cleanly (and flushes its log).
    relay.signal(SIGTERM);
    const auto status = relay.wait_exit(10s);
    INFO(relay.log());  // with what it wrote last (a sanitizer report, for one)
    CHECK(status == 0);
    CHECK_THAT(relay.log(), Catch::Contains("retrying with backoff"));
    CHECK_THAT(relay.log(), Catch::Contains("relaying again"));
}

TEST_CASE_METHOD(Shell, "mqctl_outbox_install_list_retry_discard_and_their_errors",
                 "[outbox][e2e]") {
    // install into a fresh database, twice (idempotent).
    mqtest::ServiceDatabase other;
    other.exec("DROP SCHEMA mq CASCADE");
    auto list = run({"outbox", "list", "--outbox-url", other.url()});
    REQUIRE_EXIT(list, 3);
    CHECK_THAT(list.err, Catch::Contains("mqctl outbox install"));
    REQUIRE_EXIT(run({"outbox", "install", "--outbox-url", other.url()}), 0);
    REQUIRE_EXIT(run({"outbox", "install", "--outbox-url", other.url()}), 0);
    CHECK(other.rows() == 0);

    create_queue({"orders"});
    service.exec("SELECT mq.enqueue('orders', 'ok')");
    service.exec("SELECT mq.enqueue('missing', 'lost')");
    auto relayed = json_of({"outbox", "relay", "--once", "--outbox-url", service.url()});
    CHECK(relayed["relayed"] == 1);
    CHECK(relayed["failed"] == 1);
    auto failed = json_of({"outbox", "list", "--failed", "--outbox-url", service.url()});
    REQUIRE(failed.size() == 1);
    CHECK(failed[0]["queue"] == "missing");
    CHECK_THAT(failed[0]["last_error"].get<std::string>(), Catch::Contains("MQ_QUEUE_NOT_FOUND"));
    const auto id = std::to_string(failed[0]["id"].get<std::int64_t>());

    // Usage errors: neither ids nor --all, both, a bad id, an id that is not a failed row.
    REQUIRE_EXIT(run({"outbox", "retry", "--outbox-url", service.url()}), 2);
    REQUIRE_EXIT(run({"outbox", "retry", id, "--all", "--outbox-url", service.url()}), 2);
    REQUIRE_EXIT(run({"outbox", "retry", "abc", "--outbox-url", service.url()}), 2);
    REQUIRE_EXIT(run({"outbox", "retry", "999999", "--outbox-url", service.url()}), 3);
    REQUIRE_EXIT(run({"outbox", "list", "--limit", "0", "--outbox-url", service.url()}), 2);

    create_queue({"missing"});
    REQUIRE_EXIT(run({"outbox", "retry", id, "--outbox-url", service.url()}), 0);
    REQUIRE_EXIT(run({"outbox", "relay", "--once", "--outbox-url", service.url()}), 0);
    CHECK(payloads("missing") == std::vector<std::string>{"lost"});

    // discard asks; without a terminal it needs --yes.
    service.exec("SELECT mq.enqueue('orders', 'x', tenant => 'someone-else')");
    REQUIRE_EXIT(run({"outbox", "relay", "--once", "--outbox-url", service.url()}), 0);
    CHECK(service.failed_rows() == 1);
    REQUIRE_EXIT(run({"outbox", "discard", "--all", "--outbox-url", service.url()}), 2);
    CHECK(service.failed_rows() == 1);
    REQUIRE_EXIT(run({"outbox", "discard", "--all", "--yes", "--outbox-url", service.url()}), 0);
    CHECK(service.rows() == 0);

    // Backends down: exit 5, rows untouched.
    service.exec("SELECT mq.enqueue('orders', 'y')");
    auto dead = run({"outbox", "relay", "--once", "--outbox-url", service.url()},
                    {{"REDIS_URL", "redis://127.0.0.1:" + std::to_string(mqtest::dead_port())}});
    REQUIRE_EXIT(dead, 5);
    CHECK(service.rows() == 1);
    CHECK(service.failed_rows() == 0);
}

TEST_CASE_METHOD(Shell, "mq_worker_runs_an_outbox_relay_from_the_environment_alone",
                 "[outbox][e2e][worker]") {
    create_queue({"orders"});
    service.enqueue_n("orders", 20);
    Process worker({MQ_WORKER_PATH}, {{"OUTBOX_SOURCES", tenant() + "=" + service.url()},
                                      {"REDIS_KEY_PREFIX", redis_.prefix()},
                                      {"MAINTENANCE", "off"},
                                      {"METRICS_PORT", std::to_string(mqtest::dead_port())}});
    bool drained = eventually([&] { return service.rows() == 0; }, 30s);
    INFO(worker.log());
    REQUIRE(drained);
    require_exactly_once("orders", 1, 20);
}

TEST_CASE_METHOD(Shell, "mqctl_outbox_relay_refuses_an_unknown_tenant_and_a_malformed_url_at_once",
                 "[outbox][e2e]") {
    auto unknown = mqtest::mqctl(
        {"--tenant", "no-such-tenant-here", "outbox", "relay", "--outbox-url", service.url()}, {});
    REQUIRE_EXIT(unknown, 3);
    CHECK_THAT(unknown.err, Catch::Contains("no-such-tenant-here"));
    // A URL libpq cannot read: exit 2, and neither its password nor the text is echoed.
    for (const char* url :
         {"postgresql://relay:hunter%zz2@db/orders", "postgresq://relay:hunter2@db/o"}) {
        INFO(url);
        auto bad = run({"outbox", "relay", "--once", "--outbox-url", url});
        REQUIRE_EXIT(bad, 2);
        CHECK(bad.err.find("hunter") == std::string::npos);
        CHECK(bad.out.find("hunter") == std::string::npos);
    }
    auto bad_db =
        run({"queue", "list"}, {{"DATABASE_URL", "postgresql://mq:hunter%zz2@127.0.0.1/mq"}});
    REQUIRE_EXIT(bad_db, 2);
    CHECK(bad_db.err.find("hunter") == std::string::npos);
    CHECK_THAT(bad_db.err, Catch::Contains("DATABASE_URL"));
}

TEST_CASE_METHOD(Shell, "mq_worker_refuses_an_outbox_url_libpq_cannot_read_at_start",
                 "[outbox][e2e][worker]") {
    Process worker({MQ_WORKER_PATH},
                   {{"OUTBOX_SOURCES", tenant() + "=postgresql://relay:hunter%zz2@db/orders"},
                    {"REDIS_KEY_PREFIX", redis_.prefix()},
                    {"MAINTENANCE", "off"},
                    {"METRICS_PORT", std::to_string(mqtest::dead_port())}});
    const auto status = worker.wait_exit(20s);
    INFO(worker.log());
    REQUIRE(status.has_value());
    CHECK(*status == 2);
    CHECK(worker.log().find("hunter") == std::string::npos);
    CHECK_THAT(worker.log(), Catch::Contains("libpq"));
}
