// Publisher and delayed-entry mover against a real redis-server.
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "harness.hpp"
#include "mq/core/message.hpp"
#include "mq/core/time.hpp"
#include "mq/core/uuid.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/publish/scheduler.hpp"
#include "mq/queue/streams.hpp"

using mq::PublishRequest;
using mq::PublishStatus;

namespace {

mq::Queue make_queue(int partitions = 1) {
    mq::Queue q;
    q.tenant = "acme";
    q.name = mqtest::unique_name("orders");
    q.partition_count = partitions;
    return q;
}

PublishRequest msg(std::string payload, std::string key = {}) {
    PublishRequest r;
    r.payload = std::move(payload);
    r.key = std::move(key);
    return r;
}

// XRANGE key - + -> decoded messages in stream order.
std::vector<mq::Message> read_stream(mq::redis::Connection& redis, const std::string& key) {
    std::vector<mq::Message> out;
    auto r = redis.command({"XRANGE", key, "-", "+"});
    for (const auto& entry : r.elements) {
        mq::FieldList fields;
        const auto& kv = entry.elements.at(1).elements;
        for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
            fields.emplace_back(kv[i].str, kv[i + 1].str);
        out.push_back(mq::decode_fields(fields));
    }
    return out;
}

std::int64_t xlen(mq::redis::Connection& redis, const std::string& key) {
    return redis.command({"XLEN", key}).as_integer();
}
std::int64_t zcard(mq::redis::Connection& redis, const std::string& key) {
    return redis.command({"ZCARD", key}).as_integer();
}

}  // namespace

TEST_CASE("published message lands in the partition stream with every field", "[publish]") {
    mqtest::RedisScope rs;
    auto q = make_queue();
    mq::Publisher pub(rs.redis(), rs.keys());
    PublishRequest r = msg("{\"total\":42}", "customer-7");
    r.headers = {{"source", "checkout"}, {"tenant-hint", "x"}};
    r.content_type = "application/json";
    r.trace_id = "trace-1";
    auto out = pub.publish(q, r);

    CHECK(out.status == PublishStatus::kAccepted);
    CHECK_FALSE(out.delayed);
    CHECK(mq::uuid_v7_millis(out.message_id) > 0);
    auto entries = read_stream(rs.redis(), rs.keys().stream(q.tenant, q.name, 0));
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].id == out.message_id);
    CHECK(entries[0].payload == "{\"total\":42}");
    CHECK(entries[0].key == "customer-7");
    CHECK(nlohmann::json::parse(entries[0].headers_json) ==
          nlohmann::json{{"source", "checkout"}, {"tenant-hint", "x"}});
    CHECK(entries[0].content_type == "application/json");
    CHECK(entries[0].trace_id == "trace-1");
    CHECK(std::abs(entries[0].published_ms - mq::now_ms()) < 5000);
}

TEST_CASE("binary payloads survive the stream and the delayed set byte for byte", "[publish]") {
    mqtest::RedisScope rs;
    auto q = make_queue();
    mq::Publisher pub(rs.redis(), rs.keys());
    std::string bytes;
    for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
    pub.publish(q, msg(bytes));
    PublishRequest later = msg(bytes);
    later.delay = std::chrono::milliseconds(1);
    pub.publish(q, later);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    mq::Scheduler(rs.redis(), rs.keys()).move_due(q);
    auto entries = read_stream(rs.redis(), rs.keys().stream(q.tenant, q.name, 0));
    REQUIRE(entries.size() == 2);
    CHECK(entries[0].payload == bytes);
    CHECK(entries[1].payload == bytes);
}

TEST_CASE("same key always lands in the same partition, in publish order", "[publish]") {
    mqtest::RedisScope rs;
    auto q = make_queue(8);
    mq::Publisher pub(rs.redis(), rs.keys());
    std::vector<PublishRequest> batch;
    for (int i = 0; i < 50; ++i)
        batch.push_back(msg(std::to_string(i), "user-" + std::to_string(i % 5)));
    auto outcomes = pub.publish_batch(q, batch);

    std::map<std::string, std::set<int>> partitions_of_key;
    for (std::size_t i = 0; i < batch.size(); ++i) {
        REQUIRE(outcomes[i].status == PublishStatus::kAccepted);
        partitions_of_key[batch[i].key].insert(outcomes[i].partition);
        CHECK(outcomes[i].partition == static_cast<int>(mq::fnv1a_64(batch[i].key) % 8));
    }
    for (const auto& [key, parts] : partitions_of_key) CHECK(parts.size() == 1);
    // Order per key is publish order.
    for (int p = 0; p < 8; ++p) {
        std::map<std::string, int> last;
        for (const auto& m : read_stream(rs.redis(), rs.keys().stream(q.tenant, q.name, p))) {
            int n = std::stoi(m.payload);
            if (last.count(m.key)) CHECK(n > last[m.key]);
            last[m.key] = n;
        }
    }
}

TEST_CASE("batch publish spreads keyless messages over every partition", "[publish]") {
    mqtest::RedisScope rs;
    auto q = make_queue(4);
    mq::Publisher pub(rs.redis(), rs.keys());
    std::vector<PublishRequest> batch(1000, msg("x"));
    auto outcomes = pub.publish_batch(q, batch);
    std::set<std::string> ids;
    for (const auto& o : outcomes) {
        CHECK(o.status == PublishStatus::kAccepted);
        ids.insert(o.message_id);
    }
    CHECK(ids.size() == 1000);
    std::int64_t total = 0;
    for (int p = 0; p < 4; ++p) {
        auto n = xlen(rs.redis(), rs.keys().stream(q.tenant, q.name, p));
        CHECK(n == 250);
        total += n;
    }
    CHECK(total == 1000);
}

TEST_CASE("idempotency key within the window returns the first id and stores nothing",
          "[publish]") {
    mqtest::RedisScope rs;
    auto q = make_queue(3);
    mq::Publisher pub(rs.redis(), rs.keys());
    PublishRequest r = msg("charge card");
    r.idempotency_key = "order-991";
    auto first = pub.publish(q, r);
    r.payload = "charge card again";
    auto second = pub.publish(q, r);

    CHECK(first.status == PublishStatus::kAccepted);
    CHECK(second.status == PublishStatus::kDuplicate);
    CHECK(second.message_id == first.message_id);
    CHECK(second.partition == first.partition);
    std::int64_t total = 0;
    for (int p = 0; p < 3; ++p) total += xlen(rs.redis(), rs.keys().stream(q.tenant, q.name, p));
    CHECK(total == 1);

    SECTION("a duplicate inside one batch is caught too") {
        PublishRequest a = msg("a"), b = msg("b");
        a.idempotency_key = b.idempotency_key = "same-in-batch";
        auto outs = pub.publish_batch(q, {a, b});
        CHECK(outs[0].status == PublishStatus::kAccepted);
        CHECK(outs[1].status == PublishStatus::kDuplicate);
        CHECK(outs[1].message_id == outs[0].message_id);
    }
}

TEST_CASE("idempotency key is forgotten after the dedup window", "[publish]") {
    mqtest::RedisScope rs;
    auto q = make_queue();
    q.dedup_window = std::chrono::milliseconds(100);
    mq::Publisher pub(rs.redis(), rs.keys());
    PublishRequest r = msg("x");
    r.idempotency_key = "k1";
    auto first = pub.publish(q, r);
    auto ttl =
        rs.redis().command({"PTTL", rs.keys().idempotency(q.tenant, q.name, 0, "k1")}).as_integer();
    CHECK(ttl > 0);
    CHECK(ttl <= 100);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    auto again = pub.publish(q, r);
    CHECK(again.status == PublishStatus::kAccepted);
    CHECK(again.message_id != first.message_id);
    CHECK(xlen(rs.redis(), rs.keys().stream(q.tenant, q.name, 0)) == 2);
}

TEST_CASE("a full queue answers QUEUE_FULL with retryAfter and drops nothing stored", "[publish]") {
    mqtest::RedisScope rs;
    auto q = make_queue(2);
    q.max_length = 4;  // 2 per partition
    mq::Publisher pub(rs.redis(), rs.keys());
    std::vector<PublishRequest> batch;
    for (int i = 0; i < 6; ++i)
        batch.push_back(msg("m" + std::to_string(i), i % 2 ? "odd" : "even"));
    auto outs = pub.publish_batch(q, batch);
    int accepted = 0, rejected = 0;
    for (const auto& o : outs) {
        if (o.status == PublishStatus::kAccepted) ++accepted;
        if (o.status == PublishStatus::kRejected) {
            ++rejected;
            REQUIRE(o.error);
            CHECK(o.error->code() == mq::ErrorCode::kQueueFull);
            CHECK(o.error->retry_after_s() == 1);
            CHECK(o.message_id.empty());
        }
    }
    CHECK(accepted == 4);
    CHECK(rejected == 2);

    try {
        pub.publish(q, msg("one more", "odd"));
        FAIL("expected QUEUE_FULL");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kQueueFull);
        CHECK(mq::http_status(e.code()) == 429);
    }
    // Delayed entries count toward the backlog as well.
    mq::Queue q2 = make_queue();
    q2.max_length = 1;
    PublishRequest later = msg("later");
    later.delay = std::chrono::hours(1);
    pub.publish(q2, later);
    CHECK_THROWS_AS(pub.publish(q2, msg("now")), mq::Error);
}

TEST_CASE("invalid requests in a batch are rejected without touching the others", "[publish]") {
    mqtest::RedisScope rs;
    auto q = make_queue();
    mq::PublishLimits limits;
    limits.max_message_size = 8;
    mq::Publisher pub(rs.redis(), rs.keys(), limits);
    auto outs = pub.publish_batch(q, {msg("small"), msg("much too large"), msg("ok")});
    CHECK(outs[0].status == PublishStatus::kAccepted);
    CHECK(outs[1].status == PublishStatus::kRejected);
    REQUIRE(outs[1].error);
    CHECK(outs[1].error->code() == mq::ErrorCode::kPayloadTooLarge);
    CHECK(outs[2].status == PublishStatus::kAccepted);
    CHECK(xlen(rs.redis(), rs.keys().stream(q.tenant, q.name, 0)) == 2);
    CHECK_THROWS_AS(pub.publish(q, msg("much too large")), mq::Error);
}

TEST_CASE("delayed and scheduled messages wait in the delayed set until due",
          "[publish][scheduler]") {
    mqtest::RedisScope rs;
    auto q = make_queue();
    mq::Publisher pub(rs.redis(), rs.keys());
    mq::Scheduler mover(rs.redis(), rs.keys());
    const auto stream = rs.keys().stream(q.tenant, q.name, 0);
    const auto delayed = rs.keys().delayed(q.tenant, q.name, 0);

    PublishRequest soon = msg("soon");
    soon.delay = std::chrono::milliseconds(150);
    PublishRequest at = msg("at");
    at.deliver_at_ms = mq::now_ms() + 3'600'000;
    PublishRequest past = msg("past");
    past.deliver_at_ms = mq::now_ms() - 1000;
    auto o1 = pub.publish(q, soon);
    auto o2 = pub.publish(q, at);
    auto o3 = pub.publish(q, past);
    CHECK(o1.delayed);
    CHECK(o2.delayed);
    CHECK_FALSE(o3.delayed);  // already due: straight to the stream
    CHECK(zcard(rs.redis(), delayed) == 2);
    CHECK(xlen(rs.redis(), stream) == 1);

    auto pass = mover.move_due(q);
    CHECK(pass.moved == 0);
    REQUIRE(pass.next_due_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    pass = mover.move_due(q);
    CHECK(pass.moved == 1);
    CHECK(zcard(rs.redis(), delayed) == 1);
    auto entries = read_stream(rs.redis(), stream);
    REQUIRE(entries.size() == 2);
    CHECK(entries[1].payload == "soon");
    CHECK(entries[1].id == o1.message_id);
}

TEST_CASE("due entries are moved in due order", "[scheduler]") {
    mqtest::RedisScope rs;
    auto q = make_queue();
    mq::Publisher pub(rs.redis(), rs.keys());
    const std::int64_t base = mq::now_ms() + 100;
    std::vector<PublishRequest> batch;
    for (int i = 9; i >= 0; --i) {  // published in reverse due order
        PublishRequest r = msg(std::to_string(i));
        r.deliver_at_ms = base + i * 5;
        batch.push_back(r);
    }
    pub.publish_batch(q, batch);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    mq::Scheduler(rs.redis(), rs.keys()).move_due(q, 3);  // several calls per partition
    auto entries = read_stream(rs.redis(), rs.keys().stream(q.tenant, q.name, 0));
    REQUIRE(entries.size() == 10);
    for (int i = 0; i < 10; ++i)
        CHECK(entries[static_cast<std::size_t>(i)].payload == std::to_string(i));
}

TEST_CASE("concurrent movers move each due entry exactly once", "[scheduler]") {
    mqtest::RedisScope rs;
    auto q = make_queue(2);
    mq::Publisher pub(rs.redis(), rs.keys());
    const int n = 3000;
    // Due times lie in the future even on a slow (sanitizer) build, and keep coming due
    // while the movers run.
    const std::int64_t base = mq::now_ms() + 1500;
    std::vector<PublishRequest> batch;
    for (int i = 0; i < n; ++i) {
        PublishRequest r = msg(std::to_string(i));
        r.deliver_at_ms = base + (i % 300);
        batch.push_back(r);
    }
    auto outs = pub.publish_batch(q, batch);
    for (const auto& o : outs) REQUIRE(o.delayed);

    std::atomic<std::int64_t> moved{0};
    std::vector<std::thread> movers;
    for (int t = 0; t < 4; ++t) {
        movers.emplace_back([&] {
            auto conn = rs.connect();
            mq::Scheduler mover(*conn, rs.keys());
            auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
            while (moved < n && std::chrono::steady_clock::now() < until) {
                moved += mover.move_due(q, 50).moved;
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
        });
    }
    for (auto& t : movers) t.join();

    CHECK(moved == n);
    std::set<std::string> ids;
    std::size_t entries = 0;
    for (int p = 0; p < 2; ++p) {
        CHECK(zcard(rs.redis(), rs.keys().delayed(q.tenant, q.name, p)) == 0);
        for (const auto& m : read_stream(rs.redis(), rs.keys().stream(q.tenant, q.name, p))) {
            ids.insert(m.id);
            ++entries;
        }
    }
    CHECK(entries == static_cast<std::size_t>(n));
    CHECK(ids.size() == static_cast<std::size_t>(n));
}

TEST_CASE("purge empties streams and delayed sets but keeps groups with nothing pending",
          "[queue]") {
    mqtest::RedisScope rs;
    auto q = make_queue(2);
    mq::Publisher pub(rs.redis(), rs.keys());
    std::vector<PublishRequest> batch(10, msg("x"));
    PublishRequest later = msg("later");
    later.delay = std::chrono::hours(1);
    batch.push_back(later);
    pub.publish_batch(q, batch);
    const auto s0 = rs.keys().stream(q.tenant, q.name, 0);
    rs.redis().command({"XGROUP", "CREATE", s0, "billing", "0"});
    rs.redis().command({"XREADGROUP", "GROUP", "billing", "c1", "COUNT", "3", "STREAMS", s0, ">"});

    mq::QueueStreams streams(rs.redis(), rs.keys());
    auto before = streams.stats(q);
    CHECK(before[0].groups.size() == 1);
    CHECK(before[0].groups[0].pending == 3);

    auto purged = streams.purge(q);
    CHECK(purged.entries == 10);
    CHECK(purged.delayed == 1);
    auto after = streams.stats(q);
    for (const auto& p : after) {
        CHECK(p.length == 0);
        CHECK(p.delayed == 0);
    }
    REQUIRE(after[0].groups.size() == 1);
    CHECK(after[0].groups[0].pending == 0);
    // New messages still reach the group.
    pub.publish(q, msg("after purge", "k"));
    std::int64_t total = 0;
    for (const auto& p : streams.stats(q)) total += p.length;
    CHECK(total == 1);
}

TEST_CASE("drop removes every key of the queue and nothing else", "[queue]") {
    mqtest::RedisScope rs;
    auto q = make_queue(3);
    auto other = make_queue(1);
    mq::Publisher pub(rs.redis(), rs.keys());
    std::vector<PublishRequest> batch;
    for (int i = 0; i < 9; ++i) {
        PublishRequest r = msg("x");
        r.idempotency_key = "idem-" + std::to_string(i);
        if (i == 0) r.delay = std::chrono::hours(1);
        batch.push_back(r);
    }
    pub.publish_batch(q, batch);
    pub.publish(other, msg("keep me"));
    REQUIRE(rs.all_keys().size() > 4);

    mq::QueueStreams streams(rs.redis(), rs.keys());
    auto removed = streams.drop(q);
    CHECK(removed >= 3 + 1 + 9);
    auto left = rs.all_keys();
    REQUIRE(left.size() == 1);
    CHECK(left[0] == rs.keys().stream(other.tenant, other.name, 0));
}

TEST_CASE("stats report length, delayed count, oldest entry and next due time", "[queue]") {
    mqtest::RedisScope rs;
    auto q = make_queue(2);
    mq::Publisher pub(rs.redis(), rs.keys());
    const std::int64_t before = mq::now_ms();
    pub.publish(q, msg("a", "k1"));
    PublishRequest later = msg("later", "k1");
    later.deliver_at_ms = before + 60'000;
    pub.publish(q, later);
    int p = static_cast<int>(mq::fnv1a_64("k1") % 2);
    auto stats = mq::QueueStreams(rs.redis(), rs.keys()).stats(q);
    REQUIRE(stats.size() == 2);
    CHECK(stats[static_cast<std::size_t>(p)].length == 1);
    CHECK(stats[static_cast<std::size_t>(p)].delayed == 1);
    REQUIRE(stats[static_cast<std::size_t>(p)].oldest_ms);
    CHECK(*stats[static_cast<std::size_t>(p)].oldest_ms >= before - 1000);
    REQUIRE(stats[static_cast<std::size_t>(p)].next_due_ms);
    CHECK(std::abs(*stats[static_cast<std::size_t>(p)].next_due_ms - (before + 60'000)) < 2000);
    CHECK(stats[static_cast<std::size_t>(1 - p)].length == 0);
    CHECK_FALSE(stats[static_cast<std::size_t>(1 - p)].oldest_ms);
}
