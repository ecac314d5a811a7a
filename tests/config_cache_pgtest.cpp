// The in-memory config cache against a real PostgreSQL: changes made through another
// connection (as mqctl would) show up within a second via LISTEN/NOTIFY.
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "eventually.hpp"
#include "harness.hpp"
#include "mq/api/config_cache.hpp"
#include "mq/consume/subscription_catalog.hpp"

using namespace std::chrono_literals;

namespace {

mq::QueueSpec spec(const std::string& name) {
    mq::QueueSpec s;
    s.name = name;
    return s;
}

mq::Subscription sub(const std::string& tenant, const std::string& queue, const std::string& name) {
    mq::Subscription s;
    s.tenant = tenant;
    s.queue = queue;
    s.name = name;
    return s;
}

// True as soon as `cond` holds, false when it still does not after `limit`.
template <class Cond>
bool within(std::chrono::milliseconds limit, Cond cond) {
    return mqtest::eventually(cond, limit, 10ms);
}

// A cache with a database connection of its own, started.
struct Cache {
    mq::pg::Database db{mqtest::services().database_url};
    mq::ConfigCache cache{db, mqtest::services().database_url};
};

}  // namespace

TEST_CASE("queues created, updated and deleted through another connection show up within a second",
          "[config_cache]") {
    mqtest::TenantScope ts;
    ts.catalog().create_queue(ts.tenant(), spec("existing"), mq::Config{});
    Cache c;
    c.cache.start();
    CHECK(c.cache.listening());
    REQUIRE(c.cache.queue(ts.tenant(), "existing"));  // loaded by start()
    CHECK_FALSE(c.cache.queue(ts.tenant(), "orders"));

    ts.catalog().create_queue(ts.tenant(), spec("orders"), mq::Config{});
    REQUIRE(within(1000ms, [&] { return c.cache.queue(ts.tenant(), "orders") != nullptr; }));
    CHECK(c.cache.queue(ts.tenant(), "orders")->partition_count == 1);
    CHECK(c.cache.queues(ts.tenant()).size() == 2);
    bool in_all = false;
    for (const auto& q : c.cache.all_queues())
        in_all = in_all || (q->tenant == ts.tenant() && q->name == "orders");
    CHECK(in_all);

    mq::QueueChanges changes;
    changes.description = "order events";
    changes.partition_count = 4;
    ts.catalog().update_queue(ts.tenant(), "orders", changes);
    CHECK(
        within(1000ms, [&] { return c.cache.queue(ts.tenant(), "orders")->partition_count == 4; }));
    CHECK(c.cache.queue(ts.tenant(), "orders")->description == "order events");

    auto q = ts.catalog().get_queue(ts.tenant(), "orders");
    ts.catalog().mark_deleting(q);  // deleting counts as gone
    CHECK(within(1000ms, [&] { return c.cache.queue(ts.tenant(), "orders") == nullptr; }));
    ts.catalog().delete_queue_row(q);
    ts.catalog().create_queue(ts.tenant(), spec("after"), mq::Config{});
    REQUIRE(within(1000ms, [&] { return c.cache.queue(ts.tenant(), "after") != nullptr; }));
    CHECK_FALSE(c.cache.queue(ts.tenant(), "orders"));
    CHECK(c.cache.queues(ts.tenant()).size() == 2);
}

TEST_CASE("subscriptions are cached by id, per tenant", "[config_cache]") {
    mqtest::TenantScope a, b;
    a.catalog().create_queue(a.tenant(), spec("orders"), mq::Config{});
    Cache c;
    std::atomic<int> changed{0};
    c.cache.on_changed([&](const std::string& tenant) {
        if (tenant == a.tenant()) ++changed;
    });
    c.cache.start();

    mq::SubscriptionCatalog subs(a.db());
    auto s = sub(a.tenant(), "orders", "billing");
    s.retry.max_attempts = 7;
    auto created = subs.create(s);
    REQUIRE(
        within(1000ms, [&] { return c.cache.subscription(a.tenant(), created.id) != nullptr; }));
    CHECK(c.cache.subscription(a.tenant(), created.id)->retry.max_attempts == 7);
    CHECK(c.cache.subscription(a.tenant(), created.id)->name == "billing");
    CHECK_FALSE(c.cache.subscription(b.tenant(), created.id));  // another tenant's
    CHECK_FALSE(c.cache.subscription(a.tenant(), "not-a-uuid"));
    REQUIRE(c.cache.subscriptions(a.tenant()).size() == 1);
    CHECK(changed > 0);

    subs.set_status(a.tenant(), "orders", "billing", "paused");
    CHECK(within(1000ms,
                 [&] { return c.cache.subscription(a.tenant(), created.id)->status == "paused"; }));
    subs.remove(a.tenant(), "orders", "billing");
    CHECK(within(1000ms, [&] { return c.cache.subscription(a.tenant(), created.id) == nullptr; }));
    CHECK(c.cache.subscriptions(a.tenant()).empty());
}

TEST_CASE("subscriptions are found by id only within their tenant",
          "[config_cache][subscription]") {
    mqtest::TenantScope a, b;
    a.catalog().create_queue(a.tenant(), spec("orders"), mq::Config{});
    mq::SubscriptionCatalog subs(a.db());
    auto created = subs.create(sub(a.tenant(), "orders", "billing"));
    REQUIRE(subs.find_by_id(a.tenant(), created.id));
    CHECK(subs.get_by_id(a.tenant(), created.id).name == "billing");
    CHECK_FALSE(subs.find_by_id(b.tenant(), created.id));
    CHECK_FALSE(subs.find_by_id(a.tenant(), "not-a-uuid"));
    CHECK_FALSE(subs.find_by_id(a.tenant(), "'; DROP TABLE message_subscriptions; --"));
    CHECK_FALSE(subs.find_by_id(a.tenant(), "00000000-0000-0000-0000-000000000000"));
    try {
        subs.get_by_id(b.tenant(), created.id);
        FAIL("another tenant's subscription was found");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kSubscriptionNotFound);
        CHECK(std::string(e.what()).find(b.tenant()) != std::string::npos);
    }
}

TEST_CASE("the token callback fires when api_tokens change", "[config_cache]") {
    mqtest::TenantScope ts;
    Cache c;
    std::atomic<int> fired{0};
    c.cache.on_tokens_changed([&] { ++fired; });
    c.cache.start();
    ts.exec(
        "INSERT INTO api_tokens (tenant_id, token_hash, token_prefix, role, principal) VALUES ('" +
        ts.tenant() + "', sha256(gen_random_uuid()::text::bytea), 'mq_test', 'producer', 'svc')");
    CHECK(within(1000ms, [&] { return fired > 0; }));
}

TEST_CASE("reload_tenant is synchronous: the change is visible when it returns", "[config_cache]") {
    mqtest::TenantScope ts;
    Cache c;  // not started: nothing but reload_tenant can bring the change in
    ts.catalog().create_queue(ts.tenant(), spec("orders"), mq::Config{});
    CHECK_FALSE(c.cache.queue(ts.tenant(), "orders"));
    CHECK_FALSE(c.cache.listening());
    c.cache.reload_tenant(ts.tenant());
    REQUIRE(c.cache.queue(ts.tenant(), "orders"));
    CHECK(c.cache.queue(ts.tenant(), "orders")->tenant == ts.tenant());
}

TEST_CASE("a dropped LISTEN connection is reopened and changes still arrive", "[config_cache]") {
    mqtest::TenantScope ts;
    Cache c;
    std::atomic<int> tokens{0};  // told after a reconnect: token changes may have been missed
    c.cache.on_tokens_changed([&] { ++tokens; });
    c.cache.start();
    REQUIRE(c.cache.listening());
    // Kill every LISTEN connection on the channel (other caches reconnect the same way).
    ts.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE query LIKE 'LISTEN%mq_config%' AND pid <> pg_backend_pid()");
    ts.catalog().create_queue(ts.tenant(), spec("while-down"), mq::Config{});
    CHECK(within(2000ms, [&] { return c.cache.queue(ts.tenant(), "while-down") != nullptr; }));
    CHECK(within(2000ms, [&] { return tokens > 0; }));
    REQUIRE(within(2000ms, [&] { return c.cache.listening(); }));
    ts.catalog().create_queue(ts.tenant(), spec("after"), mq::Config{});
    CHECK(within(1000ms, [&] { return c.cache.queue(ts.tenant(), "after") != nullptr; }));
}

TEST_CASE("start refuses a PostgreSQL that cannot be reached", "[config_cache]") {
    Cache c;
    mq::ConfigCache down(
        c.db, "postgresql://postgres@127.0.0.1:" + std::to_string(mqtest::dead_port()) + "/mq");
    CHECK_THROWS_AS(down.start(), mq::BackendUnavailable);
    CHECK_FALSE(down.listening());
}
