// Cron schedule ticker against real PostgreSQL and Redis: one message per tick across
// tickers and restarts, missed ticks (once/skip), pause, backend outages, deleted queues
// and hostile input. Time is simulated: run_due(now) takes the clock as an argument.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <set>
#include <thread>

#include "harness.hpp"
#include "mq/core/message.hpp"
#include "mq/core/time.hpp"
#include "mq/schedule/schedule_catalog.hpp"
#include "mq/schedule/ticker.hpp"

using Clock = std::chrono::system_clock;
using namespace std::chrono_literals;

namespace {

Clock::time_point at(const std::string& rfc3339) {
    return Clock::time_point(std::chrono::milliseconds(mq::parse_rfc3339(rfc3339)));
}
std::int64_t ms(const std::string& rfc3339) { return mq::parse_rfc3339(rfc3339); }

int shell(const std::string& command) {
    int rc = std::system(command.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/// A tenant with queue "jobs", a Redis prefix, and schedules created at a fixed time.
struct Env {
    mqtest::TenantScope t;
    mqtest::RedisScope r;
    mq::Queue queue;

    explicit Env(mq::QueueSpec spec = named("jobs")) {
        queue = t.catalog().create_queue(t.tenant(), spec, mq::Config{});
    }
    static mq::QueueSpec named(const std::string& name) {
        mq::QueueSpec s;
        s.name = name;
        return s;
    }
    mq::TickerOptions options() const {
        mq::TickerOptions o;
        o.only_tenant = t.tenant();
        return o;
    }
    mq::ScheduleTicker ticker(mq::pg::Database& db, mq::redis::Connection& redis) {
        return mq::ScheduleTicker(db, redis, r.keys(), options());
    }
    mq::ScheduleTicker ticker() { return ticker(t.db(), r.redis()); }

    mq::Schedule create(const std::string& name, const std::string& cron,
                        const std::string& created_at, const std::string& misfire = "once",
                        const std::string& tz = "UTC") {
        mq::ScheduleSpec s;
        s.name = name;
        s.queue = queue.name;
        s.cron = cron;
        s.tz = tz;
        s.payload = "{\"job\":\"" + name + "\"}";
        s.content_type = "application/json";
        s.key = "k-" + name;
        s.headers = {{"origin", "test"}};
        s.misfire = misfire;
        return mq::create_schedule(t.db(), t.tenant(), s, {}, ms(created_at));
    }
    mq::Schedule get(const std::string& name) {
        return mq::ScheduleCatalog(t.db()).get(t.tenant(), name);
    }

    /// Every message in the queue's stream(s), in order.
    std::vector<mq::Message> messages() {
        std::vector<mq::Message> out;
        for (int p = 0; p < queue.partition_count; ++p) {
            auto reply =
                r.redis().command({"XRANGE", r.keys().stream(t.tenant(), queue.name, p), "-", "+"});
            for (const auto& entry : reply.elements) {
                mq::FieldList fields;
                const auto& kv = entry.elements.at(1).elements;
                for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
                    fields.emplace_back(kv[i].str, kv[i + 1].str);
                out.push_back(mq::decode_fields(fields));
            }
        }
        return out;
    }
    static nlohmann::json headers(const mq::Message& m) {
        return nlohmann::json::parse(m.headers_json);
    }
};

std::string tick_of(const mq::Message& m) { return Env::headers(m)["mq-schedule-tick"]; }

std::string make_temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mq-pgtest-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    return tmpl;
}

// A redis-server of this test alone, to stop and start again.
class PrivateRedis {
  public:
    PrivateRedis() : port_(mqtest::dead_port()), dir_(make_temp_dir()) { start(); }
    ~PrivateRedis() {
        stop();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    mq::redis::Endpoint endpoint() const {
        return mq::redis::parse_url("redis://127.0.0.1:" + std::to_string(port_) + "/0");
    }
    void start() {
        REQUIRE(
            shell(
                "redis-server --bind 127.0.0.1 --port " + std::to_string(port_) +
                " --save '' --appendonly no --maxmemory-policy noeviction --daemonize yes --dir " +
                dir_ + " --logfile " + dir_ + "/redis.log") == 0);
        for (int i = 0; i < 200 && !answers(); ++i) std::this_thread::sleep_for(50ms);
        REQUIRE(answers());
    }
    void stop() {
        shell(cli() + " shutdown nosave >/dev/null 2>&1");
        for (int i = 0; i < 200 && answers(); ++i) std::this_thread::sleep_for(50ms);
    }

  private:
    std::string cli() const { return "redis-cli -h 127.0.0.1 -p " + std::to_string(port_); }
    bool answers() const { return shell(cli() + " ping 2>/dev/null | grep -q PONG") == 0; }
    int port_;
    std::string dir_;
};

}  // namespace

TEST_CASE("ticker_publishes_each_tick_once_with_schedule_headers", "[pg][schedule]") {
    Env env;
    auto s = env.create("every5", "*/5 * * * *", "2026-01-05T10:00:00Z");
    REQUIRE(s.next_tick_ms == ms("2026-01-05T10:05:00Z"));
    auto ticker = env.ticker();

    CHECK(ticker.run_due(at("2026-01-05T10:04:59Z")) == 0);
    CHECK(env.messages().empty());
    CHECK(ticker.run_due(at("2026-01-05T10:05:01Z")) == 1);
    CHECK(ticker.run_due(at("2026-01-05T10:05:30Z")) == 0);  // the next tick is 10:10
    auto msgs = env.messages();
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].payload == "{\"job\":\"every5\"}");
    CHECK(msgs[0].key == "k-every5");
    CHECK(msgs[0].content_type == "application/json");
    auto h = Env::headers(msgs[0]);
    CHECK(h["mq-schedule"] == "every5");
    CHECK(h["mq-schedule-tick"] == "2026-01-05T10:05:00.000Z");
    CHECK(h["origin"] == "test");
    CHECK_FALSE(h.contains("mq-schedule-missed"));

    auto row = env.get("every5");
    CHECK(row.last_tick_ms == ms("2026-01-05T10:05:00Z"));
    CHECK(row.next_tick_ms == ms("2026-01-05T10:10:00Z"));
    CHECK(row.last_message_id == msgs[0].id);
    CHECK(row.last_error.empty());
}

TEST_CASE("ticker_two_instances_concurrently_publish_one_message_per_tick", "[pg][schedule]") {
    Env env;
    env.create("racy", "* * * * *", "2026-01-05T10:00:00Z");
    constexpr int kTicks = 40;
    std::atomic<std::int64_t> published{0};
    auto run = [&] {
        mq::pg::Database db(mqtest::services().database_url);
        auto redis = env.r.connect();
        auto ticker = env.ticker(db, *redis);
        for (int i = 1; i <= kTicks; ++i)
            published += ticker.run_due(at("2026-01-05T10:00:00Z") + std::chrono::minutes(i) + 1s);
    };
    std::thread a(run), b(run);
    a.join();
    b.join();
    auto msgs = env.messages();
    std::set<std::string> ticks;
    for (const auto& m : msgs) ticks.insert(tick_of(m));
    CHECK(msgs.size() == kTicks);
    CHECK(ticks.size() == kTicks);
    CHECK(published == kTicks);
    CHECK(env.get("racy").next_tick_ms == ms("2026-01-05T10:41:00Z"));
}

TEST_CASE("ticker_restart_between_publish_and_pg_update_does_not_duplicate", "[pg][schedule]") {
    Env env;
    env.create("crashy", "0 * * * *", "2026-01-05T09:30:00Z");
    CHECK(env.ticker().run_due(at("2026-01-05T10:00:02Z")) == 1);
    // The PostgreSQL update is lost, as if the process died right after publishing.
    env.t.exec(
        "UPDATE message_schedules SET next_tick_at = '2026-01-05T10:00:00Z', last_tick_at = NULL "
        "WHERE tenant_id = '" +
        env.t.tenant() + "'");
    // A new process (new connections, new ticker) finds the tick due again.
    mq::pg::Database db(mqtest::services().database_url);
    auto redis = env.r.connect();
    CHECK(env.ticker(db, *redis).run_due(at("2026-01-05T10:00:20Z")) == 0);
    CHECK(env.messages().size() == 1);
    auto row = env.get("crashy");
    CHECK(row.last_tick_ms == ms("2026-01-05T10:00:00Z"));
    CHECK(row.next_tick_ms == ms("2026-01-05T11:00:00Z"));
}

TEST_CASE("ticker_dedup_key_outlives_a_short_queue_dedup_window", "[pg][schedule]") {
    auto spec = Env::named("short");
    spec.dedup_window = 1000ms;
    Env env(spec);
    env.create("daily", "@daily", "2026-01-05T09:30:00Z");
    CHECK(env.ticker().run_due(at("2026-01-06T00:00:01Z")) == 1);
    auto key = env.r.keys().idempotency(env.t.tenant(), "short", 0,
                                        mq::schedule_tick_key("daily", ms("2026-01-06T00:00:00Z")));
    CHECK(env.r.redis().command({"PTTL", key}).as_integer() > 23LL * 3600 * 1000);
}

TEST_CASE("ticker_missed_ticks_with_misfire_once_publish_one_message", "[pg][schedule]") {
    Env env;
    env.create("once", "*/5 * * * *", "2026-01-05T10:00:00Z", "once");
    // Everything was down from 10:00 to 11:00:30: twelve ticks (10:05 .. 11:00) are due.
    CHECK(env.ticker().run_due(at("2026-01-05T11:00:30Z")) == 1);
    auto msgs = env.messages();
    REQUIRE(msgs.size() == 1);
    CHECK(tick_of(msgs[0]) == "2026-01-05T11:00:00.000Z");
    CHECK(Env::headers(msgs[0])["mq-schedule-missed"] == "11");
    CHECK(env.get("once").next_tick_ms == ms("2026-01-05T11:05:00Z"));
    // Long outage with only late ticks: still one message, for the last one.
    CHECK(env.ticker().run_due(at("2026-01-06T03:17:00Z")) == 1);
    msgs = env.messages();
    REQUIRE(msgs.size() == 2);
    CHECK(tick_of(msgs[1]) == "2026-01-06T03:15:00.000Z");
}

TEST_CASE("ticker_missed_ticks_with_misfire_skip_publish_none", "[pg][schedule]") {
    Env env;
    env.create("skip", "*/5 * * * *", "2026-01-05T10:00:00Z", "skip");
    CHECK(env.ticker().run_due(at("2026-01-05T11:03:00Z")) == 0);  // 11:00 is 3 minutes late
    CHECK(env.messages().empty());
    CHECK(env.get("skip").next_tick_ms == ms("2026-01-05T11:05:00Z"));
    CHECK(env.get("skip").last_tick_ms == ms("2026-01-05T11:00:00Z"));
    // The ticks after the outage fire as usual.
    CHECK(env.ticker().run_due(at("2026-01-05T11:05:02Z")) == 1);
    // Missed ticks followed by one on time: only the on-time one.
    CHECK(env.ticker().run_due(at("2026-01-05T11:30:10Z")) == 1);
    auto msgs = env.messages();
    REQUIRE(msgs.size() == 2);
    CHECK(tick_of(msgs[1]) == "2026-01-05T11:30:00.000Z");
    CHECK_FALSE(Env::headers(msgs[1]).contains("mq-schedule-missed"));
}

TEST_CASE("ticker_paused_schedule_publishes_nothing_and_resumes_from_now", "[pg][schedule]") {
    Env env;
    env.create("sleepy", "* * * * *", "2026-01-05T10:00:00Z");
    mq::ScheduleCatalog(env.t.db())
        .set_paused(env.t.tenant(), "sleepy", true, ms("2026-01-05T10:00:10Z"));
    CHECK(env.ticker().run_due(at("2026-01-05T12:00:00Z")) == 0);
    CHECK(env.messages().empty());
    auto resumed = mq::ScheduleCatalog(env.t.db())
                       .set_paused(env.t.tenant(), "sleepy", false, ms("2026-01-05T12:00:30Z"));
    CHECK(resumed.status == "active");
    CHECK(resumed.next_tick_ms == ms("2026-01-05T12:01:00Z"));  // the pause's ticks are gone
    CHECK(env.ticker().run_due(at("2026-01-05T12:01:01Z")) == 1);
    CHECK(env.messages().size() == 1);
}

TEST_CASE("ticker_postgres_down_publishes_nothing_then_catches_up", "[pg][schedule]") {
    Env env;
    env.create("patient", "*/10 * * * *", "2026-01-05T10:00:00Z");
    // The ticker's own login role: refusing its logins and ending its session is
    // PostgreSQL going away for this ticker alone.
    const std::string role = "tick_" + env.t.tenant().substr(2);
    env.t.exec("CREATE ROLE \"" + role + "\" LOGIN SUPERUSER");
    struct DropRole {
        std::string role;
        ~DropRole() {
            try {
                mqtest::exec_admin("DROP ROLE IF EXISTS \"" + role + "\"");
            } catch (...) {
            }
        }
    } drop{role};
    const auto& svc = mqtest::services();
    mq::pg::Database db("postgresql://" + role + "@127.0.0.1:" + std::to_string(svc.pg_port) + "/" +
                        svc.database_url.substr(svc.database_url.rfind('/') + 1));
    auto ticker = env.ticker(db, env.r.redis());
    CHECK(ticker.run_due(at("2026-01-05T10:05:00Z")) == 0);  // connected, nothing due yet

    env.t.exec("ALTER ROLE \"" + role + "\" NOLOGIN");
    env.t.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + role +
               "'");
    for (int i = 1; i <= 3; ++i)
        CHECK_NOTHROW(
            ticker.run_due(at("2026-01-05T10:00:00Z") + std::chrono::minutes(10 * i) + 1s));
    CHECK(env.messages().empty());
    CHECK(env.get("patient").next_tick_ms ==
          ms("2026-01-05T10:10:00Z"));  // nothing moved, nothing lost

    // Back: the ticks missed meanwhile become one message (misfire once).
    env.t.exec("ALTER ROLE \"" + role + "\" LOGIN");
    CHECK(ticker.run_due(at("2026-01-05T10:40:05Z")) == 1);
    auto msgs = env.messages();
    REQUIRE(msgs.size() == 1);
    CHECK(tick_of(msgs[0]) == "2026-01-05T10:40:00.000Z");
    CHECK(Env::headers(msgs[0])["mq-schedule-missed"] == "3");
}

TEST_CASE("ticker_redis_down_keeps_the_tick_due_and_publishes_when_back", "[pg][schedule]") {
    Env env;
    env.create("later", "0 * * * *", "2026-01-05T09:30:00Z");
    PrivateRedis redis;
    mq::redis::Connection conn(redis.endpoint());
    mq::ScheduleTicker ticker(env.t.db(), conn, env.r.keys(), env.options());
    redis.stop();
    CHECK_NOTHROW(ticker.run_due(at("2026-01-05T10:00:05Z")));
    CHECK(env.get("later").next_tick_ms == ms("2026-01-05T10:00:00Z"));  // still due
    redis.start();
    CHECK(ticker.run_due(at("2026-01-05T10:00:10Z")) == 1);
    CHECK(env.get("later").next_tick_ms == ms("2026-01-05T11:00:00Z"));
    auto stream = env.r.keys().stream(env.t.tenant(), "jobs", 0);
    mq::redis::Connection check(redis.endpoint());
    CHECK(check.command({"XLEN", stream}).as_integer() == 1);
}

TEST_CASE("ticker_deleted_queue_fails_the_tick_with_a_reason_and_keeps_going", "[pg][schedule]") {
    Env env;
    env.t.catalog().create_queue(env.t.tenant(), Env::named("other"), mq::Config{});
    env.create("orphan", "0 * * * *", "2026-01-05T09:30:00Z");
    mq::ScheduleSpec ok;
    ok.name = "healthy";
    ok.queue = "other";
    ok.cron = "0 * * * *";
    ok.payload = "x";
    mq::create_schedule(env.t.db(), env.t.tenant(), ok, {}, ms("2026-01-05T09:30:00Z"));
    env.t.catalog().delete_queue_row(env.queue);

    std::int64_t n = -1;
    CHECK_NOTHROW(n = env.ticker().run_due(at("2026-01-05T10:00:05Z")));
    CHECK(n == 1);  // the healthy schedule still ticked
    auto row = env.get("orphan");
    CHECK_THAT(row.last_error, Catch::Contains("queue 'jobs' does not exist"));
    CHECK(row.next_tick_ms == ms("2026-01-05T11:00:00Z"));
    CHECK(env.r.redis()
              .command({"XLEN", env.r.keys().stream(env.t.tenant(), "other", 0)})
              .as_integer() == 1);
}

TEST_CASE("ticker_payload_over_a_lowered_limit_fails_the_tick_without_publishing",
          "[pg][schedule]") {
    Env env;
    env.create("big", "0 * * * *", "2026-01-05T09:30:00Z");
    auto o = env.options();
    o.limits.max_message_size = 4;
    mq::ScheduleTicker ticker(env.t.db(), env.r.redis(), env.r.keys(), o);
    CHECK(ticker.run_due(at("2026-01-05T10:00:05Z")) == 0);
    CHECK(env.messages().empty());
    CHECK_FALSE(env.get("big").last_error.empty());
}

TEST_CASE("schedule_create_refuses_hostile_input", "[pg][schedule]") {
    Env env;
    auto base = [&] {
        mq::ScheduleSpec s;
        s.name = "s1";
        s.queue = "jobs";
        s.cron = "* * * * *";
        s.payload = "x";
        return s;
    };
    auto code_of = [&](const mq::ScheduleSpec& s, const mq::PublishLimits& limits = {}) {
        try {
            mq::create_schedule(env.t.db(), env.t.tenant(), s, limits, mq::now_ms());
        } catch (const mq::Error& e) {
            return std::pair{e.code(), std::string(e.what())};
        }
        return std::pair{mq::ErrorCode::kInternal, std::string("accepted")};
    };
    auto s = base();
    s.payload = std::string(1048577, 'x');
    CHECK(code_of(s).first == mq::ErrorCode::kPayloadTooLarge);
    s = base();
    s.cron = "61 * * * *";
    CHECK(code_of(s).first == mq::ErrorCode::kValidation);
    CHECK_THAT(code_of(s).second, Catch::Contains("minute field at position 1"));
    s = base();
    s.tz = "Atlantis/Capital";
    CHECK_THAT(code_of(s).second, Catch::Contains("unknown time zone"));
    for (const std::string& bad :
         std::vector<std::string>{"", "a b", "../x", "x:y", std::string(65, 'n')}) {
        s = base();
        s.name = bad;
        CHECK(code_of(s).first == mq::ErrorCode::kValidation);
    }
    s = base();
    s.misfire = "twice";
    CHECK_THAT(code_of(s).second, Catch::Contains("misfire"));
    s = base();
    s.headers = {{"mq-schedule-tick", "forged"}};
    CHECK_THAT(code_of(s).second, Catch::Contains("set by mq"));
    s = base();
    s.queue = "missing";
    CHECK(code_of(s).first == mq::ErrorCode::kQueueNotFound);
    // Binary payloads survive PostgreSQL byte for byte.
    s = base();
    s.payload = std::string("\0\xff\x01zero", 7);
    auto created = mq::create_schedule(env.t.db(), env.t.tenant(), s, {}, mq::now_ms());
    CHECK(env.get("s1").payload == s.payload);
    CHECK(code_of(s).first == mq::ErrorCode::kConflict);
    // Nothing of the refused ones was stored.
    CHECK(mq::ScheduleCatalog(env.t.db()).list(env.t.tenant()).size() == 1);
}

TEST_CASE("schedule_queue_schema_applies_at_create", "[pg][schedule]") {
    auto spec = Env::named("typed");
    spec.schema = nlohmann::json{{"type", "object"}, {"required", {"id"}}};
    Env env(spec);
    mq::ScheduleSpec s;
    s.name = "typed-job";
    s.queue = "typed";
    s.cron = "@hourly";
    s.payload = "{\"other\":1}";
    CHECK_THROWS_AS(mq::create_schedule(env.t.db(), env.t.tenant(), s, {}, mq::now_ms()),
                    mq::Error);
    s.payload = "{\"id\":1}";
    CHECK_NOTHROW(mq::create_schedule(env.t.db(), env.t.tenant(), s, {}, mq::now_ms()));
}

TEST_CASE("schedule_in_berlin_ticks_at_local_time_across_dst", "[pg][schedule]") {
    Env env;
    auto s = env.create("berlin", "30 2 * * *", "2026-03-28T12:00:00Z", "once", "Europe/Berlin");
    CHECK(s.next_tick_ms == ms("2026-03-29T01:00:00Z"));  // 02:30 does not exist that night
    CHECK(env.ticker().run_due(at("2026-03-29T01:00:03Z")) == 1);
    CHECK(env.get("berlin").next_tick_ms == ms("2026-03-30T00:30:00Z"));
}
