// The worker's SubscriptionRunner against a real redis-server, with handlers written
// in the test so each outcome can be forced.
#include <catch2/catch.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "eventually.hpp"
#include "harness.hpp"
#include "mq/consume/dead_letters.hpp"
#include "mq/worker/runner.hpp"

using namespace std::chrono_literals;

namespace {

// Records deliveries; fails the first `failures` attempts of every message; optional delay.
class ScriptedHandler : public mq::Handler {
  public:
    int failures = 0;
    mq::DeliveryOutcome failure = mq::DeliveryOutcome::kRetry;
    std::chrono::milliseconds delay{0};
    bool in_process_handler = false;  ///< claim to be in-process: the runner delivers inline
    std::mutex mu;
    std::multiset<std::string> seen;
    std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> attempts;
    std::set<std::string> acked;

    mq::DeliveryResult deliver(const mq::Delivery& d) override {
        if (delay.count()) std::this_thread::sleep_for(delay);
        std::lock_guard lock(mu);
        seen.insert(d.message.id);
        attempts.emplace_back(d.message.id, std::chrono::steady_clock::now());
        mq::DeliveryResult r;
        if (d.attempt <= failures) {
            r.outcome = failure;
            r.error = "scripted failure " + std::to_string(d.attempt);
        } else {
            r.outcome = mq::DeliveryOutcome::kAck;
            acked.insert(d.message.id);
        }
        return r;
    }
    bool in_process() const override { return in_process_handler; }
    int batch_failures = 0;  ///< end_batch() fails this many times
    int batches = 0;
    std::string end_batch() override {
        std::lock_guard lock(mu);
        ++batches;
        return batches <= batch_failures ? "scripted batch failure" : "";
    }
    std::size_t acked_count() {
        std::lock_guard lock(mu);
        return acked.size();
    }
    std::size_t attempt_count() {
        std::lock_guard lock(mu);
        return attempts.size();
    }
};

struct RunnerFixture {
    mqtest::RedisScope rs;
    mq::Queue q;
    mq::Subscription sub;
    std::shared_ptr<ScriptedHandler> handler = std::make_shared<ScriptedHandler>();
    std::shared_ptr<mq::RunnerMetrics> metrics = std::make_shared<mq::RunnerMetrics>();
    mq::Publisher pub{rs.redis(), rs.keys()};

    explicit RunnerFixture(int partitions = 2) {
        q.tenant = "acme";
        q.name = mqtest::unique_name("q");
        q.partition_count = partitions;
        sub.tenant = q.tenant;
        sub.queue = q.name;
        sub.name = "billing";
        sub.start_from = "earliest";
        sub.concurrency = 4;
        sub.retry.initial_backoff = 100ms;
        sub.retry.max_backoff = 1s;
        sub.retry.jitter = 0;
        sub.retry.max_attempts = 3;
        sub.visibility_timeout = 2s;
    }
    std::unique_ptr<mq::SubscriptionRunner> runner(const std::string& consumer = "w1") {
        mq::RunnerOptions o;
        o.endpoint = mq::redis::parse_url(mqtest::services().redis_url);
        o.keys = rs.keys();
        o.queue = q;
        o.subscription = sub;
        o.consumer = consumer;
        o.handler = handler;
        o.fetch_block = 200ms;
        o.reclaim_interval = 20ms;
        return std::make_unique<mq::SubscriptionRunner>(o, metrics);
    }
    std::set<std::string> publish(int n, std::map<std::string, std::string> headers = {}) {
        std::vector<mq::PublishRequest> batch(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
            batch[static_cast<std::size_t>(i)].payload = std::to_string(i);
            batch[static_cast<std::size_t>(i)].headers = headers;
        }
        std::set<std::string> ids;
        for (auto& o : pub.publish_batch(q, batch)) ids.insert(o.message_id);
        return ids;
    }
    template <class Pred>
    static bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
        return mqtest::eventually(pred, limit, 10ms);
    }
    std::size_t pending_total() {
        mq::ConsumerGroups g(rs.redis(), rs.keys());
        std::size_t n = 0;
        for (int p = 0; p < q.partition_count; ++p) n += g.pending(q, sub.name, p, 10000).size();
        return n;
    }
};

}  // namespace

TEST_CASE("runner delivers every message exactly once when the handler succeeds", "[runner]") {
    RunnerFixture f;
    auto ids = f.publish(300);
    auto r = f.runner();
    r->start();
    REQUIRE(f.eventually([&] { return f.handler->acked_count() == 300; }));
    REQUIRE(r->stop(std::chrono::steady_clock::now() + 5s));
    CHECK(f.handler->acked == ids);
    CHECK(f.handler->attempt_count() == 300);
    CHECK(f.metrics->acked == 300);
    CHECK(f.pending_total() == 0);
}

TEST_CASE("runner retries failures with growing backoff, then dead-letters", "[runner]") {
    RunnerFixture f(1);
    f.handler->failures = 100;  // never succeeds
    auto ids = f.publish(1);
    auto r = f.runner();
    r->start();
    REQUIRE(f.eventually([&] { return f.metrics->dead_lettered == 1; }));
    r->stop(std::chrono::steady_clock::now() + 5s);
    REQUIRE(f.handler->attempts.size() == 3);
    auto gap1 = f.handler->attempts[1].second - f.handler->attempts[0].second;
    auto gap2 = f.handler->attempts[2].second - f.handler->attempts[1].second;
    CHECK(gap1 >= 90ms);   // backoff 100 ms
    CHECK(gap2 >= 190ms);  // then 200 ms
    CHECK(gap1 < 1000ms);
    CHECK(gap2 < 1500ms);
    mq::DeadLetterStore dlq(f.rs.redis(), f.rs.keys());
    auto dead = dlq.list(f.q, "billing", 10);
    REQUIRE(dead.size() == 1);
    CHECK(dead[0].reason == "max_attempts");
    CHECK(dead[0].error == "scripted failure 3");
    CHECK(dead[0].attempts == 3);
    CHECK(f.pending_total() == 0);
}

TEST_CASE("a handler rejection dead-letters at once without retries", "[runner]") {
    RunnerFixture f(1);
    f.handler->failures = 1;
    f.handler->failure = mq::DeliveryOutcome::kDead;
    f.publish(1);
    auto r = f.runner();
    r->start();
    REQUIRE(f.eventually([&] { return f.metrics->dead_lettered == 1; }));
    r->stop(std::chrono::steady_clock::now() + 5s);
    CHECK(f.handler->attempt_count() == 1);
    mq::DeadLetterStore dlq(f.rs.redis(), f.rs.keys());
    CHECK(dlq.list(f.q, "", 10).at(0).reason == "handler_rejected");
}

TEST_CASE("a filter acks non-matching messages without delivering and counts them", "[runner]") {
    RunnerFixture f(1);
    f.sub.filter = {{"headers", {{"region", "eu"}}}};
    f.publish(5, {{"region", "eu"}});
    f.publish(7, {{"region", "us"}});
    auto r = f.runner();
    r->start();
    REQUIRE(f.eventually([&] { return f.metrics->acked + f.metrics->filtered == 12; }));
    r->stop(std::chrono::steady_clock::now() + 5s);
    CHECK(f.handler->attempt_count() == 5);
    CHECK(f.metrics->filtered == 7);
    CHECK(f.pending_total() == 0);
}

TEST_CASE("pause stops deliveries within a second and resume restarts them", "[runner]") {
    RunnerFixture f(1);
    auto r = f.runner();
    r->start();
    f.publish(5);
    REQUIRE(f.eventually([&] { return f.handler->acked_count() == 5; }));
    r->set_paused(true);
    std::this_thread::sleep_for(1s);
    f.publish(5);
    std::this_thread::sleep_for(500ms);
    CHECK(f.handler->acked_count() == 5);
    r->set_paused(false);
    CHECK(f.eventually([&] { return f.handler->acked_count() == 10; }, 2s));
    r->stop(std::chrono::steady_clock::now() + 5s);
}

TEST_CASE("stop lets running deliveries finish and hands unstarted ones back at once", "[runner]") {
    RunnerFixture f(1);
    f.sub.concurrency = 2;
    f.sub.batch_size = 4;
    f.handler->delay = 300ms;
    f.publish(20);
    auto r = f.runner("leaving");
    r->start();
    REQUIRE(f.eventually([&] { return f.metrics->in_flight == 2; }));
    REQUIRE(r->stop(std::chrono::steady_clock::now() + 5s));
    std::size_t done = f.handler->acked_count();
    CHECK(done >= 2);
    // Nothing is left with the departed consumer: what is pending waits in mq-retry, due.
    mq::ConsumerGroups g(f.rs.redis(), f.rs.keys());
    for (const auto& p : g.pending(f.q, "billing", 0, 100)) CHECK(p.consumer == mq::kRetryConsumer);

    // A second worker delivers the rest promptly, long before the visibility timeout.
    f.handler->delay = 0ms;
    auto next = f.runner("arriving");
    next->start();
    CHECK(f.eventually([&] { return f.handler->acked_count() == 20; }, 1500ms));
    next->stop(std::chrono::steady_clock::now() + 5s);
    CHECK(f.pending_total() == 0);
}

TEST_CASE("two runners share a subscription and deliver each message once", "[runner]") {
    RunnerFixture f(2);
    auto ids = f.publish(400);
    auto a = f.runner("a");
    auto b = f.runner("b");
    a->start();
    b->start();
    REQUIRE(f.eventually([&] { return f.handler->acked_count() == 400; }));
    a->stop(std::chrono::steady_clock::now() + 5s);
    b->stop(std::chrono::steady_clock::now() + 5s);
    CHECK(f.handler->attempt_count() == 400);
    CHECK(f.handler->acked == ids);
}

TEST_CASE("a failing subscription's retries never reach another subscription of the queue",
          "[runner]") {
    RunnerFixture f(2);
    f.sub.retry.max_attempts = 3;
    f.handler->failures = 100;  // "billing" always fails
    auto ids = f.publish(30);
    auto failing = f.runner("w1");

    auto audit_handler = std::make_shared<ScriptedHandler>();
    mq::RunnerOptions o;
    o.endpoint = mq::redis::parse_url(mqtest::services().redis_url);
    o.keys = f.rs.keys();
    o.queue = f.q;
    o.subscription = f.sub;
    o.subscription.name = "audit";
    o.consumer = "w2";
    o.handler = audit_handler;
    o.fetch_block = 200ms;
    auto audit_metrics = std::make_shared<mq::RunnerMetrics>();
    mq::SubscriptionRunner audit(o, audit_metrics);

    failing->start();
    audit.start();
    REQUIRE(f.eventually([&] { return f.metrics->dead_lettered == 30; }, 20s));
    REQUIRE(f.eventually([&] { return audit_handler->acked_count() == 30; }, 5s));
    failing->stop(std::chrono::steady_clock::now() + 5s);
    audit.stop(std::chrono::steady_clock::now() + 5s);
    CHECK(f.handler->attempt_count() == 90);      // 3 attempts each on the failing one
    CHECK(audit_handler->attempt_count() == 30);  // exactly one delivery each on the other
    CHECK(audit_handler->acked == ids);
}

// Inline mode: concurrency 1 and an in-process handler, delivered on the fetcher threads
// with one XACK per batch. The same guarantees as the handler-thread path.

TEST_CASE("inline delivery delivers every message once and acks them in batches",
          "[runner][inline]") {
    RunnerFixture f(2);
    f.sub.concurrency = 1;
    f.sub.batch_size = 100;
    f.handler->in_process_handler = true;
    auto ids = f.publish(1000);
    auto r = f.runner();
    r->start();
    REQUIRE(f.eventually([&] { return f.metrics->acked == 1000; }));
    REQUIRE(r->stop(std::chrono::steady_clock::now() + 5s));
    CHECK(f.handler->acked == ids);
    CHECK(f.handler->attempt_count() == 1000);
    CHECK(f.pending_total() == 0);
}

TEST_CASE("inline delivery retries with growing backoff, then dead-letters", "[runner][inline]") {
    RunnerFixture f(1);
    f.sub.concurrency = 1;
    f.handler->in_process_handler = true;
    f.handler->failures = 100;
    f.publish(1);
    auto r = f.runner();
    r->start();
    REQUIRE(f.eventually([&] { return f.metrics->dead_lettered == 1; }));
    r->stop(std::chrono::steady_clock::now() + 5s);
    REQUIRE(f.handler->attempts.size() == 3);
    auto gap1 = f.handler->attempts[1].second - f.handler->attempts[0].second;
    auto gap2 = f.handler->attempts[2].second - f.handler->attempts[1].second;
    CHECK(gap1 >= 90ms);
    CHECK(gap2 >= 190ms);
    CHECK(gap1 < 1000ms);
    CHECK(gap2 < 1500ms);
    CHECK(f.metrics->failed == 2);
    CHECK(f.pending_total() == 0);
}

TEST_CASE("inline delivery skips filtered messages with an ack and counts them",
          "[runner][inline]") {
    RunnerFixture f(1);
    f.sub.concurrency = 1;
    f.handler->in_process_handler = true;
    f.sub.filter = {{"headers", {{"region", "eu"}}}};
    f.publish(5, {{"region", "eu"}});
    f.publish(7, {{"region", "us"}});
    auto r = f.runner();
    r->start();
    REQUIRE(f.eventually([&] { return f.metrics->acked + f.metrics->filtered == 12; }));
    r->stop(std::chrono::steady_clock::now() + 5s);
    CHECK(f.handler->attempt_count() == 5);
    CHECK(f.metrics->filtered == 7);
    CHECK(f.metrics->acked == 5);
    CHECK(f.pending_total() == 0);
}

TEST_CASE("inline delivery pauses between two messages of a batch and resumes",
          "[runner][inline]") {
    RunnerFixture f(1);
    f.sub.concurrency = 1;
    f.sub.batch_size = 100;
    f.handler->in_process_handler = true;
    f.handler->delay = 20ms;
    f.publish(100);
    auto r = f.runner();
    r->start();
    REQUIRE(f.eventually([&] { return f.handler->acked_count() >= 5; }));
    r->set_paused(true);
    std::this_thread::sleep_for(200ms);
    std::size_t at_pause = f.handler->acked_count();
    CHECK(at_pause < 100);
    std::this_thread::sleep_for(500ms);
    CHECK(f.handler->acked_count() == at_pause);
    // Delivered ones are acked even though the rest of the batch waits.
    CHECK(f.metrics->acked == at_pause);
    r->set_paused(false);
    CHECK(f.eventually([&] { return f.metrics->acked == 100; }, 5s));
    r->stop(std::chrono::steady_clock::now() + 5s);
    CHECK(f.handler->attempt_count() == 100);
    CHECK(f.pending_total() == 0);
}

TEST_CASE("inline delivery stops between two messages and hands the rest of the batch back",
          "[runner][inline]") {
    RunnerFixture f(1);
    f.sub.concurrency = 1;
    f.sub.batch_size = 50;
    f.handler->in_process_handler = true;
    f.handler->delay = 20ms;
    f.publish(50);
    auto r = f.runner("leaving");
    r->start();
    REQUIRE(f.eventually([&] { return f.handler->acked_count() >= 3; }));
    REQUIRE(r->stop(std::chrono::steady_clock::now() + 5s));
    std::size_t done = f.handler->acked_count();
    CHECK(done < 50);
    CHECK(f.metrics->acked == done);
    mq::ConsumerGroups g(f.rs.redis(), f.rs.keys());
    auto left = g.pending(f.q, "billing", 0, 100);
    CHECK(left.size() == 50 - done);
    for (const auto& p : left) CHECK(p.consumer == mq::kRetryConsumer);

    f.handler->delay = 0ms;
    auto next = f.runner("arriving");
    next->start();
    CHECK(f.eventually([&] { return f.handler->acked_count() == 50; }, 2s));
    next->stop(std::chrono::steady_clock::now() + 5s);
    CHECK(f.handler->attempt_count() == 50);
    CHECK(f.pending_total() == 0);
}

TEST_CASE("handler threads that finish together share one XACK and ack everything", "[runner]") {
    RunnerFixture f(2);
    f.sub.concurrency = 8;
    f.sub.batch_size = 50;
    auto ids = f.publish(2000);
    auto r = f.runner();
    r->start();
    REQUIRE(f.eventually([&] { return f.metrics->acked == 2000; }, 20s));
    REQUIRE(r->stop(std::chrono::steady_clock::now() + 5s));
    CHECK(f.handler->acked == ids);
    CHECK(f.handler->attempt_count() == 2000);
    CHECK(f.pending_total() == 0);
}

TEST_CASE("inline delivery retries a batch whose end_batch failed and acks none of it",
          "[runner][inline]") {
    RunnerFixture f(1);
    f.sub.concurrency = 1;
    f.sub.batch_size = 100;
    f.handler->in_process_handler = true;
    f.handler->batch_failures = 1;
    auto ids = f.publish(20);
    auto r = f.runner();
    r->start();
    REQUIRE(f.eventually([&] { return f.metrics->acked == 20; }));
    r->stop(std::chrono::steady_clock::now() + 5s);
    CHECK(f.metrics->failed == 20);  // the failed batch: every message retried once
    CHECK(f.handler->attempt_count() == 40);
    CHECK(f.metrics->dead_lettered == 0);
    CHECK(f.pending_total() == 0);
}
