// Dead-letter inspection, replay and purge against a real redis-server.
#include <catch2/catch.hpp>
#include <thread>

#include "harness.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/consume/dead_letters.hpp"
#include "mq/core/time.hpp"

using namespace std::chrono_literals;

namespace {
struct DlqFixture {
    mqtest::RedisScope rs;
    mq::Queue q;
    mq::Subscription sub;
    mq::ConsumerGroups groups{rs.redis(), rs.keys()};
    mq::Publisher pub{rs.redis(), rs.keys()};
    mq::DeadLetterStore dlq{rs.redis(), rs.keys()};
    mq::PublishUseCase use_case{{}, nullptr, nullptr};
    DlqFixture() {
        q.tenant = "acme";
        q.name = mqtest::unique_name("q");
        q.partition_count = 2;
        sub.name = "billing";
        sub.start_from = "earliest";
        groups.ensure(q, sub);
    }
    // Publishes and dead-letters `n` messages, returning their message ids.
    std::vector<std::string> kill(int n, const std::string& reason = "handler_rejected") {
        std::vector<std::string> ids;
        for (int i = 0; i < n; ++i) {
            mq::PublishRequest r;
            r.payload = "payload-" + std::to_string(i);
            r.key = "k" + std::to_string(i);
            r.headers = {{"source", "test"}};
            ids.push_back(pub.publish(q, r).message_id);
        }
        for (int p = 0; p < 2; ++p)
            for (auto& f : groups.read_new(q, sub, "c", p, 100, 0ms))
                groups.dead_letter(q, "billing", p, f.stream_id, reason, "HTTP 410 Gone", 1);
        return ids;
    }
};
}  // namespace

TEST_CASE("dead letters list newest first with reason, error and the original message", "[dlq]") {
    DlqFixture f;
    auto ids = f.kill(5);
    auto all = f.dlq.list(f.q, "", 100);
    REQUIRE(all.size() == 5);
    CHECK(f.dlq.count(f.q) == 5);
    for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1].dlq_id.size() > 0);
    CHECK(all[0].reason == "handler_rejected");
    CHECK(all[0].error == "HTTP 410 Gone");
    CHECK(all[0].subscription == "billing");
    CHECK(all[0].attempts == 1);
    CHECK(all[0].dead_ms > 0);
    CHECK(std::find(ids.begin(), ids.end(), all[0].message.id) != ids.end());
    CHECK(f.dlq.list(f.q, "billing", 2).size() == 2);
    CHECK(f.dlq.list(f.q, "other-sub", 100).empty());
    CHECK(f.dlq.list(f.q, "", 100, mq::now_ms() + 60000).empty());

    auto one = f.dlq.find(f.q, all[2].handle());
    REQUIRE(one);
    CHECK(one->message.payload == all[2].message.payload);
    CHECK(one->handle() == all[2].handle());
    CHECK_FALSE(f.dlq.find(f.q, "0:1-1"));
    CHECK_FALSE(f.dlq.find(f.q, "7:1-1"));  // no such partition
    CHECK_THROWS_AS(f.dlq.find(f.q, "1-1"), mq::ValidationError);
    CHECK_THROWS_AS(f.dlq.find(f.q, "0:not-an-id"), mq::ValidationError);
}

TEST_CASE("replay publishes the message again and only then removes the dead letter", "[dlq]") {
    DlqFixture f;
    f.kill(1);
    auto d = f.dlq.list(f.q, "", 10).at(0);
    auto out = f.dlq.replay(f.q, d, f.q, f.pub, f.use_case);
    CHECK(out.status == mq::PublishStatus::kAccepted);
    CHECK(f.dlq.count(f.q) == 0);
    // The group sees it again, same key and payload, marked as a replay.
    std::vector<mq::Fetched> again;
    for (int p = 0; p < 2; ++p)
        for (auto& x : f.groups.read_new(f.q, f.sub, "c", p, 10, 0ms)) again.push_back(x);
    REQUIRE(again.size() == 1);
    CHECK(again[0].message.payload == d.message.payload);
    CHECK(again[0].message.key == d.message.key);
    auto headers = nlohmann::json::parse(again[0].message.headers_json);
    CHECK(headers["mq-replayed-from"] == d.message.id);
    CHECK(headers["source"] == "test");
}

TEST_CASE("a replay that cannot be published keeps the dead letter", "[dlq]") {
    DlqFixture f;
    f.kill(1);
    auto d = f.dlq.list(f.q, "", 10).at(0);
    mq::Queue full = f.q;
    full.name = mqtest::unique_name("full");
    full.partition_count = 1;
    full.max_length = 1;
    mq::PublishRequest filler;
    filler.payload = "x";
    f.pub.publish(full, filler);
    CHECK_THROWS_AS(f.dlq.replay(f.q, d, full, f.pub, f.use_case), mq::Error);
    CHECK(f.dlq.count(f.q) == 1);
}

TEST_CASE("purge removes all dead letters or only the older ones", "[dlq]") {
    DlqFixture f;
    f.kill(3);
    std::this_thread::sleep_for(20ms);
    auto cutoff = mq::now_ms();
    std::this_thread::sleep_for(20ms);
    f.kill(2);
    CHECK(f.dlq.purge(f.q, cutoff) == 3);
    CHECK(f.dlq.count(f.q) == 2);
    CHECK(f.dlq.purge(f.q) == 2);
    CHECK(f.dlq.count(f.q) == 0);
}
