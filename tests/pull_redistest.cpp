// Pull delivery against a real redis-server: pull, ack, lease expiry and redelivery,
// stale receipts, nack with delay, lease extension, dead letters.
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "harness.hpp"
#include "mq/consume/pull.hpp"
#include "mq/core/time.hpp"
#include "mq/publish/publisher.hpp"

using namespace std::chrono_literals;

namespace {

const std::string kKey = "pull-test-receipt-key";

struct Fixture {
    mqtest::RedisScope rs;
    mq::Queue q;
    mq::Subscription sub;
    std::unique_ptr<mq::PullConsumer> pull;
    std::unique_ptr<mq::Publisher> pub;

    explicit Fixture(int partitions = 1) {
        q.tenant = "acme";
        q.name = mqtest::unique_name("q");
        q.partition_count = partitions;
        sub.id = "0190a5c4-3333-7abc-8def-0123456789ab";
        sub.tenant = q.tenant;
        sub.queue = q.name;
        sub.name = "puller";
        sub.type = "pull";
        sub.start_from = "earliest";
        sub.retry.initial_backoff = 100ms;
        sub.retry.max_backoff = 1000ms;
        sub.retry.jitter = 0.0;
        sub.retry.max_attempts = 3;
        sub.visibility_timeout = 500ms;
        mq::ConsumerGroups(rs.redis(), rs.keys()).ensure(q, sub);
        pull = std::make_unique<mq::PullConsumer>(rs.redis(), rs.keys(), kKey);
        pub = std::make_unique<mq::Publisher>(rs.redis(), rs.keys());
    }
    std::string publish(const std::string& payload) {
        mq::PublishRequest r;
        r.payload = payload;
        return pub->publish(q, r).message_id;
    }
    std::vector<mq::PulledMessage> take(int n = 10, const std::string& consumer = "pull:svc") {
        return pull->pull(q, sub, consumer, n);
    }
    mq::Receipt receipt(const mq::PulledMessage& m) {
        return mq::decode_receipt(m.receipt, kKey, sub.id);
    }
    std::int64_t pending_count() {
        auto r = rs.redis().command({"XPENDING", rs.keys().stream(q.tenant, q.name, 0), sub.name});
        return r.elements.at(0).as_integer();
    }
    // Pulls until something comes back or `limit` passes.
    std::vector<mq::PulledMessage> take_within(std::chrono::milliseconds limit,
                                               const std::string& consumer = "pull:b") {
        auto end = std::chrono::steady_clock::now() + limit;
        for (;;) {
            auto got = take(10, consumer);
            if (!got.empty() || std::chrono::steady_clock::now() > end) return got;
            std::this_thread::sleep_for(10ms);
        }
    }
};

}  // namespace

TEST_CASE("pull hands out messages from every partition, each once, with receipts and a lease",
          "[pull]") {
    Fixture f(4);
    std::set<std::string> published;
    for (int i = 0; i < 12; ++i) published.insert(f.publish("m" + std::to_string(i)));
    std::set<std::string> seen;
    std::set<int> partitions;
    const auto before = mq::now_ms();
    for (int round = 0; round < 4; ++round) {
        auto got = f.take(5);
        CHECK(got.size() <= 5);
        for (const auto& m : got) {
            CHECK(seen.insert(m.fetched.message.id).second);
            partitions.insert(m.fetched.partition);
            CHECK(m.fetched.delivery_count == 1);
            CHECK(m.lease_expires_ms >= before + 500);
            auto r = f.receipt(m);
            CHECK(r.partition == m.fetched.partition);
            CHECK(r.stream_id == m.fetched.stream_id);
            CHECK(r.delivery_count == 1);
        }
    }
    CHECK(seen == published);
    CHECK(partitions == std::set<int>{0, 1, 2, 3});
    CHECK_THROWS_AS(f.take(0), mq::ValidationError);
    CHECK_THROWS_AS(f.take(101), mq::ValidationError);
}

TEST_CASE("pull on an empty subscription returns nothing at once", "[pull]") {
    Fixture f(8);
    auto t0 = std::chrono::steady_clock::now();
    CHECK(f.take(100).empty());
    CHECK(std::chrono::steady_clock::now() - t0 < 200ms);
}

TEST_CASE("ack removes the entry from pending and a second ack of the same receipt is lease-lost",
          "[pull]") {
    Fixture f;
    f.publish("a");
    f.publish("b");
    auto got = f.take();
    REQUIRE(got.size() == 2);
    CHECK(f.pending_count() == 2);
    auto results = f.pull->ack(f.q, f.sub, {f.receipt(got[0]), f.receipt(got[1])});
    CHECK(results == std::vector<mq::AckResult>{mq::AckResult::kAcked, mq::AckResult::kAcked});
    CHECK(f.pending_count() == 0);
    CHECK(f.pull->ack(f.q, f.sub, {f.receipt(got[0])}) ==
          std::vector<mq::AckResult>{mq::AckResult::kLeaseLost});
    // A receipt of another subscription is refused outright.
    auto other = f.receipt(got[0]);
    other.subscription_id = "0190a5c4-4444-7abc-8def-0123456789ab";
    CHECK_THROWS_AS(f.pull->ack(f.q, f.sub, {other}), mq::ValidationError);
}

TEST_CASE("an expired lease is redelivered with delivery count 2 and the old receipt is lease-lost",
          "[pull]") {
    Fixture f;
    f.publish("slow");
    auto first = f.take(10, "pull:a");
    REQUIRE(first.size() == 1);
    CHECK(f.take(10, "pull:b").empty());  // leased to a
    auto again = f.take_within(2000ms);
    REQUIRE(again.size() == 1);
    CHECK(again[0].fetched.message.id == first[0].fetched.message.id);
    CHECK(again[0].fetched.delivery_count == 2);
    CHECK(f.receipt(again[0]).delivery_count == 2);
    CHECK(again[0].receipt != first[0].receipt);
    CHECK(f.pull->ack(f.q, f.sub, {f.receipt(first[0])}) ==
          std::vector<mq::AckResult>{mq::AckResult::kLeaseLost});
    CHECK(f.pull->nack(f.q, f.sub, f.receipt(first[0]), 0ms) == mq::AckResult::kLeaseLost);
    std::int64_t until = 0;
    CHECK(f.pull->extend(f.q, f.sub, f.receipt(first[0]), "pull:a", &until) ==
          mq::AckResult::kLeaseLost);
    CHECK(f.pending_count() == 1);  // the stale receipt did not ack b's delivery
    CHECK(f.pull->ack(f.q, f.sub, {f.receipt(again[0])}) ==
          std::vector<mq::AckResult>{mq::AckResult::kAcked});
    CHECK(f.pending_count() == 0);
}

TEST_CASE("a nack with a delay is not redelivered before the delay, and is after", "[pull]") {
    Fixture f;
    f.sub.visibility_timeout = 30000ms;  // only the nack can bring it back
    f.publish("retry me");
    auto got = f.take();
    REQUIRE(got.size() == 1);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(f.pull->nack(f.q, f.sub, f.receipt(got[0]), 700ms) == mq::AckResult::kAcked);
    CHECK(f.take().empty());
    std::this_thread::sleep_for(400ms);
    CHECK(f.take().empty());
    auto again = f.take_within(2000ms);
    REQUIRE(again.size() == 1);
    CHECK(std::chrono::steady_clock::now() - t0 >= 700ms);
    CHECK(again[0].fetched.delivery_count == 2);
    // nack without delay: back on the next pull.
    CHECK(f.pull->nack(f.q, f.sub, f.receipt(again[0]), 0ms) == mq::AckResult::kAcked);
    auto third = f.take();
    REQUIRE(third.size() == 1);
    CHECK(third[0].fetched.delivery_count == 3);
    CHECK_THROWS_AS(f.pull->nack(f.q, f.sub, f.receipt(third[0]), -1ms), mq::ValidationError);
    CHECK_THROWS_AS(f.pull->nack(f.q, f.sub, f.receipt(third[0]), 13h), mq::ValidationError);
}

TEST_CASE("extend keeps a message from being redelivered past its original lease", "[pull]") {
    Fixture f;
    f.publish("long job");
    auto got = f.take(10, "pull:a");
    REQUIRE(got.size() == 1);
    const auto original_expiry = got[0].lease_expires_ms;
    for (int i = 0; i < 4; ++i) {  // 4 x 300 ms = 1.2 s, well past the 500 ms lease
        std::this_thread::sleep_for(300ms);
        std::int64_t until = 0;
        REQUIRE(f.pull->extend(f.q, f.sub, f.receipt(got[0]), "pull:a", &until) ==
                mq::AckResult::kAcked);
        CHECK(until > original_expiry);
        CHECK(f.take(10, "pull:b").empty());
    }
    CHECK(f.pull->ack(f.q, f.sub, {f.receipt(got[0])}) ==
          std::vector<mq::AckResult>{mq::AckResult::kAcked});
    // A nacked delivery cannot be extended.
    f.publish("nacked");
    auto n = f.take();
    REQUIRE(n.size() == 1);
    REQUIRE(f.pull->nack(f.q, f.sub, f.receipt(n[0]), 10000ms) == mq::AckResult::kAcked);
    CHECK(f.pull->extend(f.q, f.sub, f.receipt(n[0]), "pull:svc", nullptr) ==
          mq::AckResult::kLeaseLost);
}

TEST_CASE("after max_attempts a pulled message goes to the dead-letter stream", "[pull]") {
    Fixture f;
    f.sub.retry.max_attempts = 2;
    f.publish("poison");
    auto got = f.take();
    REQUIRE(got.size() == 1);
    REQUIRE(f.pull->nack(f.q, f.sub, f.receipt(got[0]), 0ms) == mq::AckResult::kAcked);
    got = f.take();
    REQUIRE(got.size() == 1);
    CHECK(got[0].fetched.delivery_count == 2);
    REQUIRE(f.pull->nack(f.q, f.sub, f.receipt(got[0]), 0ms) == mq::AckResult::kAcked);
    CHECK(f.take().empty());
    auto dlq = f.rs.redis().command(
        {"XRANGE", f.rs.keys().dead_letters(f.q.tenant, f.q.name, 0), "-", "+"});
    REQUIRE(dlq.elements.size() == 1);
    CHECK(f.pending_count() == 0);
    CHECK(f.pull->ack(f.q, f.sub, {f.receipt(got[0])}) ==
          std::vector<mq::AckResult>{mq::AckResult::kLeaseLost});
}

TEST_CASE(
    "pull skips and acks what the filter rejects, yields nothing when paused, refuses non-pull "
    "subscriptions",
    "[pull]") {
    Fixture f;
    f.sub.filter = {{"headers", {{"region", "eu"}}}};
    mq::PublishRequest eu, us;
    eu.payload = "eu";
    eu.headers = {{"region", "eu"}};
    us.payload = "us";
    us.headers = {{"region", "us"}};
    f.pub->publish(f.q, us);
    f.pub->publish(f.q, eu);
    f.pub->publish(f.q, us);
    auto got = f.take(1);
    REQUIRE(got.size() == 1);
    CHECK(got[0].fetched.message.payload == "eu");
    CHECK(f.take().empty());
    CHECK(f.pending_count() == 1);

    f.pub->publish(f.q, eu);
    f.sub.status = "paused";
    CHECK(f.take().empty());
    f.sub.status = "active";
    CHECK(f.take().size() == 1);
    f.sub.type = "webhook";
    CHECK_THROWS_AS(f.take(), mq::ValidationError);
}
