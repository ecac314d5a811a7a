// The transactional outbox in-process: mq.enqueue's checks in SQL, a rolled-back
// transaction, the relay's order, deletes and idempotency keys, hostile rows that fail
// alone and can be retried, QUEUE_FULL rows that wait, two relays on one source, and a
// backend that is down at relay time. Each test has its own service database.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "mq/outbox/outbox.hpp"
#include "mq/publish/publisher.hpp"
#include "mqctl_shell.hpp"
#include "outbox_db.hpp"
#include "private_services.hpp"

using namespace std::chrono_literals;
using mqtest::eventually;

namespace {

class Shell : public mqtest::MqctlShell {
  public:
    mqtest::ServiceDatabase service;

    mq::OutboxRelayOptions relay_options() {
        mq::OutboxRelayOptions o;
        o.source = {tenant(), service.url()};
        o.database_url = mqtest::services().database_url;
        o.redis = mq::redis::parse_url(mqtest::services().redis_url);
        o.keys = redis_.keys();
        o.poll_interval = 50ms;
        o.max_backoff = 200ms;
        o.queue_full_retry = 200ms;
        return o;
    }
    std::vector<mq::Message> messages(const std::string& queue, int partitions = 1) {
        return mqtest::stream_messages(redis_.redis(), redis_.keys(), tenant(), queue, partitions);
    }
    std::vector<std::string> payloads(const std::string& queue, int partitions = 1) {
        std::vector<std::string> out;
        for (const auto& m : messages(queue, partitions)) out.push_back(m.payload);
        return out;
    }
    // The SQLSTATE and message of a statement that must fail.
    std::string sql_error(const std::string& sql) {
        try {
            pqxx::connection c(service.url());
            pqxx::work tx(c);
            tx.exec(sql);
        } catch (const pqxx::sql_error& e) {
            return e.sqlstate() + " " + e.what();
        }
        FAIL("expected an error from: " << sql);
        return {};
    }
};

}  // namespace

TEST_CASE_METHOD(Shell, "outbox: mq.enqueue refuses what SQL can check and stores nothing",
                 "[outbox]") {
    CHECK_THAT(sql_error("SELECT mq.enqueue('bad name!', 'x')"),
               Catch::Contains("22023") && Catch::Contains("queue name"));
    CHECK_THAT(sql_error("SELECT mq.enqueue(NULL, 'x')"), Catch::Contains("queue name"));
    CHECK_THAT(sql_error("SELECT mq.enqueue('q{1}', 'x')"), Catch::Contains("queue name"));
    CHECK_THAT(sql_error("SELECT mq.enqueue('orders', NULL)"), Catch::Contains("payload"));
    CHECK_THAT(sql_error("SELECT mq.enqueue('orders', 'x', headers => '[1,2]')"),
               Catch::Contains("JSON object"));
    CHECK_THAT(sql_error("SELECT mq.enqueue('orders', 'x', headers => '{\"a\": 1}')"),
               Catch::Contains("JSON string"));
    CHECK_THAT(sql_error("SELECT mq.enqueue('orders', 'x', delay_ms => -1)"),
               Catch::Contains("delay_ms"));
    CHECK_THAT(sql_error("SELECT mq.enqueue('orders', 'x', delay_ms => 5, deliver_at => now())"),
               Catch::Contains("not both"));
    CHECK_THAT(sql_error("SELECT mq.enqueue('orders', 'x', tenant => 'a:b')"),
               Catch::Contains("tenant"));
    CHECK_THAT(sql_error("SELECT mq.enqueue('orders', 'x', repeat('k', 1025))"),
               Catch::Contains("key"));
    CHECK_THAT(sql_error("SELECT mq.enqueue('orders', repeat('x', 1048577))"),
               Catch::Contains("54000") && Catch::Contains("limit"));
    service.exec("UPDATE mq.outbox_settings SET max_payload_bytes = 10");
    CHECK_THAT(sql_error("SELECT mq.enqueue('orders', repeat('x', 11))"), Catch::Contains("limit"));
    // A direct INSERT is held to the table's own checks.
    CHECK_THAT(sql_error("INSERT INTO mq.outbox (queue, payload, headers) VALUES ('o', 'x', "
                         "'\"str\"')"),
               Catch::Contains("check"));
    CHECK(service.rows() == 0);
    // Installing again (a second `mqctl outbox install`) changes nothing and keeps the id.
    auto before = service.scalar("SELECT count(*) FROM mq.outbox_settings");
    mq::OutboxStore(service.db()).install();
    CHECK(service.scalar("SELECT count(*) FROM mq.outbox_settings") == before);
}

TEST_CASE_METHOD(Shell, "outbox: a rolled-back transaction publishes nothing", "[outbox]") {
    create_queue({"orders"});
    {
        pqxx::connection c(service.url());
        pqxx::work tx(c);
        tx.exec("CREATE TABLE IF NOT EXISTS orders (id int)");
        tx.exec("INSERT INTO orders VALUES (1)");
        tx.exec("SELECT mq.enqueue('orders', 'never')");
        tx.abort();
    }
    mq::OutboxRelay relay(relay_options());
    auto pass = relay.drain();
    CHECK(pass.claimed == 0);
    CHECK(xlen("orders", 0) == 0);
    CHECK(service.rows() == 0);
}

TEST_CASE_METHOD(Shell, "outbox: relay publishes committed rows in id order and deletes them",
                 "[outbox]") {
    create_queue({"orders"});
    service.exec(
        "SELECT mq.enqueue('orders', 'first', key => 'k1', headers => '{\"h\": \"v\"}', "
        "content_type => 'text/plain', trace_id => '4bf92f3577b34da6a3ce929d0e0e4736')");
    service.enqueue_n("orders", 20);
    auto o = relay_options();
    o.batch_size = 7;  // several batches
    mq::OutboxRelay relay(o);
    auto pass = relay.drain();
    CHECK(pass.relayed == 21);
    CHECK(pass.failed == 0);
    CHECK(service.rows() == 0);
    auto msgs = messages("orders");
    REQUIRE(msgs.size() == 21);
    CHECK(msgs[0].payload == "first");
    CHECK(msgs[0].key == "k1");
    CHECK(msgs[0].content_type == "text/plain");
    CHECK(msgs[0].trace_id == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(nlohmann::json::parse(msgs[0].headers_json) == nlohmann::json{{"h", "v"}});
    for (int i = 0; i < 20; ++i)
        CHECK(msgs[static_cast<std::size_t>(i) + 1].payload == "m" + std::to_string(i));
    // The stats a worker exports.
    auto s = relay.stats();
    CHECK(s.relayed == 21);
    CHECK(s.tenant == tenant());
}

TEST_CASE_METHOD(Shell,
                 "outbox: a row Redis already stored (relay died before DELETE) is not "
                 "published twice",
                 "[outbox]") {
    create_queue({"orders", "--partitions", "3"});
    service.enqueue_n("orders", 10);
    // What a relay killed after XADD and before its COMMIT left: the messages in Redis under
    // their idempotency keys, the rows still in the outbox.
    std::string instance;
    service.db().transact([&](pqxx::work& tx) {
        instance = tx.exec1("SELECT id::text FROM mq.outbox_settings")[0].as<std::string>();
    });
    mq::Queue q = queue("orders");
    mq::Publisher pub(redis_.redis(), redis_.keys());
    for (std::int64_t id = 1; id <= 6; ++id) {
        mq::PublishRequest r;
        r.payload = "m" + std::to_string(id - 1);
        r.idempotency_key = "outbox-" + instance + "-" + std::to_string(id);
        pub.publish(q, r);
    }
    mq::OutboxRelay relay(relay_options());
    auto pass = relay.drain();
    CHECK(pass.relayed == 10);
    CHECK(pass.duplicates == 6);
    CHECK(service.rows() == 0);
    auto got = payloads("orders", 3);
    CHECK(got.size() == 10);
    CHECK(std::set<std::string>(got.begin(), got.end()).size() == 10);
}

TEST_CASE_METHOD(Shell,
                 "outbox: hostile rows fail alone, the others go through, and failed rows "
                 "can be retried",
                 "[outbox]") {
    create_queue({"orders"});
    auto schema = mqtest::temp_file(
        R"({"type":"object","required":["n"],"properties":{"n":{"type":"integer"}}})");
    create_queue({"typed", "--schema-file", schema});
    service.exec("SELECT mq.enqueue('orders', 'ok-1')");
    service.exec("SELECT mq.enqueue('nosuchqueue', 'lost')");                  // unknown queue
    service.exec("SELECT mq.enqueue('orders', 'theirs', tenant => 'other')");  // other tenant
    service.exec(  // a header value that is not a string, by a direct INSERT
        "INSERT INTO mq.outbox (queue, payload, headers) VALUES ('orders', 'bad-h', "
        "'{\"a\": {\"b\": 1}}')");
    service.exec("SELECT mq.enqueue('orders', repeat('x', 5000))");  // over the relay's limit
    service.exec(  // headers too large to read (direct INSERT: mq.enqueue allows 64 only)
        "INSERT INTO mq.outbox (queue, payload, headers) VALUES ('orders', 'big-headers', "
        "jsonb_build_object('a', repeat('x', 300000)))");
    service.exec("SELECT mq.enqueue('typed', '{\"n\": \"not a number\"}')");  // schema
    service.exec("SELECT mq.enqueue('typed', '{\"n\": 3}')");
    service.exec("SELECT mq.enqueue('orders', 'ok-2')");
    // Another tenant's queue is not found (its name is looked up in this source's tenant).
    mqtest::TenantScope other;
    mq::QueueSpec theirs;
    theirs.name = "theirs-only";
    other.catalog().create_queue(other.tenant(), theirs, mq::Config{});
    service.exec("SELECT mq.enqueue('theirs-only', 'sneaky')");
    auto o = relay_options();
    o.limits.max_message_size = 1000;
    mq::OutboxRelay relay(o);
    auto pass = relay.drain();
    CHECK(pass.relayed == 3);
    CHECK(pass.failed == 7);
    CHECK(redis_.redis()
              .command({"EXISTS", redis_.keys().stream(other.tenant(), "theirs-only", 0)})
              .as_integer() == 0);
    CHECK(payloads("orders") == std::vector<std::string>{"ok-1", "ok-2"});
    CHECK(payloads("typed") == std::vector<std::string>{"{\"n\": 3}"});

    mq::OutboxStore store(service.db());
    auto failed = store.list(true, 0, 100);
    REQUIRE(failed.size() == 7);
    auto error_of = [&](const std::string& q, std::int64_t bytes = -1) {
        for (const auto& r : failed)
            if (r.queue == q && (bytes < 0 || r.payload_bytes == bytes)) return r.last_error;
        return std::string("(none)");
    };
    CHECK_THAT(error_of("nosuchqueue"), Catch::Contains("MQ_QUEUE_NOT_FOUND"));
    CHECK_THAT(error_of("orders", 6), Catch::Contains("tenant 'other'"));
    CHECK_THAT(error_of("orders", 5), Catch::Contains("header 'a'"));
    CHECK_THAT(error_of("orders", 5000), Catch::Contains("MQ_PAYLOAD_TOO_LARGE"));
    CHECK_THAT(error_of("typed"), Catch::Contains("MQ_SCHEMA_VALIDATION"));
    CHECK_THAT(error_of("theirs-only"), Catch::Contains("MQ_QUEUE_NOT_FOUND"));
    CHECK_THAT(error_of("orders", 11), Catch::Contains("headers are"));
    for (const auto& r : failed) CHECK(!r.failed_at.empty());
    // Failed rows are skipped, not retried on every pass.
    CHECK(relay.drain().claimed == 0);
    auto counts = store.counts();
    CHECK(counts.failed == 7);
    CHECK(counts.pending == 0);

    // The operator creates the missing queue and retries that row: it goes through.
    create_queue({"nosuchqueue"});
    std::int64_t lost_id = 0;
    for (const auto& r : failed)
        if (r.queue == "nosuchqueue") lost_id = r.id;
    CHECK(store.retry({lost_id}) == 1);
    CHECK(store.retry({lost_id}) == 0);  // no longer failed
    CHECK(relay.drain().relayed == 1);
    CHECK(payloads("nosuchqueue") == std::vector<std::string>{"lost"});
    // Retrying everything makes the other six pending; they fail again.
    CHECK(store.retry({}) == 6);
    CHECK(relay.drain().failed == 6);
    CHECK(store.discard({}) == 6);
    CHECK(service.rows() == 0);
}

TEST_CASE_METHOD(Shell, "outbox: rows of a full queue wait and go through once there is room",
                 "[outbox]") {
    create_queue({"small", "--max-length", "2"});
    service.enqueue_n("small", 3);
    mq::OutboxRelay relay(relay_options());
    auto pass = relay.drain();
    CHECK(pass.relayed == 2);
    CHECK(pass.deferred == 1);
    CHECK(pass.failed == 0);
    CHECK(service.rows() == 1);
    CHECK(service.failed_rows() == 0);
    // Not due yet: the next pass leaves it alone.
    CHECK(relay.drain().claimed == 0);
    redis_.redis().command({"DEL", stream("small", 0)});
    REQUIRE(eventually([&] { return relay.drain().relayed == 1; }, 3s));
    CHECK(service.rows() == 0);
}

TEST_CASE_METHOD(Shell, "outbox: delay_ms and deliver_at go to the delayed set", "[outbox]") {
    create_queue({"later"});
    service.exec("SELECT mq.enqueue('later', 'in-an-hour', delay_ms => 3600000)");
    service.exec("SELECT mq.enqueue('later', 'tomorrow', deliver_at => now() + interval '1 day')");
    service.exec("SELECT mq.enqueue('later', 'past', deliver_at => now() - interval '1 day')");
    mq::OutboxRelay relay(relay_options());
    CHECK(relay.drain().relayed == 3);
    CHECK(zcard("later", 0) == 2);
    CHECK(payloads("later") == std::vector<std::string>{"past"});
}

TEST_CASE_METHOD(Shell,
                 "outbox: an infinite deliver_at fails its own row and blocks none behind it",
                 "[outbox]") {
    create_queue({"later"});
    service.exec("SELECT mq.enqueue('later', 'never', deliver_at => 'infinity')");
    service.exec("SELECT mq.enqueue('later', 'ancient', deliver_at => '-infinity')");
    service.exec("SELECT mq.enqueue('later', 'roman', deliver_at => '0044-03-15 12:00Z')");
    service.exec("SELECT mq.enqueue('later', 'now')");
    mq::OutboxRelay relay(relay_options());
    auto pass = relay.drain();
    CHECK(pass.relayed == 3);
    CHECK(pass.failed == 1);
    CHECK(service.rows() == 1);
    CHECK(service.failed_rows() == 1);
    CHECK(payloads("later") == std::vector<std::string>{"ancient", "roman", "now"});
    CHECK(zcard("later", 0) == 0);
    auto failed = mq::OutboxStore(service.db()).list(true, 0, 10);
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].id == 1);
    CHECK_THAT(failed[0].last_error, Catch::Contains("infinity"));
    // The operator can remove it; nothing is left behind.
    CHECK(mq::OutboxStore(service.db()).discard({}) == 1);
    CHECK(service.rows() == 0);
}

TEST_CASE_METHOD(Shell,
                 "outbox: rows of a replica-durability queue that no replica confirms wait; "
                 "the other queues' rows go on",
                 "[outbox]") {
    // This Redis has no replica: WAIT 1 answers 0 after its timeout.
    create_queue({"safe", "--durability", "replica"});
    create_queue({"orders"});
    service.enqueue_n("safe", 2, "s");
    service.enqueue_n("orders", 3, "o");
    mq::OutboxRelay relay(relay_options());
    auto pass = relay.drain();
    CHECK(pass.relayed == 3);
    CHECK(pass.deferred == 2);
    CHECK(pass.failed == 0);
    CHECK(payloads("orders").size() == 3);
    CHECK(service.rows() == 2);
    CHECK(service.failed_rows() == 0);
    CHECK(service.scalar("SELECT min(attempts) FROM mq.outbox") == 1);
    CHECK(service.scalar("SELECT count(*) FROM mq.outbox WHERE last_error LIKE '%replica%'") == 2);
    // Not due yet: the next drain claims nothing and ends at once.
    CHECK(relay.drain().claimed == 0);
}

TEST_CASE_METHOD(Shell, "outbox: a drain whose whole batch had to wait ends instead of spinning",
                 "[outbox]") {
    create_queue({"small", "--max-length", "1"});
    service.enqueue_n("small", 30);
    auto o = relay_options();
    o.batch_size = 10;
    o.queue_full_retry = 0ms;  // due again at once: a drain that went on would never end
    mq::OutboxRelay relay(o);
    auto first = relay.drain();
    CHECK(first.relayed == 1);
    auto second = relay.drain();  // every row refused as QUEUE_FULL: one batch, then it ends
    CHECK(second.relayed == 0);
    CHECK(second.claimed == 10);
    CHECK(second.deferred == 10);
    CHECK(service.rows() == 29);
    CHECK(service.failed_rows() == 0);
}

TEST_CASE_METHOD(Shell, "outbox: two relays on one source publish every row exactly once",
                 "[outbox]") {
    create_queue({"orders", "--partitions", "4"});
    service.enqueue_n("orders", 600);
    auto o = relay_options();
    o.batch_size = 25;
    mq::OutboxRelay a(o);
    mq::OutboxRelay b(o);
    a.start();
    b.start();
    REQUIRE(eventually([&] { return service.rows() == 0; }, 60s));
    a.stop();
    b.stop();
    auto got = payloads("orders", 4);
    CHECK(got.size() == 600);
    CHECK(std::set<std::string>(got.begin(), got.end()).size() == 600);
    // Both took part (SKIP LOCKED hands each the rows the other does not hold).
    CHECK(a.stats().relayed + b.stats().relayed == 600);
}

TEST_CASE_METHOD(Shell, "outbox: a relay with Redis down changes nothing and says so", "[outbox]") {
    create_queue({"orders"});
    service.enqueue_n("orders", 5);
    auto o = relay_options();
    o.redis = mq::redis::parse_url("redis://127.0.0.1:" + std::to_string(mqtest::dead_port()));
    mq::OutboxRelay relay(o);
    try {
        relay.drain();
        FAIL("expected BackendUnavailable");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
    }
    CHECK(service.rows() == 5);
    CHECK(service.failed_rows() == 0);
    CHECK(service.scalar("SELECT max(attempts) FROM mq.outbox") == 0);
}

TEST_CASE_METHOD(Shell, "outbox: a database without the outbox is a clear not-found", "[outbox]") {
    auto o = relay_options();
    mqtest::ServiceDatabase other;
    other.exec("DROP SCHEMA mq CASCADE");
    o.source.database_url = other.url();
    mq::OutboxRelay relay(o);
    try {
        relay.drain();
        FAIL("expected NotFound");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kNotFound);
        CHECK_THAT(e.what(), Catch::Contains("mqctl outbox install"));
    }
}

TEST_CASE_METHOD(Shell, "outbox: an unknown tenant leaves every row alone", "[outbox]") {
    create_queue({"orders"});
    service.enqueue_n("orders", 3);
    auto o = relay_options();
    o.source.tenant = "no-such-tenant";
    mq::OutboxRelay relay(o);
    CHECK_THROWS_AS(relay.drain(), mq::Error);
    CHECK(service.rows() == 3);
    CHECK(service.failed_rows() == 0);
}

TEST_CASE_METHOD(Shell, "outbox: LISTEN wakes a running relay long before its poll interval",
                 "[outbox]") {
    create_queue({"orders"});
    auto o = relay_options();
    o.poll_interval = std::chrono::hours(1);
    mq::OutboxRelay relay(o);
    relay.start();
    // Let the relay LISTEN and finish its first (empty) pass.
    REQUIRE(eventually([&] { return relay.stats().up; }, 10s));
    auto start = std::chrono::steady_clock::now();
    service.exec("SELECT mq.enqueue('orders', 'wake')");
    REQUIRE(eventually([&] { return xlen("orders", 0) == 1; }, 5s));
    CHECK(std::chrono::steady_clock::now() - start < 3s);
    relay.stop();
}

TEST_CASE_METHOD(Shell, "outbox: a relay whose LISTEN connection was killed listens again",
                 "[outbox]") {
    create_queue({"orders"});
    auto o = relay_options();
    o.poll_interval = std::chrono::hours(1);  // only a notification can wake it in time
    mq::OutboxRelay relay(o);
    relay.start();
    REQUIRE(eventually([&] { return relay.stats().up; }, 10s));
    CHECK(service.scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND query LIKE 'LISTEN%mq_outbox%' "
                         "AND pid <> pg_backend_pid()") == 1);
    // The relay notices the dead connection, LISTENs again and drains (which finds the row
    // should it have been committed before the new LISTEN).
    service.exec("SELECT mq.enqueue('orders', 'after the kill')");
    CHECK(eventually([&] { return xlen("orders", 0) == 1; }, 5s));
    CHECK(service.rows() == 0);
    relay.stop();
}

TEST_CASE_METHOD(Shell, "outbox: the SQL example of docs/outbox.md runs and publishes",
                 "[outbox][docs]") {
    std::ifstream in(std::string(MQ_SOURCE_DIR) + "/docs/outbox.md");
    std::stringstream doc;
    doc << in.rdbuf();
    const std::string text = doc.str();
    auto start = text.find("### SQL\n\n```sql\n");
    REQUIRE(start != std::string::npos);
    start = text.find('\n', text.find("```sql", start)) + 1;
    auto end = text.find("```", start);
    REQUIRE(end != std::string::npos);
    std::string example = text.substr(start, end - start);
    create_queue({"orders"});
    create_queue({"reminders"});
    service.exec("CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric)");
    {
        pqxx::connection c(service.url());
        pqxx::nontransaction tx(c);
        tx.exec(example);  // BEGIN ... COMMIT, as a psql session would run it
    }
    CHECK(service.scalar("SELECT count(*) FROM orders") == 1);
    mq::OutboxRelay relay(relay_options());
    CHECK(relay.drain().relayed == 2);
    auto msgs = messages("orders");
    REQUIRE(msgs.size() == 1);
    CHECK(nlohmann::json::parse(msgs[0].payload) ==
          nlohmann::json{{"event", "created"}, {"id", 42}});
    CHECK(msgs[0].key == "c-7");
    CHECK(zcard("reminders", 0) == 1);
}
