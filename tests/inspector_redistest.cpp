// queue/inspector: the one place queue figures are computed, checked against known setups
// (publish N, consume M, hold K pending, delay D, dead-letter X), a group whose lag Redis
// cannot tell, several partitions, and a Redis that goes away and comes back.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <thread>

#include "harness.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/core/time.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/queue/inspector.hpp"

using namespace std::chrono_literals;

namespace {

mq::Queue make_queue(int partitions = 1) {
    mq::Queue q;
    q.tenant = "acme";
    q.name = mqtest::unique_name("figures");
    q.partition_count = partitions;
    return q;
}

mq::PublishRequest msg(const std::string& payload, const std::string& key = {}) {
    mq::PublishRequest r;
    r.payload = payload;
    r.key = key;
    return r;
}

// XREADGROUP g c COUNT n STREAMS s > -> the ids read.
std::vector<std::string> read(mq::redis::Connection& redis, const std::string& stream,
                              const std::string& group, const std::string& consumer, int n) {
    std::vector<std::string> ids;
    auto r = redis.command({"XREADGROUP", "GROUP", group, consumer, "COUNT", std::to_string(n),
                            "STREAMS", stream, ">"});
    if (r.is_nil()) return ids;
    for (const auto& e : r.elements.at(0).elements.at(1).elements)
        ids.push_back(e.elements.at(0).str);
    return ids;
}

std::int64_t millis_of(const std::string& id) { return std::atoll(id.c_str()); }

int shell(const std::string& command) {
    int rc = std::system(command.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace

TEST_CASE("inspector_counts_backlog_pending_lag_delayed_and_dead_letters_of_a_known_setup",
          "[inspector]") {
    mqtest::RedisScope rs;
    auto q = make_queue();
    mq::Publisher pub(rs.redis(), rs.keys());
    const std::string s = rs.keys().stream(q.tenant, q.name, 0);
    rs.redis().command({"XGROUP", "CREATE", s, "fast", "0", "MKSTREAM"});
    rs.redis().command({"XGROUP", "CREATE", s, "slow", "0"});
    // N = 10 published, D = 2 delayed.
    for (int i = 0; i < 10; ++i) pub.publish(q, msg("m" + std::to_string(i)));
    for (int i = 0; i < 2; ++i) {
        auto later = msg("later");
        later.delay = 1h;
        pub.publish(q, later);
    }
    // "fast" reads M = 6: acks 3, dead-letters X = 1, holds K = 2 pending.
    auto ids = read(rs.redis(), s, "fast", "w1", 6);
    REQUIRE(ids.size() == 6);
    mq::ConsumerGroups groups(rs.redis(), rs.keys());
    CHECK(groups.ack(q, "fast", 0, {ids[0], ids[1], ids[2]}) == 3);
    CHECK(groups.dead_letter(q, "fast", 0, ids[3], "max_attempts", "boom", 5));
    const std::int64_t before = mq::now_ms();

    mq::QueueInspector inspector(rs.redis(), rs.keys());
    mq::QueueFigures f = inspector.inspect(q, {true});
    CHECK(f.tenant == q.tenant);
    CHECK(f.name == q.name);
    CHECK(f.length == 10);
    CHECK(f.delayed == 2);
    CHECK(f.dead_letters == 1);
    CHECK(f.pending == 2);
    CHECK(f.lag == 4 + 10);
    CHECK(f.groups == 2);
    CHECK(f.consumers == 1);
    // The slowest subscription ("slow": nothing read) decides the queue backlog.
    CHECK(f.backlog == 10);
    CHECK(f.ready == 10);
    CHECK(f.in_flight == 0);
    REQUIRE(f.oldest_ms);
    CHECK(*f.oldest_ms == millis_of(ids[0]));
    REQUIRE(f.oldest_pending_ms);
    CHECK(*f.oldest_pending_ms == millis_of(ids[4]));
    REQUIRE(f.next_due_ms);
    CHECK(*f.next_due_ms > before + 3500'000);
    REQUIRE(f.age_ms(f.oldest_ms));
    CHECK(*f.age_ms(f.oldest_ms) >= 0);
    CHECK(*f.age_ms(f.oldest_ms) < 60'000);
    CHECK_FALSE(f.age_ms(std::nullopt).has_value());
    CHECK(f.age_ms(f.measured_ms + 5000) == 0);  // a clock ahead never gives a negative age

    REQUIRE(f.subscriptions.size() == 2);
    const auto* fast = f.subscription("fast");
    REQUIRE(fast);
    CHECK(fast->pending == 2);
    CHECK(fast->lag == 4);
    CHECK(fast->lag_known);
    CHECK(fast->backlog == 6);
    CHECK(fast->partitions == 1);
    CHECK(fast->expired == 0);
    REQUIRE(fast->oldest_pending_ms);
    CHECK(*fast->oldest_pending_ms == millis_of(ids[4]));
    REQUIRE(fast->consumer_list.size() == 1);
    CHECK(fast->consumer_list[0].name == "w1");
    CHECK(fast->consumer_list[0].pending == 2);
    const auto* slow = f.subscription("slow");
    REQUIRE(slow);
    CHECK(slow->pending == 0);
    CHECK(slow->lag == 10);
    CHECK(slow->backlog == 10);
    CHECK_FALSE(slow->oldest_pending_ms.has_value());
    CHECK(slow->consumer_list.empty());
    CHECK(f.subscription("nope") == nullptr);

    // "slow" catches up past "fast": now "fast" is the slowest, and its pending entries are
    // the in-flight part of the backlog.
    auto slow_ids = read(rs.redis(), s, "slow", "w2", 10);
    REQUIRE(slow_ids.size() == 10);
    groups.ack(q, "slow", 0, slow_ids);
    f = inspector.inspect(q);
    CHECK(f.backlog == 6);
    CHECK(f.in_flight == 2);
    CHECK(f.ready == 4);
    CHECK(f.subscription("slow")->backlog == 0);
    CHECK(f.subscription("fast")->consumer_list.empty());  // not asked for
    CHECK(f.length == 10);  // finished entries stay until trimmed: length is not backlog
}

TEST_CASE("inspector_of_an_empty_or_never_used_queue_is_all_zero", "[inspector]") {
    mqtest::RedisScope rs;
    auto q = make_queue(3);
    auto f = mq::QueueInspector(rs.redis(), rs.keys()).inspect(q);
    CHECK(f.partitions.size() == 3);
    CHECK(f.length == 0);
    CHECK(f.backlog == 0);
    CHECK(f.delayed == 0);
    CHECK(f.dead_letters == 0);
    CHECK(f.subscriptions.empty());
    CHECK_FALSE(f.oldest_ms.has_value());
    CHECK_FALSE(f.oldest_pending_ms.has_value());
    CHECK_FALSE(f.next_due_ms.has_value());
    // A queue without subscriptions keeps its entries: they are its backlog.
    mq::Publisher(rs.redis(), rs.keys()).publish(q, msg("x", "k"));
    f = mq::QueueInspector(rs.redis(), rs.keys()).inspect(q);
    CHECK(f.length == 1);
    CHECK(f.backlog == 1);
    CHECK(f.ready == 1);
}

TEST_CASE("inspector_sums_the_slowest_subscription_of_each_partition", "[inspector]") {
    mqtest::RedisScope rs;
    auto q = make_queue(2);
    const std::string s0 = rs.keys().stream(q.tenant, q.name, 0);
    const std::string s1 = rs.keys().stream(q.tenant, q.name, 1);
    for (const auto& s : {s0, s1}) {
        for (int i = 0; i < 4; ++i) rs.redis().command({"XADD", s, "*", "p", "x"});
        rs.redis().command({"XGROUP", "CREATE", s, "a", "0"});
        rs.redis().command({"XGROUP", "CREATE", s, "b", "0"});
    }
    // Partition 0: "a" finished everything, "b" nothing. Partition 1: the other way round.
    mq::ConsumerGroups groups(rs.redis(), rs.keys());
    groups.ack(q, "a", 0, read(rs.redis(), s0, "a", "c", 4));
    groups.ack(q, "b", 1, read(rs.redis(), s1, "b", "c", 4));
    read(rs.redis(), s1, "a", "c", 1);  // one pending on partition 1

    auto f = mq::QueueInspector(rs.redis(), rs.keys()).inspect(q);
    CHECK(f.length == 8);
    CHECK(f.partitions[0].backlog() == 4);
    CHECK(f.partitions[1].backlog() == 4);
    CHECK(f.backlog == 8);  // not 16 (every subscription) and not 4 (the slowest overall)
    CHECK(f.in_flight == 1);
    CHECK(f.ready == 7);
    CHECK(f.subscription("a")->backlog == 4);
    CHECK(f.subscription("a")->pending == 1);
    CHECK(f.subscription("a")->partitions == 2);
    CHECK(f.subscription("b")->backlog == 4);

    // Several queues in one call, in order.
    auto other = make_queue(1);
    auto both = mq::QueueInspector(rs.redis(), rs.keys())
                    .inspect(std::vector<const mq::Queue*>{&other, &q});
    REQUIRE(both.size() == 2);
    CHECK(both[0].name == other.name);
    CHECK(both[0].length == 0);
    CHECK(both[1].backlog == 8);
}

TEST_CASE("inspector_marks_an_unknown_lag_and_bounds_the_backlog_by_the_stream", "[inspector]") {
    mqtest::RedisScope rs;
    auto q = make_queue();
    const std::string s = rs.keys().stream(q.tenant, q.name, 0);
    for (int i = 0; i < 3; ++i) rs.redis().command({"XADD", s, "*", "p", "x"});
    auto all = rs.redis().command({"XRANGE", s, "-", "+"});
    rs.redis().command({"XDEL", s, all.elements.at(1).elements.at(0).str});
    rs.redis().command({"XGROUP", "CREATE", s, "late", "0"});  // after a deletion: lag unknown

    auto f = mq::QueueInspector(rs.redis(), rs.keys()).inspect(q);
    const auto* late = f.subscription("late");
    REQUIRE(late);
    CHECK_FALSE(late->lag_known);
    REQUIRE(f.partitions[0].groups.size() == 1);
    CHECK_FALSE(f.partitions[0].groups[0].lag.has_value());
    CHECK(late->backlog == 2);  // at most every entry still in the stream
    CHECK(f.backlog == 2);
    CHECK(f.lag == 0);  // sums only known lags
}

TEST_CASE("inspector_counts_what_a_crashed_consumer_still_holds_even_when_an_entry_was_deleted",
          "[inspector]") {
    mqtest::RedisScope rs;
    auto q = make_queue();
    const std::string s = rs.keys().stream(q.tenant, q.name, 0);
    mq::Publisher pub(rs.redis(), rs.keys());
    for (int i = 0; i < 3; ++i) pub.publish(q, msg("x"));
    rs.redis().command({"XGROUP", "CREATE", s, "g", "0"});
    // A worker read three entries and died; one of them was deleted since.
    auto ids = read(rs.redis(), s, "g", "crashed", 3);
    rs.redis().command({"XDEL", s, ids[0]});
    auto f = mq::QueueInspector(rs.redis(), rs.keys()).inspect(q, {true});
    CHECK(f.length == 2);
    CHECK(f.pending == 3);  // the PEL still names the deleted entry until it is claimed
    CHECK(f.subscription("g")->consumer_list.at(0).name == "crashed");
    REQUIRE(f.oldest_pending_ms);
    CHECK(*f.oldest_pending_ms == millis_of(ids[0]));
}

TEST_CASE("inspector_throws_backend_unavailable_while_redis_is_down_and_works_after_restart",
          "[inspector]") {
    const int port = mqtest::dead_port();
    std::string dir =
        (std::filesystem::temp_directory_path() / mqtest::unique_name("mq-inspector")).string();
    std::filesystem::create_directories(dir);
    const std::string p = std::to_string(port);
    auto start = [&] {
        REQUIRE(shell("redis-server --bind 127.0.0.1 --port " + p +
                      " --save '' --appendonly no --daemonize yes --dir " + dir + " --logfile " +
                      dir + "/log") == 0);
        for (int i = 0; i < 200; ++i) {
            if (shell("redis-cli -p " + p + " ping 2>/dev/null | grep -q PONG") == 0) return;
            std::this_thread::sleep_for(50ms);
        }
        FAIL("redis-server did not start");
    };
    auto stop = [&] { shell("redis-cli -p " + p + " shutdown nosave >/dev/null 2>&1"); };
    start();
    struct Cleanup {
        std::function<void()> f;
        ~Cleanup() { f(); }
    } cleanup{[&] {
        stop();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }};

    mq::redis::Endpoint ep;
    ep.port = port;
    mq::redis::Connection redis(ep, {1000ms, 1000ms});
    auto q = make_queue(2);
    mq::QueueInspector inspector(redis, mq::KeyLayout("mq:"));
    mq::Publisher(redis, mq::KeyLayout("mq:")).publish(q, msg("x"));
    CHECK(inspector.inspect(q).length == 1);

    stop();
    for (int i = 0; i < 100 && shell("redis-cli -p " + p + " ping >/dev/null 2>&1") == 0; ++i)
        std::this_thread::sleep_for(50ms);
    try {
        inspector.inspect(q);
        FAIL("expected BackendUnavailable");
    } catch (const mq::BackendUnavailable& e) {
        CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
        CHECK_THAT(e.what(), Catch::Contains("127.0.0.1:" + p));
    }

    // Restarted empty (no persistence): the same inspector reconnects and sees what is there.
    start();
    auto f = inspector.inspect(q);
    CHECK(f.length == 0);
    CHECK(f.backlog == 0);
}
