// Consumer groups of a subscription against a real redis-server: fetch, ack, retry with
// backoff, visibility timeout, dead letters, lease extension.
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "harness.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/core/time.hpp"
#include "mq/publish/publisher.hpp"

using namespace std::chrono_literals;

namespace {

struct Fixture {
    mqtest::RedisScope rs;
    mq::Queue q;
    mq::Subscription sub;
    std::unique_ptr<mq::ConsumerGroups> groups;
    std::unique_ptr<mq::Publisher> pub;

    explicit Fixture(int partitions = 1) {
        q.tenant = "acme";
        q.name = mqtest::unique_name("q");
        q.partition_count = partitions;
        sub.tenant = q.tenant;
        sub.queue = q.name;
        sub.name = "billing";
        sub.start_from = "earliest";
        sub.retry.initial_backoff = 100ms;
        sub.retry.max_backoff = 1000ms;
        sub.retry.multiplier = 2.0;
        sub.retry.jitter = 0.0;
        sub.retry.max_attempts = 3;
        sub.visibility_timeout = 1000ms;
        groups = std::make_unique<mq::ConsumerGroups>(rs.redis(), rs.keys());
        pub = std::make_unique<mq::Publisher>(rs.redis(), rs.keys());
        groups->ensure(q, sub);
    }
    std::string publish(const std::string& payload) {
        mq::PublishRequest r;
        r.payload = payload;
        return pub->publish(q, r).message_id;
    }
    std::vector<mq::Fetched> read(const std::string& consumer, int n = 10) {
        return groups->read_new(q, sub, consumer, 0, n, 0ms);
    }
    // Reclaims for `consumer` until something comes back or `limit` passes.
    mq::Reclaimed reclaim_until(const std::string& consumer, std::chrono::milliseconds limit) {
        auto end = std::chrono::steady_clock::now() + limit;
        for (;;) {
            auto r = groups->reclaim(q, sub, consumer, 0);
            if (!r.claimed.empty() || r.dead_lettered || std::chrono::steady_clock::now() > end)
                return r;
            std::this_thread::sleep_for(5ms);
        }
    }
};

}  // namespace

TEST_CASE("a new subscription from earliest sees existing messages, from latest only new ones",
          "[consume]") {
    Fixture f;
    f.publish("old");
    mq::Subscription late = f.sub;
    late.name = "late";
    late.start_from = "latest";
    REQUIRE(f.groups->ensure(f.q, late) == 1);
    CHECK(f.groups->ensure(f.q, late) == 0);  // idempotent
    f.publish("new");
    auto early = f.read("c1");
    REQUIRE(early.size() == 2);
    CHECK(early[0].message.payload == "old");
    CHECK(early[0].delivery_count == 1);
    auto only_new = f.groups->read_new(f.q, late, "c1", 0, 10, 0ms);
    REQUIRE(only_new.size() == 1);
    CHECK(only_new[0].message.payload == "new");
}

TEST_CASE("each subscription gets every message once; acking one does not touch the other",
          "[consume]") {
    Fixture f(2);
    mq::Subscription audit = f.sub;
    audit.name = "audit";
    f.groups->ensure(f.q, audit);
    std::set<std::string> ids;
    for (int i = 0; i < 20; ++i) ids.insert(f.publish("m" + std::to_string(i)));
    std::set<std::string> billing, auditing;
    for (int p = 0; p < 2; ++p) {
        for (auto& m : f.groups->read_new(f.q, f.sub, "c", p, 100, 0ms)) {
            billing.insert(m.message.id);
            f.groups->ack(f.q, "billing", p, {m.stream_id});
        }
        for (auto& m : f.groups->read_new(f.q, audit, "c", p, 100, 0ms))
            auditing.insert(m.message.id);
    }
    CHECK(billing == ids);
    CHECK(auditing == ids);
    CHECK(f.groups->pending(f.q, "billing", 0, 100).empty());
    CHECK(f.groups->pending(f.q, "audit", 0, 100).size() +
              f.groups->pending(f.q, "audit", 1, 100).size() ==
          20);
}

TEST_CASE("a failed delivery is redelivered after its backoff, not before", "[consume][retry]") {
    Fixture f;
    f.publish("flaky");
    auto first = f.read("c1");
    REQUIRE(first.size() == 1);
    f.groups->retry_later(f.q, "billing", 0, first[0].stream_id, std::nullopt);
    auto pending = f.groups->pending(f.q, "billing", 0, 10);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].consumer == mq::kRetryConsumer);
    CHECK(pending[0].delivery_count == 1);

    CHECK(f.groups->reclaim(f.q, f.sub, "c2", 0).claimed.empty());  // 100 ms not passed yet
    auto t0 = std::chrono::steady_clock::now();
    auto r = f.reclaim_until("c2", 2s);
    auto waited = std::chrono::steady_clock::now() - t0;
    REQUIRE(r.claimed.size() == 1);
    CHECK(r.claimed[0].delivery_count == 2);
    CHECK(r.claimed[0].message.payload == "flaky");
    CHECK(waited >= 50ms);
    CHECK(waited < 1000ms);
}

TEST_CASE("backoff grows with each failure and dead-letters after max_attempts",
          "[consume][retry]") {
    Fixture f;
    auto id = f.publish("always fails");
    auto d = f.read("c1");
    REQUIRE(d.size() == 1);
    std::vector<std::chrono::milliseconds> waits;
    for (int attempt = 1; attempt < 3; ++attempt) {
        f.groups->retry_later(f.q, "billing", 0, d[0].stream_id, std::nullopt);
        auto t0 = std::chrono::steady_clock::now();
        auto r = f.reclaim_until("c1", 3s);
        waits.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - t0));
        REQUIRE(r.claimed.size() == 1);
        CHECK(r.claimed[0].delivery_count == attempt + 1);
        d = r.claimed;
    }
    // 100 ms then 200 ms (no jitter), within scheduling tolerance.
    CHECK(waits[0] >= 90ms);
    CHECK(waits[1] >= 190ms);
    CHECK(waits[1] > waits[0]);

    // Third failure with max_attempts 3: the reclaimer dead-letters instead of claiming.
    f.groups->retry_later(f.q, "billing", 0, d[0].stream_id, std::nullopt);
    auto r = f.reclaim_until("c1", 3s);
    CHECK(r.claimed.empty());
    CHECK(r.dead_lettered == 1);
    CHECK(f.groups->pending(f.q, "billing", 0, 10).empty());
    auto dlq = f.rs.redis().command(
        {"XRANGE", f.rs.keys().dead_letters(f.q.tenant, f.q.name, 0), "-", "+"});
    REQUIRE(dlq.elements.size() == 1);
    std::map<std::string, std::string> fields;
    const auto& kv = dlq.elements[0].elements[1].elements;
    for (std::size_t i = 0; i + 1 < kv.size(); i += 2) fields[kv[i].str] = kv[i + 1].str;
    CHECK(fields["id"] == id);
    CHECK(fields["p"] == "always fails");
    CHECK(fields["dlr"] == "max_attempts");
    CHECK(fields["dla"] == "3");
    CHECK(fields["dls"] == "billing");
    CHECK(fields["dlo"] == d[0].stream_id);
}

TEST_CASE("Retry-After holds a retry back beyond the backoff", "[consume][retry]") {
    Fixture f;
    f.publish("rate limited");
    auto d = f.read("c1");
    f.groups->retry_later(f.q, "billing", 0, d[0].stream_id, mq::now_ms() + 600);
    std::this_thread::sleep_for(250ms);  // backoff (100 ms) is over, Retry-After is not
    CHECK(f.groups->reclaim(f.q, f.sub, "c1", 0).claimed.empty());
    auto r = f.reclaim_until("c1", 2s);
    CHECK(r.claimed.size() == 1);
}

TEST_CASE("an entry held by a dead consumer is reclaimed after the visibility timeout",
          "[consume][visibility]") {
    Fixture f;
    f.publish("in flight");
    auto d = f.read("crashed-worker");
    REQUIRE(d.size() == 1);
    std::this_thread::sleep_for(300ms);
    CHECK(f.groups->reclaim(f.q, f.sub, "survivor", 0).claimed.empty());  // still within 1 s
    auto r = f.reclaim_until("survivor", 3s);
    REQUIRE(r.claimed.size() == 1);
    CHECK(r.claimed[0].delivery_count == 2);
    auto pending = f.groups->pending(f.q, "billing", 0, 10);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].consumer == "survivor");
}

TEST_CASE("extending the lease keeps a long handler's entry from being reclaimed",
          "[consume][visibility]") {
    Fixture f;
    f.publish("slow job");
    auto d = f.read("worker-a");
    for (int i = 0; i < 4; ++i) {
        std::this_thread::sleep_for(400ms);
        f.groups->extend(f.q, "billing", "worker-a", 0, {d[0].stream_id});
        CHECK(f.groups->reclaim(f.q, f.sub, "worker-b", 0).claimed.empty());
    }
    auto pending = f.groups->pending(f.q, "billing", 0, 10);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].consumer == "worker-a");
    CHECK(pending[0].delivery_count == 1);
}

TEST_CASE("concurrent reclaimers claim each due entry once", "[consume][visibility]") {
    Fixture f;
    for (int i = 0; i < 50; ++i) f.publish(std::to_string(i));
    REQUIRE(f.read("dead", 100).size() == 50);
    std::this_thread::sleep_for(1100ms);
    std::atomic<int> claimed{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 3; ++t)
        ts.emplace_back([&, t] {
            auto conn = f.rs.connect();
            mq::ConsumerGroups g(*conn, f.rs.keys());
            claimed += static_cast<int>(
                g.reclaim(f.q, f.sub, "r" + std::to_string(t), 0, 100).claimed.size());
        });
    for (auto& t : ts) t.join();
    CHECK(claimed == 50);
}

TEST_CASE(
    "a last attempt lost with its consumer is dead-lettered, or dropped when dead letters are off",
    "[consume][visibility]") {
    Fixture f;
    f.sub.retry.max_attempts = 1;
    f.publish("one shot");
    f.read("crashed");
    std::this_thread::sleep_for(1100ms);
    auto r = f.groups->reclaim(f.q, f.sub, "survivor", 0);
    CHECK(r.dead_lettered == 1);
    auto dlq = f.rs.redis().command(
        {"XRANGE", f.rs.keys().dead_letters(f.q.tenant, f.q.name, 0), "-", "+"});
    REQUIRE(dlq.elements.size() == 1);

    f.sub.dead_letter = false;
    f.publish("one shot, no dlq");
    f.read("crashed");
    std::this_thread::sleep_for(1100ms);
    r = f.groups->reclaim(f.q, f.sub, "survivor", 0);
    CHECK(r.dropped == 1);
    CHECK(f.groups->pending(f.q, "billing", 0, 10).empty());
}

TEST_CASE("dead-lettering a trimmed entry only acks it", "[consume]") {
    Fixture f;
    f.publish("gone");
    auto d = f.read("c1");
    f.rs.redis().command({"XDEL", f.rs.keys().stream(f.q.tenant, f.q.name, 0), d[0].stream_id});
    CHECK_FALSE(
        f.groups->dead_letter(f.q, "billing", 0, d[0].stream_id, "handler_rejected", "410", 1));
    CHECK(f.groups->pending(f.q, "billing", 0, 10).empty());
    CHECK(f.rs.redis()
              .command({"XLEN", f.rs.keys().dead_letters(f.q.tenant, f.q.name, 0)})
              .as_integer() == 0);
}

TEST_CASE("reading a group that does not exist says so", "[consume]") {
    Fixture f;
    mq::Subscription missing = f.sub;
    missing.name = "nobody";
    try {
        f.groups->read_new(f.q, missing, "c", 0, 1, 0ms);
        FAIL("read from a missing group");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kSubscriptionNotFound);
    }
    f.groups->destroy(f.q, "billing");
    CHECK_THROWS_AS(f.read("c"), mq::Error);
}
