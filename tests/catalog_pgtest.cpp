// Tenants and queue configuration in a real PostgreSQL.
#include <catch2/catch.hpp>

#include "harness.hpp"
#include "mq/queue/lifecycle.hpp"

namespace {

mq::QueueSpec spec(const std::string& name) {
    mq::QueueSpec s;
    s.name = name;
    return s;
}

}  // namespace

TEST_CASE("a queue is created with the configured defaults and read back", "[catalog]") {
    mqtest::TenantScope ts;
    mq::Config config;
    config.default_ttl = std::chrono::seconds(3600);
    config.max_queue_length = 5000;
    auto q = ts.catalog().create_queue(ts.tenant(), spec("orders"), config);
    CHECK(q.name == "orders");
    CHECK(q.tenant == ts.tenant());
    CHECK(q.partition_count == 1);
    CHECK(q.retention == std::chrono::hours(1));
    CHECK(q.max_length == 5000);
    CHECK(q.dedup_window == std::chrono::hours(24));
    CHECK(q.status == "active");
    CHECK(q.id.size() == 36);

    auto again = ts.catalog().get_queue(ts.tenant(), "orders");
    CHECK(again.id == q.id);
    CHECK(again.created_at == q.created_at);
    auto all = ts.catalog().list_queues(ts.tenant());
    REQUIRE(all.size() == 1);
    CHECK(all[0].name == "orders");
}

TEST_CASE("explicit settings win over defaults", "[catalog]") {
    mqtest::TenantScope ts;
    mq::QueueSpec s = spec("events");
    s.partition_count = 8;
    s.retention = std::chrono::hours(2);
    s.max_length = 10;
    s.dedup_window = std::chrono::minutes(5);
    s.description = "user events";
    auto q = ts.catalog().create_queue(ts.tenant(), s, mq::Config{});
    CHECK(q.partition_count == 8);
    CHECK(q.retention == std::chrono::hours(2));
    CHECK(q.max_length == 10);
    CHECK(q.dedup_window == std::chrono::minutes(5));
    CHECK(q.description == "user events");
    CHECK(q.max_length_per_partition() == 2);
}

TEST_CASE("a second queue with the same name is a conflict; another tenant may use it",
          "[catalog]") {
    mqtest::TenantScope a, b;
    a.catalog().create_queue(a.tenant(), spec("orders"), mq::Config{});
    try {
        a.catalog().create_queue(a.tenant(), spec("orders"), mq::Config{});
        FAIL("duplicate queue accepted");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kConflict);
    }
    CHECK_NOTHROW(b.catalog().create_queue(b.tenant(), spec("orders"), mq::Config{}));
}

TEST_CASE("a tenant never sees another tenant's queues", "[catalog]") {
    mqtest::TenantScope a, b;
    a.catalog().create_queue(a.tenant(), spec("secret"), mq::Config{});
    CHECK_FALSE(b.catalog().find_queue(b.tenant(), "secret"));
    CHECK(b.catalog().list_queues(b.tenant()).empty());
    try {
        b.catalog().get_queue(b.tenant(), "secret");
        FAIL("tenant b read tenant a's queue");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kQueueNotFound);
    }
    CHECK_THROWS_AS(b.catalog().update_queue(b.tenant(), "secret",
                                             [] {
                                                 mq::QueueChanges c;
                                                 c.description = "x";
                                                 return c;
                                             }()),
                    mq::Error);
}

TEST_CASE("creating a queue in a missing tenant says how to create the tenant", "[catalog]") {
    mqtest::TenantScope ts;
    try {
        ts.catalog().create_queue("no-such-tenant", spec("orders"), mq::Config{});
        FAIL("queue created in a missing tenant");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kNotFound);
        CHECK(std::string(e.what()).find("mqctl tenant create no-such-tenant") !=
              std::string::npos);
    }
}

TEST_CASE("tenant create is a conflict the second time unless if_not_exists", "[catalog]") {
    mqtest::TenantScope ts;
    CHECK_THROWS_AS(ts.catalog().create_tenant(ts.tenant(), "", false), mq::Error);
    CHECK_FALSE(ts.catalog().create_tenant(ts.tenant(), "", true));
    CHECK_THROWS_AS(ts.catalog().create_tenant("bad:name", "", false), mq::ValidationError);
    bool listed = false;
    for (const auto& t : ts.catalog().list_tenants()) listed = listed || t.id == ts.tenant();
    CHECK(listed);
}

TEST_CASE("update changes only the given settings and never shrinks partitions", "[catalog]") {
    mqtest::TenantScope ts;
    mq::QueueSpec s = spec("orders");
    s.partition_count = 4;
    s.max_length = 100;
    auto q = ts.catalog().create_queue(ts.tenant(), s, mq::Config{});

    mq::QueueChanges grow;
    grow.partition_count = 6;
    grow.description = "more";
    auto u = ts.catalog().update_queue(ts.tenant(), "orders", grow);
    CHECK(u.partition_count == 6);
    CHECK(u.description == "more");
    CHECK(u.max_length == 100);
    CHECK(u.retention == q.retention);

    mq::QueueChanges unlimited;
    unlimited.max_length = std::optional<std::int64_t>();
    CHECK_FALSE(ts.catalog().update_queue(ts.tenant(), "orders", unlimited).max_length);

    mq::QueueChanges shrink;
    shrink.partition_count = 2;
    try {
        ts.catalog().update_queue(ts.tenant(), "orders", shrink);
        FAIL("partitions shrank");
    } catch (const mq::ValidationError& e) {
        CHECK(std::string(e.what()).find("cannot reduce partitions") != std::string::npos);
    }
    CHECK(ts.catalog().get_queue(ts.tenant(), "orders").partition_count == 6);
}

TEST_CASE("delete refuses a queue with subscriptions unless forced, and removes its keys",
          "[catalog]") {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    auto q = ts.catalog().create_queue(ts.tenant(), spec("orders"), mq::Config{});
    rs.redis().command(
        {"XADD", rs.keys().stream(ts.tenant(), "orders", 0), "*", "id", "x", "p", "y"});
    ts.exec(
        "INSERT INTO message_subscriptions (tenant_id, topic_id, name, consumer_group) VALUES ('" +
        ts.tenant() + "', '" + q.id + "', 'billing', 'billing')");
    mq::QueueStreams streams(rs.redis(), rs.keys());

    try {
        mq::delete_queue(ts.catalog(), streams, ts.tenant(), "orders", false);
        FAIL("deleted a queue with a subscription");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kConflict);
    }
    CHECK(ts.catalog().find_queue(ts.tenant(), "orders"));
    CHECK(rs.all_keys().size() == 1);

    auto d = mq::delete_queue(ts.catalog(), streams, ts.tenant(), "orders", true);
    CHECK(d.subscriptions == 1);
    CHECK_FALSE(ts.catalog().find_queue(ts.tenant(), "orders", true));
    CHECK(rs.all_keys().empty());
    CHECK_THROWS_AS(mq::delete_queue(ts.catalog(), streams, ts.tenant(), "orders", false),
                    mq::Error);
}

TEST_CASE("an interrupted delete leaves a hidden queue that delete finishes", "[catalog]") {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    auto q = ts.catalog().create_queue(ts.tenant(), spec("orders"), mq::Config{});
    ts.catalog().mark_deleting(q);  // as if the process died right after this step
    CHECK_FALSE(ts.catalog().find_queue(ts.tenant(), "orders"));
    CHECK(ts.catalog().list_queues(ts.tenant()).empty());
    mq::QueueStreams streams(rs.redis(), rs.keys());
    CHECK_NOTHROW(mq::delete_queue(ts.catalog(), streams, ts.tenant(), "orders", false));
    CHECK_NOTHROW(ts.catalog().create_queue(ts.tenant(), spec("orders"), mq::Config{}));
}

TEST_CASE("queue changes are announced on the mq_config channel", "[catalog]") {
    mqtest::TenantScope ts;
    pqxx::connection listener(mqtest::services().database_url);
    struct Receiver : pqxx::notification_receiver {
        std::vector<std::string> payloads;
        Receiver(pqxx::connection_base& c) : pqxx::notification_receiver(c, "mq_config") {}
        void operator()(const std::string& payload, int) override { payloads.push_back(payload); }
    } receiver(listener);
    listener.get_notifs();

    auto q = ts.catalog().create_queue(ts.tenant(), spec("orders"), mq::Config{});
    mq::QueueChanges c;
    c.description = "x";
    ts.catalog().update_queue(ts.tenant(), "orders", c);
    ts.catalog().delete_queue_row(q);
    for (int i = 0; i < 50 && receiver.payloads.size() < 3; ++i)
        listener.await_notification(0, 100000);
    int mine = 0;
    for (const auto& p : receiver.payloads) {
        auto j = nlohmann::json::parse(p);
        if (j["tenant"] == ts.tenant()) {
            CHECK(j["table"] == "message_topics");
            ++mine;
        }
    }
    CHECK(mine == 3);
}
