// Retention against a real redis-server: trimming by consumption, expiry by age with
// per-subscription counts, bounded work, back-pressure on the backlog, and consumers that
// meet a pending entry whose stream entry is gone (docs/retention.md).
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "eventually.hpp"
#include "harness.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/consume/pull.hpp"
#include "mq/core/time.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/queue/streams.hpp"
#include "mq/queue/trimmer.hpp"
#include "mq/worker/runner.hpp"

using namespace std::chrono_literals;

namespace {

struct Fixture {
    mqtest::RedisScope rs;
    mq::Queue q;
    mq::ConsumerGroups groups{rs.redis(), rs.keys()};
    mq::Publisher pub{rs.redis(), rs.keys()};

    explicit Fixture(int partitions = 1, std::chrono::milliseconds retention = 1h) {
        q.tenant = "acme";
        q.name = mqtest::unique_name("q");
        q.partition_count = partitions;
        q.retention = retention;
    }
    mq::Subscription sub(const std::string& name, const std::string& start = "earliest") {
        mq::Subscription s;
        s.tenant = q.tenant;
        s.queue = q.name;
        s.name = name;
        s.start_from = start;
        s.retry.initial_backoff = 50ms;
        s.retry.max_backoff = 100ms;
        s.retry.jitter = 0;
        s.retry.max_attempts = 5;
        s.visibility_timeout = 100ms;
        groups.ensure(q, s);
        return s;
    }
    std::vector<mq::PublishOutcome> publish(int n) {
        std::vector<mq::PublishRequest> batch(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i)
            batch[static_cast<std::size_t>(i)].payload = "m" + std::to_string(i);
        return pub.publish_batch(q, batch);
    }
    std::string stream(int p = 0) const { return rs.keys().stream(q.tenant, q.name, p); }
    std::vector<std::string> ids(int p = 0) {
        std::vector<std::string> out;
        for (const auto& e : rs.redis().command({"XRANGE", stream(p), "-", "+"}).elements)
            out.push_back(e.elements.at(0).str);
        return out;
    }
    std::int64_t pending(const std::string& group, int p = 0) {
        return static_cast<std::int64_t>(groups.pending(q, group, p, 100000).size());
    }
    std::int64_t expired_count(const std::string& group, int p = 0) {
        auto r = rs.redis().command({"HGET", rs.keys().expired(q.tenant, q.name, p), group});
        return r.is_nil() ? 0 : r.as_integer();
    }
    std::vector<std::string> ack_all(const mq::Subscription& s,
                                     const std::vector<mq::Fetched>& got) {
        std::vector<std::string> out;
        for (const auto& f : got) {
            groups.ack(q, s.name, f.partition, {f.stream_id});
            out.push_back(f.stream_id);
        }
        return out;
    }
};

// Stream ids as numbers, for the model of the randomized test.
using Sid = std::pair<std::uint64_t, std::uint64_t>;
Sid sid(const std::string& id) {
    auto dash = id.find('-');
    return {std::stoull(id.substr(0, dash)), std::stoull(id.substr(dash + 1))};
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
    return mqtest::eventually(pred, limit, 10ms);
}

}  // namespace

TEST_CASE("entries every subscription finished are trimmed, pending and undelivered ones stay",
          "[retention][trim]") {
    Fixture f;
    auto fast = f.sub("fast");
    auto slow = f.sub("slow");
    auto published = f.publish(10);
    f.ack_all(fast, f.groups.read_new(f.q, fast, "c", 0, 10, 0ms));
    auto got = f.groups.read_new(f.q, slow, "c", 0, 5, 0ms);  // 5 delivered, 5 undelivered
    f.groups.ack(f.q, "slow", 0, {got[0].stream_id, got[1].stream_id, got[3].stream_id});

    mq::Trimmer trimmer(f.rs.redis(), f.rs.keys());
    auto pass = trimmer.trim(f.q);
    CHECK(pass.trimmed == 2);  // up to slow's oldest pending entry (#2)
    CHECK(pass.expired == 0);
    auto left = f.ids();
    REQUIRE(left.size() == 8);
    CHECK(left.front() == got[2].stream_id);
    CHECK(f.pending("slow") == 2);
    CHECK(trimmer.trim(f.q).trimmed == 0);  // nothing more is finished

    f.groups.ack(f.q, "slow", 0, {got[2].stream_id, got[4].stream_id});
    CHECK(trimmer.trim(f.q).trimmed == 3);  // #2..#4; #5..#9 were never delivered to slow
    CHECK(f.ids().size() == 5);
    f.ack_all(slow, f.groups.read_new(f.q, slow, "c", 0, 10, 0ms));
    CHECK(trimmer.trim(f.q).trimmed == 5);
    CHECK(f.ids().empty());
    // The group keeps working on the trimmed stream; lag stays true for back-pressure.
    f.publish(2);
    CHECK(f.groups.read_new(f.q, slow, "c", 0, 10, 0ms).size() == 2);
    auto stats = mq::QueueStreams(f.rs.redis(), f.rs.keys()).stats(f.q);
    for (const auto& g : stats.at(0).groups) {
        REQUIRE(g.lag.has_value());
        CHECK(*g.lag == (g.name == "fast" ? 2 : 0));
        CHECK(g.expired == 0);
    }
}

TEST_CASE("a queue without subscriptions keeps messages for its retention, then drops them",
          "[retention][expiry]") {
    Fixture f(1, 400ms);
    f.publish(5);
    mq::Trimmer trimmer(f.rs.redis(), f.rs.keys());
    CHECK(trimmer.trim(f.q).trimmed == 0);
    CHECK(f.ids().size() == 5);
    std::this_thread::sleep_for(500ms);
    f.publish(1);  // young: stays
    auto pass = trimmer.trim(f.q);
    CHECK(pass.trimmed == 5);
    CHECK(pass.expired == 0);  // no subscription missed them
    CHECK(f.ids().size() == 1);
}

TEST_CASE(
    "entries past retention expire even unconsumed, counted once per subscription that had not "
    "finished them",
    "[retention][expiry]") {
    Fixture f(2, 400ms);
    auto a = f.sub("a");
    auto b = f.sub("b");
    auto done = f.sub("done");
    f.publish(12);  // round robin: 6 per partition
    for (int p = 0; p < 2; ++p) {
        f.ack_all(done, f.groups.read_new(f.q, done, "c", p, 100, 0ms));
        auto got = f.groups.read_new(f.q, a, "c", p, 4, 0ms);  // 4 delivered, 2 never
        f.groups.ack(f.q, "a", p, {got[0].stream_id, got[1].stream_id});
        f.groups.retry_later(f.q, "a", p, got[2].stream_id,
                             mq::now_ms() + 60000);  // leaves an :ra note
    }
    std::this_thread::sleep_for(500ms);
    mq::Trimmer trimmer(f.rs.redis(), f.rs.keys());
    auto pass = trimmer.trim(f.q);
    CHECK(pass.trimmed == 12);
    // a: 2 pending + 2 undelivered per partition; b: all 6; done: none.
    CHECK(pass.expired_by_subscription == std::map<std::string, std::int64_t>{{"a", 8}, {"b", 12}});
    CHECK(pass.expired == 20);
    for (int p = 0; p < 2; ++p) {
        CHECK(f.ids(p).empty());
        CHECK(f.pending("a", p) == 0);  // acked away, nothing dangles in the PEL
        CHECK(f.expired_count("a", p) == 4);
        CHECK(f.expired_count("b", p) == 6);
        CHECK(f.expired_count("done", p) == 0);
        CHECK(f.rs.redis()
                  .command({"HLEN", f.rs.keys().retry_after(f.q.tenant, f.q.name, p)})
                  .as_integer() == 0);
    }
    // Counted once: another pass finds nothing.
    CHECK(trimmer.trim(f.q).expired == 0);
    // Stats show it, and lag is true again: the expired entries no longer count.
    auto stats = mq::QueueStreams(f.rs.redis(), f.rs.keys()).stats(f.q);
    for (const auto& part : stats)
        for (const auto& g : part.groups) {
            CHECK(g.expired == (g.name == "a" ? 4 : g.name == "b" ? 6 : 0));
            REQUIRE(g.lag.has_value());
            CHECK(*g.lag == 0);
        }
    // New messages still reach every subscription.
    f.publish(2);
    CHECK(f.groups.read_new(f.q, b, "c", 0, 10, 0ms).size() == 1);
    CHECK(f.groups.read_new(f.q, b, "c", 1, 10, 0ms).size() == 1);
}

TEST_CASE("trimming is bounded per call and converges over several calls", "[retention][trim]") {
    Fixture f;
    auto s = f.sub("s");
    f.publish(35);
    f.ack_all(s, f.groups.read_new(f.q, s, "c", 0, 100, 0ms));
    mq::TrimOptions o;
    o.batch = 10;
    mq::Trimmer trimmer(f.rs.redis(), f.rs.keys(), o);
    std::vector<std::int64_t> steps;
    for (int i = 0; i < 10; ++i) {
        auto pass = trimmer.trim(f.q);
        steps.push_back(pass.trimmed);
        if (!pass.more) break;
    }
    CHECK(steps == std::vector<std::int64_t>{10, 10, 10, 5});
    CHECK(f.ids().empty());
}

TEST_CASE("expiry of a large unconsumed backlog is bounded per call and counts every entry once",
          "[retention][expiry]") {
    Fixture f(1, 200ms);
    f.sub("stalled");
    f.publish(250);
    std::this_thread::sleep_for(300ms);
    mq::TrimOptions o;
    o.batch = 100;
    mq::Trimmer trimmer(f.rs.redis(), f.rs.keys(), o);
    std::int64_t expired = 0;
    int calls = 0;
    for (; calls < 10; ++calls) {
        auto pass = trimmer.trim(f.q);
        CHECK(pass.trimmed <= 100);
        expired += pass.expired;
        if (!pass.more) break;
    }
    CHECK(calls == 2);
    CHECK(expired == 250);
    CHECK(f.expired_count("stalled") == 250);
    CHECK(f.ids().empty());
}

TEST_CASE("hostile queue settings: retention 1 ms, 256 partitions, groups at odd ids",
          "[retention][hostile]") {
    SECTION("retention of 1 ms expires everything and counts it") {
        Fixture f(1, 1ms);
        f.sub("s");
        f.publish(3);
        std::this_thread::sleep_for(5ms);
        auto pass = mq::Trimmer(f.rs.redis(), f.rs.keys()).trim(f.q);
        CHECK(pass.trimmed == 3);
        CHECK(pass.expired == 3);
    }
    SECTION("256 partitions are trimmed in one pass") {
        Fixture f(256);
        auto s = f.sub("s");
        f.publish(512);
        for (int p = 0; p < 256; ++p) f.ack_all(s, f.groups.read_new(f.q, s, "c", p, 10, 0ms));
        auto pass = mq::Trimmer(f.rs.redis(), f.rs.keys()).trim(f.q);
        CHECK(pass.trimmed == 512);
        for (int p : {0, 17, 255}) CHECK(f.ids(p).empty());
    }
    SECTION("groups created at 0, at the maximum id and at an id between entries") {
        Fixture f;
        f.publish(4);
        auto ids = f.ids();
        f.rs.redis().command({"XGROUP", "CREATE", f.stream(), "zero", "0"});
        f.rs.redis().command(
            {"XGROUP", "CREATE", f.stream(), "max", "18446744073709551615-18446744073709551615"});
        mq::Trimmer trimmer(f.rs.redis(), f.rs.keys());
        CHECK(trimmer.trim(f.q).trimmed == 0);  // "zero" still has to deliver all four
        CHECK(f.ids().size() == 4);
        f.rs.redis().command({"XGROUP", "DESTROY", f.stream(), "zero"});
        f.rs.redis().command({"XGROUP", "CREATE", f.stream(), "mid", ids[1]});
        CHECK(trimmer.trim(f.q).trimmed == 2);  // "mid" finished (skipped) the first two
        CHECK(f.ids() == std::vector<std::string>{ids[2], ids[3]});
        f.rs.redis().command({"XGROUP", "DESTROY", f.stream(), "mid"});
        CHECK(trimmer.trim(f.q).trimmed == 2);  // only "max": it will never deliver anything here
        CHECK(f.ids().empty());
    }
    SECTION("a stream that does not exist yet and a queue with an invalid partition count") {
        Fixture f(3);
        auto pass = mq::Trimmer(f.rs.redis(), f.rs.keys()).trim(f.q);
        CHECK(pass.trimmed == 0);
        CHECK(f.rs.all_keys().empty());  // trimming creates nothing
        f.q.partition_count = 0;
        CHECK_THROWS_AS(mq::Trimmer(f.rs.redis(), f.rs.keys()).trim(f.q), mq::ValidationError);
    }
    SECTION("out-of-range trimmer options are refused") {
        Fixture f;
        mq::TrimOptions o;
        o.batch = 0;
        CHECK_THROWS_AS(mq::Trimmer(f.rs.redis(), f.rs.keys(), o), mq::ValidationError);
        o.batch = 100;
        o.dead_letter_max_length = -1;
        CHECK_THROWS_AS(mq::Trimmer(f.rs.redis(), f.rs.keys(), o), mq::ValidationError);
    }
}

TEST_CASE(
    "randomized publish, consume, ack, kill and trim never lose an unfinished entry and leave no "
    "finished one",
    "[retention][randomized]") {
    const char* env_seed = std::getenv("MQ_TEST_SEED");
    const std::uint64_t seed = env_seed ? std::stoull(env_seed) : std::random_device{}();
    INFO("seed " << seed << " (rerun with MQ_TEST_SEED=" << seed << ")");
    std::mt19937_64 rng(seed);
    auto roll = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };

    Fixture f(2);
    const std::vector<std::string> names{"a", "b", "c"};
    std::map<std::string, mq::Subscription> subs;
    for (const auto& n : names) subs[n] = f.sub(n);
    mq::TrimOptions o;
    o.batch = 1 + roll(50);  // small batches make the bound matter
    mq::Trimmer trimmer(f.rs.redis(), f.rs.keys(), o);

    // The model: per partition the published ids; per group and partition the last
    // delivered id and what is pending, per consumer.
    struct GroupModel {
        Sid last{0, 0};
        std::map<std::string, std::set<Sid>> held;  // consumer -> pending ids
        std::set<Sid> pending() const {
            std::set<Sid> all;
            for (const auto& [c, s] : held) all.insert(s.begin(), s.end());
            return all;
        }
    };
    std::map<int, std::set<Sid>> published;
    std::map<std::pair<std::string, int>, GroupModel> model;
    std::map<Sid, std::string> text;  // id -> its string form
    const std::vector<std::string> consumers{"c1", "c2", "c3"};

    auto check = [&](bool converged) {
        for (int p = 0; p < 2; ++p) {
            std::set<Sid> in_stream;
            for (const auto& id : f.ids(p)) in_stream.insert(sid(id));
            Sid min_finished{UINT64_MAX, UINT64_MAX};
            for (const auto& n : names) {
                const auto& g = model[{n, p}];
                auto pend = g.pending();
                Sid finished = pend.empty() ? Sid{g.last.first, g.last.second + 1} : *pend.begin();
                min_finished = std::min(min_finished, finished);
                for (const auto& id : published[p]) {
                    bool unfinished = id > g.last || pend.count(id);
                    if (unfinished) REQUIRE(in_stream.count(id) == 1);  // never lost
                }
            }
            for (const auto& id : in_stream) REQUIRE(published[p].count(id) == 1);
            if (converged)
                for (const auto& id : published[p])
                    CHECK(in_stream.count(id) == (id >= min_finished ? 1u : 0u));
        }
    };

    const int steps = 1500;
    for (int step = 0; step < steps; ++step) {
        int op = roll(100);
        if (op < 30) {  // publish
            for (const auto& out : f.publish(1 + roll(5))) {
                published[out.partition].insert(sid(out.stream_id));
                text[sid(out.stream_id)] = out.stream_id;
            }
        } else if (op < 55) {  // a consumer reads new entries
            const auto& n = names[static_cast<std::size_t>(roll(3))];
            const auto& c = consumers[static_cast<std::size_t>(roll(3))];
            int p = roll(2);
            for (const auto& fe : f.groups.read_new(f.q, subs[n], c, p, 1 + roll(6), 0ms)) {
                auto& g = model[{n, p}];
                g.last = sid(fe.stream_id);
                g.held[c].insert(sid(fe.stream_id));
            }
        } else if (op < 80) {  // a consumer acks some of what it holds
            const auto& n = names[static_cast<std::size_t>(roll(3))];
            const auto& c = consumers[static_cast<std::size_t>(roll(3))];
            int p = roll(2);
            auto& held = model[{n, p}].held[c];
            std::vector<std::string> ack;
            for (auto it = held.begin(); it != held.end();) {
                if (roll(2)) {
                    ack.push_back(text[*it]);
                    it = held.erase(it);
                } else {
                    ++it;
                }
            }
            if (!ack.empty())
                REQUIRE(f.groups.ack(f.q, n, p, ack) == static_cast<std::int64_t>(ack.size()));
        } else if (op < 88) {  // a consumer dies; another takes its entries over (XCLAIM)
            const auto& n = names[static_cast<std::size_t>(roll(3))];
            const auto& dead = consumers[static_cast<std::size_t>(roll(3))];
            const auto& heir = consumers[static_cast<std::size_t>(roll(3))];
            int p = roll(2);
            auto& g = model[{n, p}];
            auto taken = g.held[dead];
            g.held.erase(dead);
            if (taken.empty()) continue;
            std::vector<std::string> argv{"XCLAIM", f.stream(p), n, heir, "0"};
            for (const auto& id : taken) argv.push_back(text[id]);
            argv.emplace_back("JUSTID");
            REQUIRE(f.rs.redis().command(argv).elements.size() == taken.size());
            g.held[heir].insert(taken.begin(), taken.end());
        } else {
            auto pass = trimmer.trim(f.q);
            REQUIRE(pass.expired == 0);  // everything is within retention
            check(false);
        }
    }
    for (int i = 0; i < 1000 && trimmer.trim(f.q).more; ++i) {
    }
    check(true);
    for (const auto& n : names) CHECK(f.expired_count(n, 0) + f.expired_count(n, 1) == 0);
}

TEST_CASE("max_length bounds the backlog: a consumer that keeps up is never refused",
          "[retention][backpressure]") {
    Fixture f;
    f.q.max_length = 100;
    auto s = f.sub("s");
    int accepted = 0;
    for (int i = 0; i < 10000; ++i) {
        mq::PublishRequest r;
        r.payload = std::to_string(i);
        auto out = f.pub.publish_batch(f.q, {r});
        if (out[0].status == mq::PublishStatus::kAccepted) ++accepted;
        if (i % 50 == 49) f.ack_all(s, f.groups.read_new(f.q, s, "c", 0, 100, 0ms));
    }
    CHECK(accepted == 10000);
    CHECK(f.ids().size() == 10000);  // not trimmed here: the consumed entries do not count
}

TEST_CASE(
    "max_length refuses with QUEUE_FULL while a consumer is stalled and accepts once it catches up",
    "[retention][backpressure]") {
    Fixture f;
    f.q.max_length = 100;
    auto fast = f.sub("fast");
    auto slow = f.sub("slow");
    auto publish_one = [&] {
        mq::PublishRequest r;
        r.payload = "x";
        return f.pub.publish_batch(f.q, {r})[0];
    };
    for (int i = 0; i < 100; ++i) REQUIRE(publish_one().status == mq::PublishStatus::kAccepted);
    f.ack_all(fast, f.groups.read_new(f.q, fast, "c", 0, 1000, 0ms));
    auto refused = publish_one();
    CHECK(refused.status == mq::PublishStatus::kRejected);
    REQUIRE(refused.error.has_value());
    CHECK(refused.error->code() == mq::ErrorCode::kQueueFull);

    // Delivered but pending still counts; acked does not.
    auto got = f.groups.read_new(f.q, slow, "c", 0, 60, 0ms);
    CHECK(publish_one().status == mq::PublishStatus::kRejected);
    f.ack_all(slow, got);
    for (int i = 0; i < 60; ++i) REQUIRE(publish_one().status == mq::PublishStatus::kAccepted);
    CHECK(publish_one().status == mq::PublishStatus::kRejected);

    // After a trim (stream shorter than the entries ever added), lag is still right.
    f.ack_all(slow, f.groups.read_new(f.q, slow, "c", 0, 1000, 0ms));
    f.ack_all(fast, f.groups.read_new(f.q, fast, "c", 0, 1000, 0ms));
    mq::Trimmer(f.rs.redis(), f.rs.keys()).trim(f.q);
    for (int i = 0; i < 100; ++i) REQUIRE(publish_one().status == mq::PublishStatus::kAccepted);
    CHECK(publish_one().status == mq::PublishStatus::kRejected);
}

TEST_CASE("max_length without subscriptions counts the stream, and delayed entries always count",
          "[retention][backpressure]") {
    Fixture f;
    f.q.max_length = 10;
    for (int i = 0; i < 6; ++i) {
        mq::PublishRequest r;
        r.payload = "later";
        r.delay = 60s;
        REQUIRE(f.pub.publish_batch(f.q, {r})[0].status == mq::PublishStatus::kAccepted);
    }
    auto out = f.publish(6);
    int accepted = 0;
    for (const auto& o : out) accepted += o.status == mq::PublishStatus::kAccepted;
    CHECK(accepted == 4);
    // A subscription that has consumed everything leaves only the delayed ones.
    auto s = f.sub("s");
    f.ack_all(s, f.groups.read_new(f.q, s, "c", 0, 100, 0ms));
    out = f.publish(5);
    accepted = 0;
    for (const auto& o : out) accepted += o.status == mq::PublishStatus::kAccepted;
    CHECK(accepted == 4);
}

TEST_CASE("max_length falls back to the stream length when Redis cannot tell a group's lag",
          "[retention][backpressure]") {
    Fixture f;
    f.q.max_length = 10;
    auto s = f.sub("s");
    f.publish(5);
    auto got = f.groups.read_new(f.q, s, "c", 0, 2, 0ms);
    f.ack_all(s, got);
    // XDEL of an entry the group has not read makes its lag unknown (Redis 7.0).
    auto ids = f.ids();
    f.rs.redis().command({"XDEL", f.stream(), ids.back()});
    auto stats = mq::QueueStreams(f.rs.redis(), f.rs.keys()).stats(f.q);
    REQUIRE_FALSE(stats[0].groups[0].lag.has_value());
    // Safe estimate: every entry in the stream (4) counts, so 6 more fit, not 8.
    int accepted = 0;
    for (const auto& o : f.publish(10)) accepted += o.status == mq::PublishStatus::kAccepted;
    CHECK(accepted == 6);
}

TEST_CASE("reclaim acks away a pending entry whose stream entry is gone and counts it as expired",
          "[retention][consume]") {
    Fixture f;
    auto s = f.sub("s");
    f.publish(3);
    auto got = f.groups.read_new(f.q, s, "dead-worker", 0, 3, 0ms);
    REQUIRE(got.size() == 3);
    f.groups.retry_later(f.q, "s", 0, got[1].stream_id, mq::now_ms() + 1);  // leaves an :ra note
    f.rs.redis().command({"XDEL", f.stream(), got[1].stream_id});  // gone behind the PEL's back
    std::this_thread::sleep_for(150ms);
    auto r = f.groups.reclaim(f.q, s, "heir", 0);
    CHECK(r.expired == 1);
    REQUIRE(r.claimed.size() == 2);
    CHECK(r.claimed[0].stream_id == got[0].stream_id);
    CHECK(r.claimed[1].stream_id == got[2].stream_id);
    CHECK(f.pending("s") == 2);
    CHECK(f.expired_count("s") == 1);
    CHECK(f.rs.redis()
              .command({"HLEN", f.rs.keys().retry_after(f.q.tenant, f.q.name, 0)})
              .as_integer() == 0);
    std::this_thread::sleep_for(150ms);
    CHECK(f.groups.reclaim(f.q, s, "heir", 0).expired == 0);  // counted once
}

TEST_CASE("a pull client copes with a pending entry whose stream entry expired",
          "[retention][pull]") {
    Fixture f;
    mq::Subscription s = f.sub("puller");
    s.id = "0190a5c4-3333-7abc-8def-0123456789ab";
    s.type = "pull";
    mq::PullConsumer pull(f.rs.redis(), f.rs.keys(), "retention-test-key");
    f.publish(3);
    auto first = pull.pull(f.q, s, "svc-a", 10);
    REQUIRE(first.size() == 3);
    f.rs.redis().command({"XDEL", f.stream(), first[0].fetched.stream_id});
    std::this_thread::sleep_for(150ms);  // past the visibility timeout
    auto again = pull.pull(f.q, s, "svc-b", 10);
    CHECK(again.size() == 2);
    CHECK(f.expired_count("puller") == 1);
    // The stale receipt of the expired entry is refused cleanly; the others ack.
    auto stale = mq::decode_receipt(first[0].receipt, "retention-test-key", s.id);
    CHECK(pull.ack(f.q, s, {stale}).at(0) == mq::AckResult::kLeaseLost);
    std::vector<mq::Receipt> receipts;
    for (const auto& m : again)
        receipts.push_back(mq::decode_receipt(m.receipt, "retention-test-key", s.id));
    for (auto res : pull.ack(f.q, s, receipts)) CHECK(res == mq::AckResult::kAcked);
    CHECK(f.pending("puller") == 0);
}

namespace {

class CountingHandler : public mq::Handler {
  public:
    std::mutex mu;
    std::set<std::string> payloads;
    mq::DeliveryResult deliver(const mq::Delivery& d) override {
        std::lock_guard lock(mu);
        payloads.insert(d.message.payload);
        mq::DeliveryResult r;
        r.outcome = mq::DeliveryOutcome::kAck;
        return r;
    }
    std::size_t count() {
        std::lock_guard lock(mu);
        return payloads.size();
    }
};

}  // namespace

TEST_CASE("a worker takes over a dead worker's entries and skips those whose stream entry expired",
          "[retention][runner]") {
    Fixture f;
    auto s = f.sub("s");
    s.concurrency = 2;
    f.publish(5);
    auto held = f.groups.read_new(f.q, s, "crashed-worker", 0, 5, 0ms);
    REQUIRE(held.size() == 5);
    f.rs.redis().command({"XDEL", f.stream(), held[0].stream_id, held[3].stream_id});

    auto handler = std::make_shared<CountingHandler>();
    mq::RunnerOptions o;
    o.endpoint = mq::redis::parse_url(mqtest::services().redis_url);
    o.keys = f.rs.keys();
    o.queue = f.q;
    o.subscription = s;
    o.consumer = "w2";
    o.handler = handler;
    o.fetch_block = 100ms;
    o.reclaim_interval = 20ms;
    mq::SubscriptionRunner runner(o, std::make_shared<mq::RunnerMetrics>());
    runner.start();
    CHECK(eventually([&] { return handler->count() == 3 && f.pending("s") == 0; }));
    runner.stop(std::chrono::steady_clock::now() + 5s);
    CHECK(handler->payloads == std::set<std::string>{"m1", "m2", "m4"});
    CHECK(f.expired_count("s") == 2);
}

TEST_CASE("dead letters are trimmed only after the archive group acked them, within the caps",
          "[retention][dlq]") {
    Fixture f;
    auto s = f.sub("s");
    f.publish(10);
    for (const auto& fe : f.groups.read_new(f.q, s, "c", 0, 10, 0ms))
        f.groups.dead_letter(f.q, "s", 0, fe.stream_id, "handler_rejected", "no", 1);
    const std::string dlq = f.rs.keys().dead_letters(f.q.tenant, f.q.name, 0);
    REQUIRE(f.rs.redis().command({"XLEN", dlq}).as_integer() == 10);
    mq::TrimOptions o;
    o.dead_letter_max_length = 2;
    mq::Trimmer trimmer(f.rs.redis(), f.rs.keys(), o);
    CHECK(trimmer.trim(f.q).dead_letters_trimmed == 0);  // no archiver yet: nothing is archived

    // An archiver read 6 and acked 4 (#0, #1, #2, #4); #3 and #5 are in its hands.
    f.rs.redis().command({"XGROUP", "CREATE", dlq, "mq-archive", "0"});
    auto r = f.rs.redis().command(
        {"XREADGROUP", "GROUP", "mq-archive", "a", "COUNT", "6", "STREAMS", dlq, ">"});
    const auto& e = r.elements.at(0).elements.at(1).elements;
    f.rs.redis().command({"XACK", dlq, "mq-archive", e[0].elements[0].str, e[1].elements[0].str,
                          e[2].elements[0].str, e[4].elements[0].str});
    CHECK(trimmer.trim(f.q).dead_letters_trimmed == 3);  // up to the oldest unarchived (#3)
    CHECK(f.rs.redis().command({"XLEN", dlq}).as_integer() == 7);
    f.rs.redis().command({"XACK", dlq, "mq-archive", e[3].elements[0].str, e[5].elements[0].str});
    CHECK(trimmer.trim(f.q).dead_letters_trimmed == 3);  // #3..#5; #6..#9 never archived
    CHECK(f.rs.redis().command({"XLEN", dlq}).as_integer() == 4);
    f.rs.redis().command(
        {"XREADGROUP", "GROUP", "mq-archive", "a", "COUNT", "10", "STREAMS", dlq, ">"});
    auto rest = f.rs.redis().command({"XPENDING", dlq, "mq-archive", "-", "+", "10"});
    for (const auto& p : rest.elements)
        f.rs.redis().command({"XACK", dlq, "mq-archive", p.elements[0].str});
    CHECK(trimmer.trim(f.q).dead_letters_trimmed == 2);  // the cap: two stay for `dlq list`
    CHECK(f.rs.redis().command({"XLEN", dlq}).as_integer() == 2);

    // By age: archived dead letters older than the cap go even under the length cap.
    o.dead_letter_max_length = 0;
    o.dead_letter_max_age = 1ms;
    std::this_thread::sleep_for(5ms);
    CHECK(mq::Trimmer(f.rs.redis(), f.rs.keys(), o).trim(f.q).dead_letters_trimmed == 2);
}

namespace {

// A redis-server of the test's own, with an append-only file fsynced on every write, so a
// test can kill it (as a crash) and start it again on the same data.
class PrivateRedis {
  public:
    PrivateRedis()
        : dir_(std::filesystem::temp_directory_path() / mqtest::unique_name("retention-redis")) {
        std::filesystem::create_directories(dir_);
        port_ = mqtest::dead_port();
        start();
    }
    ~PrivateRedis() {
        kill_now();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    void start() {
        std::string cmd =
            "redis-server --port " + std::to_string(port_) + " --bind 127.0.0.1 --dir " +
            dir_.string() + " --appendonly yes --appendfsync always --save '' --daemonize yes" +
            " --pidfile " + (dir_ / "pid").string() + " --logfile " + (dir_ / "log").string();
        REQUIRE(std::system(cmd.c_str()) == 0);
        REQUIRE(eventually([&] {
            try {
                mq::redis::Connection c(endpoint());
                return c.command({"PING"}).as_string() == "PONG";
            } catch (const mq::Error&) {
                return false;
            }
        }));
    }
    void kill_now() {
        std::ifstream in(dir_ / "pid");
        pid_t pid = 0;
        if (in >> pid && pid > 0) {
            ::kill(pid, SIGKILL);
            eventually([&] { return ::kill(pid, 0) != 0; }, 5s);
        }
        std::filesystem::remove(dir_ / "pid");
    }
    mq::redis::Endpoint endpoint() const {
        return mq::redis::parse_url("redis://127.0.0.1:" + std::to_string(port_) + "/0");
    }

  private:
    std::filesystem::path dir_;
    int port_ = 0;
};

}  // namespace

TEST_CASE(
    "Redis down during a trim is a clear backend error, and after a restart nothing unfinished was "
    "lost",
    "[retention][outage]") {
    PrivateRedis server;
    mq::redis::Connection redis(server.endpoint());
    mq::KeyLayout keys("retention:");
    mq::Queue q;
    q.tenant = "acme";
    q.name = "orders";
    q.partition_count = 2;
    mq::ConsumerGroups groups(redis, keys);
    mq::Subscription s;
    s.name = "s";
    s.start_from = "earliest";
    groups.ensure(q, s);
    mq::Publisher pub(redis, keys);
    std::vector<mq::PublishRequest> batch(20);
    for (auto& r : batch) r.payload = "x";
    pub.publish_batch(q, batch);
    auto got = groups.read_new(q, s, "c", 0, 4, 0ms);
    groups.ack(q, "s", 0, {got[0].stream_id, got[1].stream_id});

    server.kill_now();
    mq::Trimmer trimmer(redis, keys);
    try {
        trimmer.trim(q);
        FAIL("trim succeeded with Redis down");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
        CHECK_THAT(e.what(), Catch::Contains("127.0.0.1"));
    }

    server.start();               // the crash-restart: the append-only file brings the data back
    auto pass = trimmer.trim(q);  // the same connection reconnects
    CHECK(pass.trimmed == 2);
    CHECK(redis.command({"XLEN", keys.stream(q.tenant, q.name, 0)}).as_integer() == 8);
    CHECK(redis.command({"XLEN", keys.stream(q.tenant, q.name, 1)}).as_integer() == 10);
    CHECK(groups.pending(q, "s", 0, 100).size() == 2);
}
