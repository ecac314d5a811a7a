// Races of issue 10 against a real redis-server, each with a test that failed before its
// fix: double dead-letter, pull fairness across partitions, lost resume, stop with
// detached threads; and the consumer-group start rule for partitions added later.
#include <catch2/catch.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "eventually.hpp"
#include "harness.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/consume/pull.hpp"
#include "mq/core/partitioner.hpp"
#include "mq/deliver/exec.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/worker/runner.hpp"

using namespace std::chrono_literals;
using mqtest::eventually;

namespace {

mq::Queue make_queue(int partitions) {
    mq::Queue q;
    q.tenant = "acme";
    q.name = mqtest::unique_name("q");
    q.partition_count = partitions;
    return q;
}

mq::Subscription make_sub(const mq::Queue& q, const std::string& name,
                          const std::string& type = "webhook") {
    mq::Subscription s;
    s.id = "0190a5c4-4444-7abc-8def-0123456789ab";
    s.tenant = q.tenant;
    s.queue = q.name;
    s.name = name;
    s.type = type;
    s.start_from = "earliest";
    s.retry.initial_backoff = 100ms;
    s.retry.max_backoff = 1s;
    s.retry.jitter = 0;
    s.retry.max_attempts = 3;
    s.visibility_timeout = 1s;
    return s;
}

// A message key that lands on `partition` of `partitions` (fnv1a_64(key) % partitions).
std::string key_for(int partition, int partitions) {
    for (int i = 0;; ++i) {
        std::string k = "k" + std::to_string(i);
        if (static_cast<int>(mq::fnv1a_64(k) % static_cast<std::uint64_t>(partitions)) == partition)
            return k;
    }
}

void publish_to(mq::Publisher& pub, const mq::Queue& q, int partition, int n) {
    std::vector<mq::PublishRequest> batch(static_cast<std::size_t>(n));
    for (auto& r : batch) {
        r.payload = "p" + std::to_string(partition);
        r.key = key_for(partition, q.partition_count);
    }
    pub.publish_batch(q, batch);
}

}  // namespace

TEST_CASE("dead-lettering an entry twice writes one dead letter", "[race][dead-letter]") {
    mqtest::RedisScope rs;
    auto q = make_queue(1);
    auto sub = make_sub(q, "billing");
    mq::ConsumerGroups groups(rs.redis(), rs.keys());
    groups.ensure(q, sub);
    mq::Publisher pub(rs.redis(), rs.keys());
    publish_to(pub, q, 0, 1);
    auto got = groups.read_new(q, sub, "c1", 0, 10, 0ms);
    REQUIRE(got.size() == 1);
    CHECK(groups.dead_letter(q, "billing", 0, got[0].stream_id, "max_attempts", "first", 3));
    // A second reclaimer that saw the same pending entry a moment earlier.
    CHECK_FALSE(groups.dead_letter(q, "billing", 0, got[0].stream_id, "max_attempts", "second", 3));
    CHECK(rs.redis().command({"XLEN", rs.keys().dead_letters(q.tenant, q.name, 0)}).as_integer() ==
          1);
}

TEST_CASE("racing reclaimers dead-letter each exhausted entry exactly once",
          "[race][dead-letter]") {
    mqtest::RedisScope rs;
    auto q = make_queue(1);
    auto sub = make_sub(q, "billing");
    sub.retry.max_attempts = 1;
    mq::ConsumerGroups groups(rs.redis(), rs.keys());
    groups.ensure(q, sub);
    mq::Publisher pub(rs.redis(), rs.keys());
    publish_to(pub, q, 0, 60);
    REQUIRE(groups.read_new(q, sub, "crashed", 0, 100, 0ms).size() == 60);
    std::this_thread::sleep_for(1100ms);  // past the visibility timeout, on the last attempt
    std::atomic<int> dead{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&, t] {
            auto conn = rs.connect();
            mq::ConsumerGroups g(*conn, rs.keys());
            dead += g.reclaim(q, sub, "r" + std::to_string(t), 0, 100).dead_lettered;
        });
    for (auto& t : ts) t.join();
    CHECK(dead == 60);
    CHECK(rs.redis().command({"XLEN", rs.keys().dead_letters(q.tenant, q.name, 0)}).as_integer() ==
          60);
    CHECK(groups.pending(q, "billing", 0, 100).empty());
}

TEST_CASE("pull serves every partition while partition 0 is busy", "[race][pull]") {
    mqtest::RedisScope rs;
    auto q = make_queue(4);
    auto sub = make_sub(q, "puller", "pull");
    mq::ConsumerGroups(rs.redis(), rs.keys()).ensure(q, sub);
    mq::Publisher pub(rs.redis(), rs.keys());
    publish_to(pub, q, 0, 300);
    for (int p = 1; p < 4; ++p) publish_to(pub, q, p, 1);
    // mq-api makes a PullConsumer per request: fairness may not depend on reusing one.
    std::set<int> served;
    for (int i = 0; i < 4; ++i) {
        mq::PullConsumer pull(rs.redis(), rs.keys(), "pull-test-receipt-key");
        for (const auto& m : pull.pull(q, sub, "pull:svc", 10)) served.insert(m.fetched.partition);
    }
    CHECK(served == std::set<int>{0, 1, 2, 3});
}

namespace {

// Blocks every delivery until released or abandoned; counts deliveries still inside.
class GateHandler : public mq::Handler {
  public:
    std::atomic<int> inside{0};
    std::atomic<int> delivered{0};
    std::atomic<bool> open{false};
    mq::DeliveryResult deliver(const mq::Delivery& d) override {
        ++inside;
        mq::DeliveryResult r;
        while (!open && !(d.abandoned && *d.abandoned)) std::this_thread::sleep_for(5ms);
        // Still using the runner's data after the abandon, as a slow handler would.
        std::this_thread::sleep_for(50ms);
        r.outcome = open ? mq::DeliveryOutcome::kAck : mq::DeliveryOutcome::kRetry;
        if (open) ++delivered;
        --inside;
        return r;
    }
};

std::unique_ptr<mq::SubscriptionRunner> make_runner(mqtest::RedisScope& rs, const mq::Queue& q,
                                                    const mq::Subscription& sub,
                                                    std::shared_ptr<mq::Handler> h) {
    mq::RunnerOptions o;
    o.endpoint = mq::redis::parse_url(mqtest::services().redis_url);
    o.keys = rs.keys();
    o.queue = q;
    o.subscription = sub;
    o.consumer = "w1";
    o.handler = std::move(h);
    o.fetch_block = 100ms;
    o.reclaim_interval = 20ms;
    return std::make_unique<mq::SubscriptionRunner>(o, std::make_shared<mq::RunnerMetrics>());
}

}  // namespace

TEST_CASE("a resume is never lost, however pause and resume interleave", "[race][pause]") {
    mqtest::RedisScope rs;
    auto q = make_queue(1);
    auto sub = make_sub(q, "billing");
    sub.concurrency = 8;
    auto handler = std::make_shared<GateHandler>();
    handler->open = true;
    auto runner = make_runner(rs, q, sub, handler);
    runner->start();
    mq::Publisher pub(rs.redis(), rs.keys());
    publish_to(pub, q, 0, 200);
    // Toggle while handlers go to sleep and wake up; end resumed.
    for (int i = 0; i < 3000; ++i) runner->set_paused(i % 2 == 0);
    runner->set_paused(false);
    CHECK(eventually([&] { return handler->delivered >= 200; }, 10s));
    runner->stop(std::chrono::steady_clock::now() + 2s);
}

TEST_CASE("stop abandons deliveries at the deadline and joins every thread", "[race][stop]") {
    mqtest::RedisScope rs;
    auto q = make_queue(1);
    auto sub = make_sub(q, "billing");
    sub.concurrency = 2;
    sub.visibility_timeout = 30s;
    auto handler = std::make_shared<GateHandler>();
    auto runner = make_runner(rs, q, sub, handler);
    runner->start();
    mq::Publisher pub(rs.redis(), rs.keys());
    publish_to(pub, q, 0, 2);
    REQUIRE(eventually([&] { return handler->inside == 2; }, 5s));
    auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(runner->stop(t0 + 200ms));
    // Joined, not detached: nothing of the runner runs once stop() returned.
    CHECK(handler->inside == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
    runner.reset();
    // Left pending for redelivery (not failed, not dead-lettered).
    mq::ConsumerGroups groups(rs.redis(), rs.keys());
    auto pending = groups.pending(q, "billing", 0, 10);
    REQUIRE(pending.size() == 2);
    CHECK(pending[0].consumer == "w1");
    CHECK(pending[0].delivery_count == 1);
    CHECK(rs.redis().command({"XLEN", rs.keys().dead_letters(q.tenant, q.name, 0)}).as_integer() ==
          0);
}

TEST_CASE("stop terminates an exec command still running at the deadline", "[race][stop]") {
    mqtest::RedisScope rs;
    auto q = make_queue(1);
    auto sub = make_sub(q, "billing", "exec");
    sub.visibility_timeout = 30s;
    mq::ExecConfig c;
    std::string marker = "/tmp/" + mqtest::unique_name("mq-exec-stop");
    c.command = {"/bin/sh", "-c", "sleep 30; touch " + marker};
    c.timeout = 60s;
    c.kill_grace = 500ms;
    auto runner = make_runner(rs, q, sub, std::make_shared<mq::ExecHandler>(c));
    runner->start();
    mq::Publisher pub(rs.redis(), rs.keys());
    publish_to(pub, q, 0, 1);
    mq::ConsumerGroups groups(rs.redis(), rs.keys());
    REQUIRE(eventually([&] { return groups.pending(q, "billing", 0, 10).size() == 1; }, 5s));
    std::this_thread::sleep_for(200ms);  // the command is running
    auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(runner->stop(t0 + 300ms));
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
    auto pending = groups.pending(q, "billing", 0, 10);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].consumer == "w1");
}

TEST_CASE("a partition added later gets its group at 0, even for a subscription from latest",
          "[race][groups]") {
    mqtest::RedisScope rs;
    auto q = make_queue(2);
    auto sub = make_sub(q, "late");
    sub.start_from = "latest";
    mq::ConsumerGroups groups(rs.redis(), rs.keys());
    mq::Publisher pub(rs.redis(), rs.keys());
    publish_to(pub, q, 0, 1);  // before the subscription: not for it
    REQUIRE(groups.ensure(q, sub) == 2);
    // The queue grows and a message reaches a new partition before anyone created its group
    // (an older mqctl, or a subscription created concurrently).
    mq::Queue grown = q;
    grown.partition_count = 4;
    publish_to(pub, grown, 3, 1);
    CHECK(groups.ensure(grown, sub) == 2);
    CHECK(groups.read_new(grown, sub, "c", 3, 10, 0ms).size() == 1);
    CHECK(groups.read_new(grown, sub, "c", 0, 10, 0ms)
              .empty());  // latest still holds where it applied
}

TEST_CASE("ensure_partitions creates groups at 0 on new partitions only", "[race][groups]") {
    mqtest::RedisScope rs;
    auto q = make_queue(4);
    auto sub = make_sub(q, "s");
    mq::ConsumerGroups groups(rs.redis(), rs.keys());
    mq::Publisher pub(rs.redis(), rs.keys());
    publish_to(pub, q, 2, 3);
    CHECK(groups.ensure_partitions(q, sub, 2) == 2);
    CHECK(groups.ensure_partitions(q, sub, 2) == 0);  // idempotent
    CHECK(mqtest::group_names(rs.redis(), rs.keys().stream(q.tenant, q.name, 1)).empty());
    CHECK(groups.read_new(q, sub, "c", 2, 10, 0ms).size() == 3);
}
