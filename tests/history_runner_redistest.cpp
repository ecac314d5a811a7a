// The worker's SubscriptionRunner appends each delivery attempt to the partition's history
// buffer of a queue with record_messages (docs/history.md), in both delivery modes.
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "eventually.hpp"
#include "harness.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/worker/runner.hpp"

using namespace std::chrono_literals;

namespace {

// Fails the first `failures` attempts of every message.
class FlakyHandler : public mq::Handler {
  public:
    int failures = 1;
    mq::DeliveryOutcome failure = mq::DeliveryOutcome::kRetry;
    bool inline_mode = false;
    std::atomic<int> acked{0};
    mq::DeliveryResult deliver(const mq::Delivery& d) override {
        mq::DeliveryResult r;
        if (d.attempt <= failures) {
            r.outcome = failure;
            r.error = "flaky " + std::to_string(d.attempt);
        } else {
            r.outcome = mq::DeliveryOutcome::kAck;
            ++acked;
        }
        return r;
    }
    bool in_process() const override { return inline_mode; }
};

struct Recorded {
    mqtest::RedisScope rs;
    mq::Queue q;
    mq::Subscription sub;
    std::shared_ptr<FlakyHandler> handler = std::make_shared<FlakyHandler>();
    std::shared_ptr<mq::RunnerMetrics> metrics = std::make_shared<mq::RunnerMetrics>();

    explicit Recorded(bool record = true) {
        q.tenant = "acme";
        q.name = mqtest::unique_name("q");
        q.partition_count = 1;
        q.record_messages = record;
        sub.tenant = q.tenant;
        sub.queue = q.name;
        sub.name = "billing";
        sub.start_from = "earliest";
        sub.retry.initial_backoff = 50ms;
        sub.retry.max_backoff = 200ms;
        sub.retry.jitter = 0;
        sub.retry.max_attempts = 3;
        sub.visibility_timeout = 2s;
    }
    std::unique_ptr<mq::SubscriptionRunner> runner() {
        mq::RunnerOptions o;
        o.endpoint = mq::redis::parse_url(mqtest::services().redis_url);
        o.keys = rs.keys();
        o.queue = q;
        o.subscription = sub;
        o.consumer = "w1";
        o.handler = handler;
        o.fetch_block = 100ms;
        o.reclaim_interval = 20ms;
        return std::make_unique<mq::SubscriptionRunner>(o, metrics);
    }
    std::string publish() {
        mq::Publisher pub(rs.redis(), rs.keys());
        mq::PublishRequest r;
        r.payload = "x";
        return pub.publish(q, r).message_id;
    }
    std::vector<mq::HistoryEvent> events() {
        auto r = rs.redis().command({"XRANGE", rs.keys().history(q.tenant, q.name, 0), "-", "+"});
        std::vector<mq::HistoryEvent> out;
        for (const auto& e : r.elements) {
            mq::FieldList fields;
            const auto& kv = e.elements.at(1).elements;
            for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
                fields.emplace_back(kv[i].str, kv[i + 1].str);
            for (auto& ev : mq::decode_history_entry(fields)) out.push_back(std::move(ev));
        }
        return out;
    }
    bool eventually(const std::function<bool()>& pred) {
        return mqtest::eventually(pred, 10s, 10ms);
    }
};

}  // namespace

TEST_CASE("a worker records a failed attempt, then the acked retry, with consumer and timing",
          "[history][runner]") {
    for (bool inline_mode : {false, true}) {
        DYNAMIC_SECTION("inline " << inline_mode) {
            Recorded f;
            f.handler->inline_mode = inline_mode;
            const std::string id = f.publish();
            auto r = f.runner();
            r->start();
            // The buffer holds the attempts; the published event is the stream entry itself.
            REQUIRE(f.eventually([&] { return f.events().size() >= 2; }));
            r->stop(std::chrono::steady_clock::now() + 5s);
            auto ev = f.events();
            REQUIRE(ev.size() == 2);
            CHECK(ev[0].kind == "attempt");
            CHECK(ev[0].outcome == "failed");
            CHECK(ev[0].attempt == 1);
            CHECK(ev[0].error == "flaky 1");
            CHECK(ev[0].consumer == "w1");
            CHECK(ev[0].subscription == "billing");
            CHECK(ev[0].duration_ms >= 0);
            CHECK(ev[1].outcome == "acked");
            CHECK(ev[1].attempt == 2);
            CHECK(ev[1].consumer == "w1");
            CHECK(ev[1].subscription == "billing");
            for (const auto& e : ev) CHECK(e.message_id == id);
        }
    }
}

TEST_CASE("a worker that exhausts max_attempts records the dead letter once", "[history][runner]") {
    Recorded f;
    f.handler->failures = 100;
    const std::string id = f.publish();
    auto r = f.runner();
    r->start();
    REQUIRE(f.eventually([&] { return f.metrics->dead_lettered == 1; }));
    r->stop(std::chrono::steady_clock::now() + 5s);
    auto ev = f.events();
    REQUIRE(ev.size() == 3);  // failed 1, failed 2, dead_lettered at attempt 3
    CHECK(ev[2].kind == "dead_lettered");
    CHECK(ev[2].attempt == 3);
    CHECK(ev[2].detail == "max_attempts");
    CHECK(ev[2].message_id == id);
    CHECK(ev[2].error == "flaky 3");
}

TEST_CASE("a worker on a queue that does not record leaves the history buffer empty",
          "[history][runner]") {
    Recorded f(false);
    f.publish();
    auto r = f.runner();
    r->start();
    REQUIRE(f.eventually([&] { return f.handler->acked == 1; }));
    r->stop(std::chrono::steady_clock::now() + 5s);
    CHECK(f.events().empty());
}
