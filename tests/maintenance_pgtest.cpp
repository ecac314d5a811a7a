// The maintenance service in-process against real Redis and PostgreSQL: leases shared by
// two services, takeover after a holder dies without releasing, leases deleted or taken by
// someone else, PostgreSQL down, Redis down and back, one pass that honours running
// instances, and plugged tasks that fail.
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "harness.hpp"
#include "mq/maintenance/service.hpp"
#include "mq/pg/migrations.hpp"
#include "mq/publish/publisher.hpp"
#include "private_services.hpp"

using namespace std::chrono_literals;
using mqtest::eventually;
using Clock = std::chrono::steady_clock;

namespace {

// Short leases so tests run in seconds; the takeover test uses the documented defaults.
mq::MaintenanceOptions fast_options(const std::string& redis_url, const std::string& database_url,
                                    const mq::KeyLayout& keys, const std::string& name) {
    mq::MaintenanceOptions o;
    o.redis = mq::redis::parse_url(redis_url);
    o.database_url = database_url;
    o.keys = keys;
    o.instance = name;
    o.lease_ttl = 2000ms;
    o.lease_renew = 400ms;
    o.mover_interval = 100ms;
    o.archive_interval = 500ms;
    o.queue_refresh = 500ms;
    o.max_backoff = 1000ms;
    return o;
}

mq::MaintenanceOptions fast_options(mqtest::RedisScope& rs, const std::string& name) {
    return fast_options(mqtest::services().redis_url, mqtest::services().database_url, rs.keys(),
                        name);
}

mq::Queue make_queue(mqtest::TenantScope& ts, const std::string& name, int partitions) {
    mq::QueueSpec spec;
    spec.name = name;
    spec.partition_count = partitions;
    return ts.catalog().create_queue(ts.tenant(), spec, mq::Config{});
}

void publish_delayed(mq::redis::Connection& redis, const mq::KeyLayout& keys, const mq::Queue& q,
                     int n, std::chrono::milliseconds delay) {
    mq::Publisher pub(redis, keys);
    std::vector<mq::PublishRequest> batch(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < batch.size(); ++i) {
        batch[i].payload = q.name + "-" + std::to_string(i);
        batch[i].key = std::to_string(i);  // spread over the partitions
        batch[i].delay = delay;
    }
    pub.publish_batch(q, batch);
}

std::int64_t xlen(mq::redis::Connection& redis, const mq::KeyLayout& keys, const mq::Queue& q) {
    std::int64_t n = 0;
    for (int p = 0; p < q.partition_count; ++p)
        n += redis.command({"XLEN", keys.stream(q.tenant, q.name, p)}).as_integer();
    return n;
}

std::int64_t zcard(mq::redis::Connection& redis, const mq::KeyLayout& keys, const mq::Queue& q) {
    std::int64_t n = 0;
    for (int p = 0; p < q.partition_count; ++p)
        n += redis.command({"ZCARD", keys.delayed(q.tenant, q.name, p)}).as_integer();
    return n;
}

// Log lines of every thread, for "logged once per outage".
struct LogCapture {
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink =
        std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(2000);
    LogCapture() { spdlog::default_logger()->sinks().push_back(sink); }
    ~LogCapture() { spdlog::default_logger()->sinks().pop_back(); }
    int count(const std::string& needle) const {
        int n = 0;
        for (const auto& line : sink->last_formatted())
            if (line.find(needle) != std::string::npos) ++n;
        return n;
    }
};

}  // namespace

TEST_CASE("two_services_on_one_redis_split_the_shards_and_move_each_delayed_entry_exactly_once",
          "[maintenance][leases]") {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    std::vector<mq::Queue> queues{make_queue(ts, "a", 4), make_queue(ts, "b", 4),
                                  make_queue(ts, "c", 2)};
    mq::MaintenanceService one(fast_options(rs, "one"));
    mq::MaintenanceService two(fast_options(rs, "two"));
    one.start();
    two.start();
    // Fair shares: 8 shards each once both see each other.
    REQUIRE(eventually(
        [&] {
            auto a = one.stats().leases_held, b = two.stats().leases_held;
            return a + b == mq::kMaintenanceShards && a == 8 && b == 8;
        },
        15s));
    for (int shard = 0; shard < mq::kMaintenanceShards; ++shard)
        CHECK(one.holds(shard) != two.holds(shard));
    CHECK(one.stats().instances == 2);

    for (const auto& q : queues) publish_delayed(rs.redis(), rs.keys(), q, 300, 300ms);
    REQUIRE(eventually(
        [&] {
            std::int64_t n = 0;
            for (const auto& q : queues) n += xlen(rs.redis(), rs.keys(), q);
            return n == 900;
        },
        15s));
    std::this_thread::sleep_for(500ms);  // anything moved twice would show now
    std::set<std::string> ids;
    std::int64_t entries = 0;
    for (const auto& q : queues) {
        CHECK(zcard(rs.redis(), rs.keys(), q) == 0);
        CHECK(xlen(rs.redis(), rs.keys(), q) == 300);
        for (int p = 0; p < q.partition_count; ++p) {
            auto r =
                rs.redis().command({"XRANGE", rs.keys().stream(q.tenant, q.name, p), "-", "+"});
            for (const auto& e : r.elements) {
                ++entries;
                const auto& kv = e.elements.at(1).elements;
                for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
                    if (kv[i].str == "id") ids.insert(kv[i + 1].str);
            }
        }
    }
    CHECK(entries == 900);
    CHECK(ids.size() == 900);
    CHECK(one.stats().moved + two.stats().moved == 900);
}

TEST_CASE("a_holder_that_dies_without_releasing_is_taken_over_within_the_lease_ttl",
          "[maintenance][leases][crash]") {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    auto q = make_queue(ts, "reminders", 2);
    // The documented numbers: TTL 5 s, renewed every second.
    auto crashed_options = fast_options(rs, "crashed");
    crashed_options.lease_ttl = 5000ms;
    crashed_options.lease_renew = 1000ms;
    crashed_options.release_on_stop = false;  // as kill -9 would leave it
    auto survivor_options = crashed_options;
    survivor_options.instance = "survivor";
    survivor_options.release_on_stop = true;

    auto crashed = std::make_unique<mq::MaintenanceService>(crashed_options);
    crashed->start();
    REQUIRE(
        eventually([&] { return crashed->stats().leases_held == mq::kMaintenanceShards; }, 10s));
    crashed->stop();  // threads gone, leases left in Redis
    crashed.reset();

    mq::MaintenanceService survivor(survivor_options);
    survivor.start();
    const auto died = Clock::now();
    publish_delayed(rs.redis(), rs.keys(), q, 20, 1ms);
    std::this_thread::sleep_for(1500ms);
    // Nobody works the dead holder's shards until its leases expire.
    CHECK(survivor.stats().leases_held == 0);
    CHECK(zcard(rs.redis(), rs.keys(), q) == 20);

    REQUIRE(eventually([&] { return xlen(rs.redis(), rs.keys(), q) == 20; }, 15s));
    const double took = std::chrono::duration<double>(Clock::now() - died).count();
    INFO("taken over after " << took << " s");
    CHECK(took < 8.0);  // TTL 5 s + one renew interval + a mover pass
    CHECK(survivor.stats().leases_held == mq::kMaintenanceShards);
}

TEST_CASE("a_lease_overwritten_by_someone_else_stops_that_shard_at_once_and_is_never_deleted",
          "[maintenance][leases][hostile]") {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    auto q = make_queue(ts, "orders", 1);
    mq::MaintenanceService s(fast_options(rs, "victim"));
    s.start();
    REQUIRE(eventually([&] { return s.stats().leases_held == mq::kMaintenanceShards; }, 10s));

    const int shard = mq::maintenance_shard(ts.tenant(), "orders");
    const std::string key = rs.keys().maintenance_lease(shard);
    rs.redis().command({"SET", key, "intruder", "PX", "3000"});
    REQUIRE(eventually([&] { return !s.holds(shard); }, 2s));
    CHECK(s.stats().lease_losses >= 1);
    CHECK(s.stats().leases_held == mq::kMaintenanceShards - 1);

    publish_delayed(rs.redis(), rs.keys(), q, 5, 1ms);
    std::this_thread::sleep_for(1000ms);
    CHECK(zcard(rs.redis(), rs.keys(), q) == 5);  // not this holder's shard any more
    CHECK(rs.redis().command({"GET", key}).str == "intruder");

    // The intruder's lease expires: the shard comes back and its work resumes.
    REQUIRE(eventually([&] { return xlen(rs.redis(), rs.keys(), q) == 5; }, 8s));
    CHECK(s.holds(shard));
}

TEST_CASE("a_deleted_lease_is_taken_back_and_the_work_goes_on", "[maintenance][leases][hostile]") {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    auto q = make_queue(ts, "orders", 2);
    mq::MaintenanceService s(fast_options(rs, "owner"));
    s.start();
    REQUIRE(eventually([&] { return s.stats().leases_held == mq::kMaintenanceShards; }, 10s));
    const int shard = mq::maintenance_shard(ts.tenant(), "orders");
    rs.redis().command({"DEL", rs.keys().maintenance_lease(shard)});
    REQUIRE(eventually([&] { return s.stats().lease_losses >= 1; }, 3s));
    REQUIRE(eventually([&] { return s.holds(shard); }, 3s));
    CHECK(rs.redis().command({"GET", rs.keys().maintenance_lease(shard)}).str == s.owner());
    publish_delayed(rs.redis(), rs.keys(), q, 10, 1ms);
    CHECK(eventually([&] { return xlen(rs.redis(), rs.keys(), q) == 10; }, 5s));
}

TEST_CASE("postgresql_down_keeps_the_last_queue_list_and_delayed_messages_still_move",
          "[maintenance][outage]") {
    mqtest::PrivateServices ps;
    mq::pg::Database db(ps.database_url());
    mq::pg::migrate(db, mq::pg::embedded_migrations());
    mq::Catalog catalog(db);
    catalog.create_tenant("acme", "Acme", true);
    mq::QueueSpec spec;
    spec.name = "orders";
    spec.partition_count = 2;
    auto q = catalog.create_queue("acme", spec, mq::Config{});
    mq::KeyLayout keys("mq:");
    mq::redis::Connection redis(mq::redis::parse_url(ps.redis_url()));

    LogCapture log;
    mq::MaintenanceService s(fast_options(ps.redis_url(), ps.database_url(), keys, "pg-outage"));
    s.start();
    REQUIRE(eventually(
        [&] { return s.stats().queues == 1 && s.stats().leases_held == mq::kMaintenanceShards; },
        10s));

    ps.stop_postgres();
    publish_delayed(redis, keys, q, 10, 200ms);
    CHECK(eventually([&] { return xlen(redis, keys, q) == 10; }, 5s));
    REQUIRE(eventually([&] { return !s.stats().postgres_available; }, 5s));
    std::this_thread::sleep_for(1500ms);  // several failed refreshes
    publish_delayed(redis, keys, q, 5, 1ms);
    CHECK(eventually([&] { return xlen(redis, keys, q) == 15; }, 5s));
    CHECK(log.count("PostgreSQL at " + mq::pg::describe_url(ps.database_url()) + " unavailable") ==
          1);  // once per outage

    ps.start_postgres();
    CHECK(eventually([&] { return s.stats().postgres_available; }, 15s));
    CHECK(log.count("PostgreSQL at " + mq::pg::describe_url(ps.database_url()) + " is back") == 1);
}

TEST_CASE("redis_down_then_back_recovers_without_a_restart_and_logs_once",
          "[maintenance][outage]") {
    mqtest::PrivateRedis pr;
    mqtest::TenantScope ts;
    auto q = make_queue(ts, "orders", 2);
    mq::KeyLayout keys(mqtest::unique_name("mt") + ":");
    LogCapture log;
    mq::MaintenanceService s(
        fast_options(pr.url(), mqtest::services().database_url, keys, "redis-outage"));
    s.start();
    REQUIRE(eventually(
        [&] { return s.stats().leases_held == mq::kMaintenanceShards && s.stats().queues > 0; },
        10s));
    {
        mq::redis::Connection redis(mq::redis::parse_url(pr.url()));
        publish_delayed(redis, keys, q, 3, 1ms);
        REQUIRE(eventually([&] { return xlen(redis, keys, q) == 3; }, 5s));
    }

    pr.stop();
    REQUIRE(eventually([&] { return !s.stats().redis_available; }, 5s));
    std::this_thread::sleep_for(3000ms);  // many ticks of every thread while it is down
    CHECK(s.stats().leases_held == 0);    // local validity ran out: no work without a lease
    const std::string down = "Redis at 127.0.0.1:" + std::to_string(pr.port()) + " unavailable";
    CHECK(log.count(down) == 1);

    pr.start();  // empty: no AOF
    mq::redis::Connection redis(mq::redis::parse_url(pr.url()));
    publish_delayed(redis, keys, q, 10, 1ms);
    CHECK(eventually([&] { return xlen(redis, keys, q) == 10; }, 10s));
    CHECK(s.stats().redis_available);
    CHECK(log.count(down) == 1);
    CHECK(log.count("Redis at 127.0.0.1:" + std::to_string(pr.port()) + " is back") == 1);
}

TEST_CASE("run_once_skips_shards_a_running_instance_holds_and_works_them_once_it_is_gone",
          "[maintenance][once]") {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    auto q = make_queue(ts, "orders", 2);
    const int shard = mq::maintenance_shard(ts.tenant(), "orders");
    auto running = std::make_unique<mq::MaintenanceService>(fast_options(rs, "running"));
    running->start();
    REQUIRE(
        eventually([&] { return running->stats().leases_held == mq::kMaintenanceShards; }, 10s));

    mq::MaintenanceService cron(fast_options(rs, "cron"));
    auto pass = cron.run_once();
    CHECK(pass.queues >= 1);
    CHECK(std::count(pass.shards_skipped.begin(), pass.shards_skipped.end(), shard) == 1);
    CHECK(std::count(pass.shards_done.begin(), pass.shards_done.end(), shard) == 0);
    CHECK(pass.queues_skipped >= 1);
    CHECK(pass.moved == 0);

    running.reset();  // stops and releases
    for (int i = 0; i < mq::kMaintenanceShards; ++i)
        CHECK(rs.redis().command({"EXISTS", rs.keys().maintenance_lease(i)}).as_integer() == 0);
    publish_delayed(rs.redis(), rs.keys(), q, 7, 1ms);
    std::this_thread::sleep_for(20ms);
    pass = cron.run_once();
    CHECK(std::count(pass.shards_done.begin(), pass.shards_done.end(), shard) == 1);
    CHECK(pass.shards_skipped.empty());
    CHECK(pass.moved == 7);
    CHECK(xlen(rs.redis(), rs.keys(), q) == 7);
    // Its leases were released after the pass.
    CHECK(rs.redis().command({"EXISTS", rs.keys().maintenance_lease(shard)}).as_integer() == 0);
}

TEST_CASE("plugged_tasks_run_under_the_leases_and_a_failing_task_never_stops_the_service",
          "[maintenance][tasks]") {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    auto good = make_queue(ts, "good", 1);
    auto bad = make_queue(ts, "bad", 1);
    std::atomic<int> good_calls{0}, global_one{0}, global_two{0};
    auto setup = [&](mq::MaintenanceService& s, std::atomic<int>& global) {
        s.add_queue_task("probe", 100ms,
                         [&, tenant = ts.tenant()](mq::redis::Connection& r, const mq::Queue& q) {
                             if (q.tenant != tenant) return;
                             if (q.name == "bad")
                                 throw mq::Error(mq::ErrorCode::kInternal, "this queue is broken");
                             r.command({"PING"});
                             ++good_calls;
                         });
        s.add_global_task("global", 100ms, [&](mq::redis::Connection&, mq::pg::Database& db) {
            db.transact([](pqxx::work& tx) { tx.exec("SELECT 1"); });
            ++global;
        });
    };
    mq::MaintenanceService one(fast_options(rs, "one"));
    mq::MaintenanceService two(fast_options(rs, "two"));
    setup(one, global_one);
    setup(two, global_two);
    one.start();
    REQUIRE(eventually([&] { return global_one > 0; }, 5s));
    two.start();
    REQUIRE(eventually([&] { return good_calls > 5; }, 5s));
    std::this_thread::sleep_for(1500ms);
    CHECK(global_two == 0);  // one global lease, one holder
    CHECK(global_one > 5);

    auto find = [](const mq::MaintenanceStats& st, const std::string& name) {
        for (const auto& t : st.tasks)
            if (t.name == name) return t;
        return mq::MaintenanceTaskStats{};
    };
    auto st = one.stats();
    auto st2 = two.stats();
    CHECK(find(st, "probe").errors + find(st2, "probe").errors > 0);  // the bad queue, counted
    CHECK(find(st, "probe").runs + find(st2, "probe").runs > 5);      // and the passes go on
    CHECK(find(st, "delayed-mover").last_run_ms > 0);
    CHECK(find(st, "dead-letter-archive").last_run_ms > 0);
    CHECK(st.task_errors + st2.task_errors > 0);

    // The other tasks keep working next to the failing one.
    publish_delayed(rs.redis(), rs.keys(), good, 4, 1ms);
    publish_delayed(rs.redis(), rs.keys(), bad, 4, 1ms);
    CHECK(eventually(
        [&] {
            return xlen(rs.redis(), rs.keys(), good) == 4 && xlen(rs.redis(), rs.keys(), bad) == 4;
        },
        5s));

    // Stop is prompt, and releases every lease this instance held.
    const auto t0 = Clock::now();
    one.stop();
    CHECK(Clock::now() - t0 < 2s);
    for (int i = 0; i < mq::kMaintenanceShards; ++i)
        CHECK(rs.redis().command({"GET", rs.keys().maintenance_lease(i)}).str != one.owner());
    CHECK(rs.redis().command({"GET", rs.keys().maintenance_global_lease()}).str != one.owner());
    // The survivor takes the global tasks over.
    CHECK(eventually([&] { return global_two > 0; }, 5s));
}

TEST_CASE("maintenance_options_with_a_renew_interval_not_shorter_than_the_ttl_are_refused",
          "[maintenance][hostile]") {
    mqtest::RedisScope rs;
    auto o = fast_options(rs, "bad");
    o.lease_renew = o.lease_ttl;
    CHECK_THROWS_AS(mq::MaintenanceService(o), mq::ValidationError);
}
