// The message history: events appended in Redis by the scripts that change an entry,
// drained to PostgreSQL by the HistoryWriter, read back as timelines and pages.
#include <catch2/catch.hpp>
#include <map>

#include "harness.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/consume/dead_letters.hpp"
#include "mq/consume/pull.hpp"
#include "mq/core/codec.hpp"
#include "mq/core/time.hpp"
#include "mq/history/history.hpp"
#include "mq/pg/migrations.hpp"
#include "mq/publish/publish_use_case.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/publish/scheduler.hpp"
#include "mq/queue/inspector.hpp"
#include "mq/queue/trimmer.hpp"
#include "private_services.hpp"

using namespace std::chrono_literals;

namespace {

struct History {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    mq::Queue q;
    mq::Subscription sub;
    mq::ConsumerGroups groups{rs.redis(), rs.keys()};
    mq::Publisher pub{rs.redis(), rs.keys()};

    explicit History(bool record = true, int partitions = 1,
                     std::optional<std::chrono::milliseconds> retention = std::nullopt) {
        mq::QueueSpec spec;
        spec.name = "orders";
        spec.partition_count = partitions;
        spec.record_messages = record;
        spec.retention = retention;
        q = ts.catalog().create_queue(ts.tenant(), spec, mq::Config{});
        sub.name = "billing";
        sub.start_from = "earliest";
        sub.retry.max_attempts = 5;
        groups.ensure(q, sub);
    }
    ~History() { ts.exec("DELETE FROM message_events WHERE tenant_id = '" + ts.tenant() + "'"); }
    std::string publish(const std::string& payload, const std::string& key = "k") {
        mq::PublishRequest r;
        r.payload = payload;
        r.key = key;
        r.headers = {{"type", "order.created"}};
        r.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
        r.producer = "checkout";
        return pub.publish(q, r).message_id;
    }
    // What the writer has yet to read, as `mqctl stats` shows it: buffer entries plus the
    // stream entries after the history cursor.
    std::int64_t buffered() {
        return mq::QueueInspector(rs.redis(), rs.keys()).inspect(q).history_buffered;
    }
    std::int64_t buffer_entries() {
        std::int64_t n = 0;
        for (int p = 0; p < q.partition_count; ++p)
            n += rs.redis().command({"XLEN", rs.keys().history(q.tenant, q.name, p)}).as_integer();
        return n;
    }
    mq::HistoryDrain drain(mq::HistoryWriterOptions o = {}) {
        return mq::HistoryWriter(rs.redis(), ts.db(), rs.keys(), std::move(o)).drain(q);
    }
    std::int64_t rows() {
        return ts.db().transact([&](pqxx::work& tx) {
            return tx
                .exec_params1("SELECT count(*) FROM message_events WHERE tenant_id = $1",
                              ts.tenant())[0]
                .as<std::int64_t>();
        });
    }
    std::vector<std::string> kinds(const std::string& id) {
        std::vector<std::string> out;
        for (const auto& e : mq::HistoryStore(ts.db()).timeline(ts.tenant(), id).events)
            out.push_back(e.event + (e.detail.outcome.empty() ? "" : ":" + e.detail.outcome));
        return out;
    }
    mq::HistoryEvent attempt(const mq::Fetched& f, const std::string& outcome,
                             const std::string& error = {}) {
        mq::HistoryEvent e;
        e.kind = mq::history::kAttempt;
        e.message_id = f.message.id;
        e.subscription = sub.name;
        e.consumer = "w1";
        e.attempt = f.delivery_count;
        e.outcome = outcome;
        e.duration_ms = 7;
        e.error = error;
        return e;
    }
};

}  // namespace

TEST_CASE("a message published, failed once and acked shows that life as a timeline", "[history]") {
    History h;
    const std::string id = h.publish("{\"order\":1}");
    auto first = h.groups.read_new(h.q, h.sub, "w1", 0, 10, 0ms);
    REQUIRE(first.size() == 1);
    auto failed = h.attempt(first[0], "failed", "HTTP 503");
    h.groups.retry_later(h.q, h.sub.name, 0, first[0].stream_id, std::nullopt, &failed);
    // The retry: claimed again (delivery 2) and acked with its event in the same round trip.
    auto again = h.rs.redis().command({"XCLAIM", h.rs.keys().stream(h.q.tenant, h.q.name, 0),
                                       h.sub.name, "w1", "0", first[0].stream_id});
    REQUIRE(again.elements.size() == 1);
    mq::Fetched second = first[0];
    second.delivery_count = 2;
    CHECK(h.groups.ack(h.q, h.sub.name, 0, {second.stream_id}, {h.attempt(second, "acked")}) == 1);

    CHECK(h.buffered() == 3);
    auto d = h.drain();
    CHECK(d.written == 3);
    CHECK(h.buffered() == 0);
    CHECK(h.kinds(id) == std::vector<std::string>{"published", "attempt:failed", "attempt:acked"});

    auto t = mq::HistoryStore(h.ts.db()).timeline(h.ts.tenant(), id);
    const auto& pub = t.events.at(0).detail;
    CHECK(pub.producer == "checkout");
    CHECK(pub.key == "k");
    CHECK(pub.size == 11);
    CHECK(pub.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(pub.headers_json.find("order.created") != std::string::npos);
    CHECK(pub.stream_id == first[0].stream_id);
    const auto& fail = t.events.at(1).detail;
    CHECK(fail.error == "HTTP 503");
    CHECK(fail.attempt == 1);
    CHECK(fail.consumer == "w1");
    CHECK(fail.duration_ms == 7);
    CHECK(t.events.at(2).detail.attempt == 2);
    CHECK(t.events.at(0).at_ms <= t.events.at(2).at_ms);

    mq::MessageFilter f;
    auto page = mq::HistoryStore(h.ts.db()).list(h.ts.tenant(), "orders", f);
    REQUIRE(page.items.size() == 1);
    CHECK(page.items[0].status == "acked");
    CHECK(page.items[0].attempts == 2);
    f.status = "failed";  // it did fail once
    CHECK(mq::HistoryStore(h.ts.db()).list(h.ts.tenant(), "orders", f).items.size() == 1);
    f.status = "pending";
    CHECK(mq::HistoryStore(h.ts.db()).list(h.ts.tenant(), "orders", f).items.empty());
    f.status = "dead_lettered";
    CHECK(mq::HistoryStore(h.ts.db()).list(h.ts.tenant(), "orders", f).items.empty());
}

TEST_CASE("a message dead-lettered and replayed shows both, and its replay has its own life",
          "[history]") {
    History h;
    const std::string id = h.publish("x");
    auto got = h.groups.read_new(h.q, h.sub, "w1", 0, 10, 0ms);
    REQUIRE(got.size() == 1);
    auto dead = h.attempt(got[0], mq::history::kDeadLettered, "HTTP 410");
    CHECK(h.groups.dead_letter(h.q, h.sub.name, 0, got[0].stream_id, "handler_rejected", "HTTP 410",
                               1, &dead));
    // Racing a second time: nothing dead-lettered, nothing recorded twice.
    CHECK_FALSE(h.groups.dead_letter(h.q, h.sub.name, 0, got[0].stream_id, "handler_rejected",
                                     "HTTP 410", 1, &dead));

    mq::DeadLetterStore dlq(h.rs.redis(), h.rs.keys());
    mq::PublishUseCase use_case({}, nullptr, nullptr);
    auto letters = dlq.list(h.q, "", 10);
    REQUIRE(letters.size() == 1);
    auto out = dlq.replay(h.q, letters[0], h.q, h.pub, use_case);
    REQUIRE(out.status == mq::PublishStatus::kAccepted);
    auto redelivered = h.groups.read_new(h.q, h.sub, "w1", 0, 10, 0ms);
    REQUIRE(redelivered.size() == 1);
    CHECK(redelivered[0].message.id == out.message_id);
    h.groups.ack(h.q, h.sub.name, 0, {redelivered[0].stream_id},
                 {h.attempt(redelivered[0], "acked")});

    h.drain();
    CHECK(h.kinds(id) ==
          std::vector<std::string>{"published", "dead_lettered:dead_lettered", "replayed"});
    auto t = mq::HistoryStore(h.ts.db()).timeline(h.ts.tenant(), id);
    CHECK(t.events.at(1).detail.detail == "handler_rejected");
    CHECK(t.events.at(1).detail.error == "HTTP 410");
    CHECK(t.events.at(1).detail.consumer == "w1");
    CHECK(t.events.at(2).detail.detail.find(out.message_id) != std::string::npos);
    CHECK(h.kinds(out.message_id) == std::vector<std::string>{"published", "attempt:acked"});

    mq::MessageFilter f;
    f.status = "replayed";
    auto page = mq::HistoryStore(h.ts.db()).list(h.ts.tenant(), "orders", f);
    REQUIRE(page.items.size() == 1);
    CHECK(page.items[0].message_id == id);
    f.status = "dead_lettered";
    CHECK(mq::HistoryStore(h.ts.db()).list(h.ts.tenant(), "orders", f).items.size() == 1);
}

TEST_CASE("pull acks and nacks are recorded as attempts of the lease holder", "[history][pull]") {
    History h;
    h.sub.id = "0190a5c4-3333-7abc-8def-0123456789ab";
    h.sub.type = "pull";
    const std::string id = h.publish("p");
    mq::PullConsumer pull(h.rs.redis(), h.rs.keys(), "history-receipt-key");
    auto got = pull.pull(h.q, h.sub, "pull:svc", 10);
    REQUIRE(got.size() == 1);
    auto receipt = mq::decode_receipt(got[0].receipt, "history-receipt-key", h.sub.id);
    CHECK(pull.nack(h.q, h.sub, receipt, 0ms) == mq::AckResult::kAcked);
    auto again = pull.pull(h.q, h.sub, "pull:svc", 10);
    REQUIRE(again.size() == 1);
    auto r2 = mq::decode_receipt(again[0].receipt, "history-receipt-key", h.sub.id);
    CHECK(pull.ack(h.q, h.sub, {r2}).at(0) == mq::AckResult::kAcked);
    CHECK(pull.ack(h.q, h.sub, {r2}).at(0) == mq::AckResult::kLeaseLost);  // stale: no event
    h.drain();
    CHECK(h.kinds(id) == std::vector<std::string>{"published", "attempt:failed", "attempt:acked"});
    auto t = mq::HistoryStore(h.ts.db()).timeline(h.ts.tenant(), id);
    CHECK(t.events.at(2).detail.consumer == "pull:svc");
    CHECK(t.events.at(2).detail.attempt == 2);
}

TEST_CASE("entries trimmed by retention are recorded as expired, naming who had not finished",
          "[history][retention]") {
    History h(true, 1, 50ms);
    const std::string id = h.publish("old");
    std::this_thread::sleep_for(120ms);
    h.drain();  // recorded as published: only now may the trimmer remove it
    mq::Trimmer trimmer(h.rs.redis(), h.rs.keys(), mq::TrimOptions{});
    auto pass = trimmer.trim(h.q);
    CHECK(pass.trimmed == 1);
    h.drain();
    CHECK(h.kinds(id) == std::vector<std::string>{"published", "expired"});
    auto t = mq::HistoryStore(h.ts.db()).timeline(h.ts.tenant(), id);
    CHECK(t.events.at(1).detail.detail == "unfinished by billing");
    mq::MessageFilter f;
    f.status = "expired";
    CHECK(mq::HistoryStore(h.ts.db()).list(h.ts.tenant(), "orders", f).items.size() == 1);
}

TEST_CASE("a queue that does not record messages leaves no events anywhere", "[history]") {
    History h(false);
    h.publish("a");
    auto got = h.groups.read_new(h.q, h.sub, "w1", 0, 10, 0ms);
    REQUIRE(got.size() == 1);
    auto e = h.attempt(got[0], "failed");
    h.groups.retry_later(h.q, h.sub.name, 0, got[0].stream_id, std::nullopt, &e);
    h.groups.ack(h.q, h.sub.name, 0, {got[0].stream_id}, {h.attempt(got[0], "acked")});
    CHECK(h.buffered() == 0);
    CHECK(h.drain().written == 0);
    CHECK(h.rows() == 0);
    CHECK(mq::HistoryStore(h.ts.db()).list(h.ts.tenant(), "orders", {}).items.empty());
}

TEST_CASE("a writer that dies between commit and delete inserts nothing twice on its re-run",
          "[history][crash]") {
    History h(true, 2);
    for (int i = 0; i < 30; ++i) h.publish("m" + std::to_string(i), "key" + std::to_string(i));
    REQUIRE(h.buffered() == 30);
    mq::HistoryWriterOptions crash;
    crash.before_delete = [] { throw std::runtime_error("killed between commit and XDEL"); };
    CHECK_THROWS_WITH(h.drain(crash), Catch::Contains("killed"));
    CHECK(h.rows() > 0);        // the first partition's batch is committed
    CHECK(h.buffered() == 30);  // and still buffered
    auto d = h.drain();
    CHECK(d.written == 30);  // read again; the committed ones are skipped by the unique key
    CHECK(h.rows() == 30);
    CHECK(h.buffered() == 0);
    CHECK(h.drain().written == 0);
}

TEST_CASE("the writer drains in bounded batches and says when more is left", "[history]") {
    History h;
    for (int i = 0; i < 25; ++i) h.publish("m");
    mq::HistoryWriterOptions small;
    small.batch = 10;
    CHECK(h.drain(small).more);
    CHECK(h.buffered() == 15);
    h.drain(small);
    auto last = h.drain(small);
    CHECK_FALSE(last.more);
    CHECK(h.rows() == 25);
    CHECK_THROWS_AS(
        mq::HistoryWriter(h.rs.redis(), h.ts.db(), h.rs.keys(), mq::HistoryWriterOptions{0, {}}),
        mq::ValidationError);
}

TEST_CASE("hostile entries in a history buffer are dropped, not stored and not blocking",
          "[history][hostile]") {
    History h;
    const std::string id = h.publish("ok");
    const std::string key = h.rs.keys().history(h.q.tenant, h.q.name, 0);
    h.rs.redis().command({"XADD", key, "*", "e", "published", "m", "not-a-uuid"});
    h.rs.redis().command({"XADD", key, "*", "e", "exploded", "m", id});
    h.rs.redis().command({"XADD", key, "*", "e", "attempt", "m", id, "o", "'; DROP TABLE x"});
    h.rs.redis().command({"XADD", key, "*", "e", "attempt", "m", id, "o", "failed", "a", "x1", "er",
                          std::string("nul\0byte\xff", 9), "h", "[not an object"});
    auto d = h.drain();
    CHECK(d.malformed == 3);
    CHECK(d.written == 2);
    CHECK(h.buffered() == 0);
    auto t = mq::HistoryStore(h.ts.db()).timeline(h.ts.tenant(), id);
    REQUIRE(t.events.size() == 2);
    CHECK(t.events[1].detail.error.find("nulbyte") == 0);
    CHECK(t.events[1].detail.attempt == 0);  // "x1" is not a number
}

TEST_CASE("message lists page through more than one page with an opaque cursor",
          "[history][pagination]") {
    History h(true, 3);
    std::set<std::string> published;
    for (int i = 0; i < 23; ++i) published.insert(h.publish("m", "k" + std::to_string(i)));
    h.drain();
    mq::HistoryStore store(h.ts.db());
    mq::MessageFilter f;
    f.limit = 10;
    std::set<std::string> seen;
    int pages = 0;
    std::int64_t last = std::numeric_limits<std::int64_t>::max();
    for (; pages < 10; ++pages) {
        auto page = store.list(h.ts.tenant(), "orders", f);
        for (const auto& m : page.items) {
            CHECK(seen.insert(m.message_id).second);
            CHECK(m.published_ms <= last);  // newest first
            last = m.published_ms;
        }
        if (page.next_cursor.empty()) break;
        f.cursor = page.next_cursor;
    }
    CHECK(pages == 2);
    CHECK(seen == published);

    f = {};
    f.since_ms = mq::now_ms() + 60000;
    CHECK(store.list(h.ts.tenant(), "orders", f).items.empty());
}

TEST_CASE("bad filters and ids are refused naming the field", "[history][hostile]") {
    auto field_of = [](auto&& fn) {
        try {
            fn();
        } catch (const mq::ValidationError& e) {
            return e.details().value("field", std::string());
        }
        return std::string("no error");
    };
    mq::MessageFilter f;
    f.limit = 0;
    CHECK(field_of([&] { mq::validate(f); }) == "limit");
    f.limit = mq::kMaxHistoryPage + 1;
    CHECK(field_of([&] { mq::validate(f); }) == "limit");
    f = {};
    f.status = "exploded";
    CHECK(field_of([&] { mq::validate(f); }) == "status");
    f = {};
    for (const char* c : {"garbage", "aDF8", "aDF8MTIzfG5vdC1hLXV1aWQ", "%%%%"}) {
        f.cursor = c;
        CHECK(field_of([&] { mq::validate(f); }) == "cursor");
    }
    // Well-formed but out of time's range: refused before PostgreSQL would overflow on it.
    for (const char* us : {"-9000000000000000000", "9223372036854775807", "-1"}) {
        f.cursor = mq::codec::base64url_encode(std::string("h1|") + us +
                                               "|0b9c2c1e-6a7e-4f7a-9d55-2c1a3c7e9b10");
        CHECK(field_of([&] { mq::validate(f); }) == "cursor");
    }
    f.cursor =
        mq::codec::base64url_encode("h1|1700000000000000|0b9c2c1e-6a7e-4f7a-9d55-2c1a3c7e9b10");
    CHECK_NOTHROW(mq::validate(f));
    CHECK(field_of([] { mq::parse_since("yesterday", "since"); }) == "since");
    CHECK(field_of([] { mq::parse_since("2026-13-45T99:00:00Z", "since"); }) == "since");
    CHECK(mq::parse_since("1h", "since") <= mq::now_ms() - 3600000 + 1000);
    mqtest::TenantScope ts;
    mq::HistoryStore store(ts.db());
    CHECK(field_of([&] { store.timeline(ts.tenant(), "../../etc/passwd"); }) == "id");
}

TEST_CASE("another tenant's message is not found, like an unknown one", "[history][tenant]") {
    History h;
    const std::string id = h.publish("secret");
    h.drain();
    mqtest::TenantScope other;
    mq::HistoryStore store(other.db());
    try {
        store.timeline(other.tenant(), id);
        FAIL("expected not found");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kNotFound);
    }
    CHECK(store.list(other.tenant(), "orders", {}).items.empty());
    CHECK_THROWS_AS(store.timeline(h.ts.tenant(), "0190a5c4-0000-7abc-8def-0123456789ab"),
                    mq::Error);
}

TEST_CASE("history retention deletes old events in bounded batches", "[history][retention]") {
    History h;
    for (int i = 0; i < 12; ++i) h.publish("m");
    h.drain();
    h.ts.exec("UPDATE message_events SET at = now() - interval '8 days' WHERE tenant_id = '" +
              h.ts.tenant() + "' AND id IN (SELECT id FROM message_events WHERE tenant_id = '" +
              h.ts.tenant() + "' LIMIT 7)");
    mq::HistoryStore store(h.ts.db());
    CHECK(store.purge(std::chrono::hours(24 * 7), 2, 2) == 4);  // bounded: 2 batches of 2
    CHECK(store.purge(std::chrono::hours(24 * 7), 2, 100) == 3);
    CHECK(h.rows() == 5);
}

TEST_CASE("postgres stopped while publishing and delivering: nothing blocks, then caught up",
          "[history][outage]") {
    mqtest::PrivateServices ps;
    mq::pg::Database db(ps.database_url());
    mq::pg::migrate(db, mq::pg::embedded_migrations());
    mq::Catalog catalog(db);
    catalog.create_tenant("acme", "Acme", true);
    mq::QueueSpec spec;
    spec.name = "orders";
    spec.partition_count = 2;
    spec.record_messages = true;
    auto q = catalog.create_queue("acme", spec, mq::Config{});
    mq::KeyLayout keys("mq:");
    mq::redis::Connection redis(mq::redis::parse_url(ps.redis_url()));
    mq::Subscription sub;
    sub.name = "billing";
    sub.start_from = "earliest";
    mq::ConsumerGroups groups(redis, keys);
    groups.ensure(q, sub);
    mq::Publisher pub(redis, keys);
    mq::HistoryWriter writer(redis, db, keys);

    ps.stop_postgres();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 40; ++i) {
        mq::PublishRequest r;
        r.payload = "m" + std::to_string(i);
        r.key = "k" + std::to_string(i);
        pub.publish(q, r);
    }
    for (int p = 0; p < 2; ++p) {
        std::vector<std::string> ids;
        std::vector<mq::HistoryEvent> events;
        for (auto& f : groups.read_new(q, sub, "w1", p, 100, 0ms)) {
            ids.push_back(f.stream_id);
            mq::HistoryEvent& e = events.emplace_back();
            e.kind = mq::history::kAttempt;
            e.message_id = f.message.id;
            e.subscription = sub.name;
            e.attempt = 1;
            e.outcome = "acked";
        }
        groups.ack(q, sub.name, p, ids, events);
    }
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);  // never waited for PostgreSQL
    CHECK_THROWS_AS(writer.drain(q), mq::Error);
    // Buffered: the 40 attempts in one buffer entry per acked batch, and the 40 published
    // events as the stream entries themselves, which the trimmer must keep although every
    // subscription finished them.
    std::int64_t entries = 0;
    for (int p = 0; p < 2; ++p)
        entries += redis.command({"XLEN", keys.history("acme", "orders", p)}).as_integer();
    CHECK(entries == 2);
    CHECK(mq::Trimmer(redis, keys, mq::TrimOptions{}).trim(q).trimmed == 0);
    CHECK(mq::QueueInspector(redis, keys).inspect(q).history_buffered == 42);

    ps.start_postgres();
    REQUIRE(mqtest::eventually(
        [&] {
            try {
                writer.drain(q);
                return true;
            } catch (const mq::Error&) {
                return false;
            }
        },
        20s));
    auto counts = db.transact([&](pqxx::work& tx) {
        return tx.exec1(
            "SELECT count(*), count(DISTINCT (partition, history_id)), "
            "count(*) FILTER (WHERE event = 'published') FROM message_events");
    });
    CHECK(counts[0].as<int>() == 80);  // nothing lost
    CHECK(counts[1].as<int>() == 80);  // nothing twice
    CHECK(counts[2].as<int>() == 40);
    for (int p = 0; p < 2; ++p)
        CHECK(redis.command({"XLEN", keys.history("acme", "orders", p)}).as_integer() == 0);
    CHECK(mq::QueueInspector(redis, keys).inspect(q).history_buffered == 0);
    // Recorded now: the acked entries may go.
    CHECK(mq::Trimmer(redis, keys, mq::TrimOptions{}).trim(q).trimmed == 40);
}

TEST_CASE("a recording queue's entry is its published event: plain XADD, producer on the entry",
          "[history]") {
    History h;
    const std::string id = h.publish("a", "order-1");
    // The entry itself carries the producer; the buffer holds nothing for a publish.
    auto entry =
        h.rs.redis().command({"XRANGE", h.rs.keys().stream(h.q.tenant, h.q.name, 0), "-", "+"});
    REQUIRE(entry.elements.size() == 1);
    const std::string sid = entry.elements[0].elements[0].str;
    std::map<std::string, std::string> fields;
    const auto& kv = entry.elements[0].elements[1].elements;
    for (std::size_t i = 0; i + 1 < kv.size(); i += 2) fields[kv[i].str] = kv[i + 1].str;
    CHECK(fields["pr"] == "checkout");
    CHECK(h.buffer_entries() == 0);
    CHECK(h.buffered() == 1);
    CHECK(h.drain().written == 1);
    CHECK(h.buffered() == 0);
    auto t = mq::HistoryStore(h.ts.db()).timeline(h.ts.tenant(), id);
    REQUIRE(t.events.size() == 1);
    CHECK(t.events[0].event == "published");
    CHECK(t.events[0].detail.producer == "checkout");
    CHECK(t.events[0].detail.key == "order-1");
    CHECK(t.events[0].detail.stream_id == sid);
    CHECK(t.events[0].detail.size == 1);
    CHECK(t.events[0].detail.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(h.drain().written == 0);  // the cursor moved past it
}

TEST_CASE("a delayed message is recorded once: when delayed, not again when it is due",
          "[history][delayed]") {
    History h;
    mq::PublishRequest r;
    r.payload = "later";
    r.delay = 50ms;
    r.producer = "checkout";
    const std::string id = h.pub.publish(h.q, r).message_id;
    CHECK(h.buffer_entries() == 1);  // the published event, written by the publish script
    std::this_thread::sleep_for(80ms);
    mq::Scheduler(h.rs.redis(), h.rs.keys()).move_due(h.q, 100);
    CHECK(
        h.rs.redis().command({"XLEN", h.rs.keys().stream(h.q.tenant, h.q.name, 0)}).as_integer() ==
        1);
    h.drain();
    auto t = mq::HistoryStore(h.ts.db()).timeline(h.ts.tenant(), id);
    REQUIRE(t.events.size() == 1);
    CHECK(t.events[0].event == "published");
    CHECK(t.events[0].detail.detail.rfind("delayed until ", 0) == 0);
    CHECK(h.buffered() == 0);
}

TEST_CASE("entries published before recording was turned on are not recorded", "[history]") {
    History h(false);
    h.publish("before");
    mq::QueueChanges c;
    c.record_messages = true;
    h.q = h.ts.catalog().update_queue(h.ts.tenant(), "orders", c);
    const std::string after = h.publish("after");
    CHECK(h.drain().written == 1);
    auto list = mq::HistoryStore(h.ts.db()).list(h.ts.tenant(), "orders", {});
    REQUIRE(list.items.size() == 1);
    CHECK(list.items[0].message_id == after);
}

TEST_CASE("a batch of attempts is one buffer entry and every attempt becomes a row",
          "[history][runner]") {
    History h;
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) ids.push_back(h.publish("m" + std::to_string(i)));
    auto got = h.groups.read_new(h.q, h.sub, "w1", 0, 10, 0ms);
    REQUIRE(got.size() == 5);
    std::vector<std::string> sids;
    std::vector<mq::HistoryEvent> events;
    for (const auto& f : got) {
        sids.push_back(f.stream_id);
        events.push_back(h.attempt(f, "acked"));
    }
    h.groups.ack(h.q, h.sub.name, 0, sids, events);
    CHECK(h.buffer_entries() == 1);
    CHECK(h.drain().written == 10);
    for (const auto& id : ids)
        CHECK(h.kinds(id) == std::vector<std::string>{"published", "attempt:acked"});
    // Read again after a crash before the XDEL: the sub-events keep their ids, nothing twice.
    h.groups.ack(h.q, h.sub.name, 0, sids, events);
    mq::HistoryWriterOptions crash;
    crash.before_delete = [] { throw std::runtime_error("killed"); };
    CHECK_THROWS(h.drain(crash));
    h.drain();
    CHECK(h.rows() == 15);
    CHECK(h.buffered() == 0);
}

TEST_CASE("the trimmer keeps a recording queue's entries the writer has not read",
          "[history][retention]") {
    History h(true, 1, 20ms);
    const std::string first = h.publish("first");
    std::this_thread::sleep_for(60ms);
    mq::Trimmer trimmer(h.rs.redis(), h.rs.keys(), mq::TrimOptions{});
    CHECK(trimmer.trim(h.q).trimmed == 0);  // no cursor yet: nothing is recorded
    h.drain();
    const std::string second = h.publish("second");
    std::this_thread::sleep_for(60ms);
    CHECK(trimmer.trim(h.q).trimmed == 1);  // only the first: the second is unread
    h.drain();
    CHECK(trimmer.trim(h.q).trimmed == 1);
    CHECK(h.kinds(second).front() == "published");
    h.drain();  // the expired events of the two
    // A cursor ahead of the stream (written by hand) makes the writer read nothing, not fail.
    h.rs.redis().command(
        {"HSET", h.rs.keys().history_cursor(h.q.tenant, h.q.name, 0), "id", "9999999999999-0"});
    h.publish("third");
    CHECK(h.drain().written == 0);  // the cursor claims everything was read
}

TEST_CASE("a query stopped by its statement_timeout is MQ_OVERLOADED, not an internal error",
          "[history][hostile]") {
    mqtest::TenantScope ts;
    try {
        ts.db().transact([](pqxx::work& tx) {
            tx.exec("SET LOCAL statement_timeout = 50");
            tx.exec("SELECT pg_sleep(2)");
        });
        FAIL("pg_sleep(2) should have been cancelled");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kOverloaded);
        CHECK(e.details().value("sqlstate", std::string()) == "57014");
        CHECK(std::string(e.what()).find("pg_sleep") == std::string::npos);
    }
    // The connection is usable afterwards.
    CHECK(ts.db().transact([](pqxx::work& tx) { return tx.exec1("SELECT 1")[0].as<int>(); }) == 1);
}

TEST_CASE("a batch of events with large headers is written in several statements, all of it",
          "[history]") {
    History h;
    // 300 messages of ~63 KiB of headers: ~19 MB of rows, more than one INSERT's worth.
    mq::PublishRequest r;
    r.payload = "x";
    r.producer = "checkout";
    r.headers = {{"blob", std::string(63 * 1024, 'h')}};
    std::vector<mq::PublishRequest> batch(300, r);
    for (const auto& out : h.pub.publish_batch(h.q, batch))
        REQUIRE(out.status == mq::PublishStatus::kAccepted);
    mq::HistoryWriterOptions o;
    o.batch = 1000;
    auto d = h.drain(o);
    CHECK(d.written == 300);
    CHECK(d.malformed == 0);
    CHECK(h.rows() == 300);
    CHECK(h.buffered() == 0);
    auto stored = h.ts.db().transact([&](pqxx::work& tx) {
        return tx
            .exec_params1(
                "SELECT min(octet_length(headers->>'blob')) FROM message_events "
                "WHERE tenant_id = $1",
                h.ts.tenant())[0]
            .as<std::int64_t>();
    });
    CHECK(stored == 63 * 1024);
}
