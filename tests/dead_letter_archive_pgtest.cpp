// Dead letters copied from Redis into PostgreSQL in batches.
#include <catch2/catch.hpp>

#include "harness.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/consume/dead_letter_archive.hpp"
#include "mq/publish/publisher.hpp"

using namespace std::chrono_literals;

TEST_CASE(
    "dead letters are archived once, with payload bytes and reason, by any number of archivers",
    "[dlq][archive]") {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    mq::QueueSpec spec;
    spec.name = "orders";
    spec.partition_count = 2;
    auto q = ts.catalog().create_queue(ts.tenant(), spec, mq::Config{});
    mq::Subscription sub;
    sub.name = "billing";
    sub.start_from = "earliest";
    mq::ConsumerGroups groups(rs.redis(), rs.keys());
    groups.ensure(q, sub);
    mq::Publisher pub(rs.redis(), rs.keys());
    std::string binary("a\0b\xff", 4);
    for (int i = 0; i < 250; ++i) {
        mq::PublishRequest r;
        r.payload = i == 0 ? binary : "p" + std::to_string(i);
        r.key = "k";
        r.headers = {{"h", "v"}};
        pub.publish(q, r);
    }
    for (int p = 0; p < 2; ++p)
        for (auto& f : groups.read_new(q, sub, "c", p, 1000, 0ms))
            groups.dead_letter(q, "billing", p, f.stream_id, "handler_rejected", "HTTP 410", 1);

    auto other = rs.connect();
    mq::pg::Database db2(mqtest::services().database_url);
    mq::DeadLetterArchiver a(rs.redis(), ts.db(), rs.keys(), "w1");
    mq::DeadLetterArchiver b(*other, db2, rs.keys(), "w2");
    std::int64_t written = a.archive(q, 40) + b.archive(q, 40);
    CHECK(written == 250);
    CHECK(a.archive(q) + b.archive(q) == 0);  // nothing new, nothing twice

    auto count = ts.db().transact([&](pqxx::work& tx) {
        return tx
            .exec_params1("SELECT count(*) FROM dead_letters WHERE tenant_id = $1", ts.tenant())[0]
            .as<int>();
    });
    CHECK(count == 250);
    auto row = ts.db().transact([&](pqxx::work& tx) {
        return tx.exec_params1(
            "SELECT encode(payload, 'hex'), reason, last_error, attempts, subscription_name, "
            "headers->>'h', "
            "message_key FROM dead_letters WHERE tenant_id = $1 AND payload = decode('610062ff', "
            "'hex')",
            ts.tenant());
    });
    CHECK(row[0].as<std::string>() == "610062ff");
    CHECK(row[1].as<std::string>() == "handler_rejected");
    CHECK(row[2].as<std::string>() == "HTTP 410");
    CHECK(row[3].as<int>() == 1);
    CHECK(row[4].as<std::string>() == "billing");
    CHECK(row[5].as<std::string>() == "v");
    CHECK(row[6].as<std::string>() == "k");
    ts.exec("DELETE FROM dead_letters WHERE tenant_id = '" + ts.tenant() + "'");
}
