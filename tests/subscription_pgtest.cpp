// Subscriptions in a real PostgreSQL.
#include <catch2/catch.hpp>

#include "harness.hpp"
#include "mq/consume/subscription_catalog.hpp"

namespace {
mq::Subscription sub(const std::string& tenant, const std::string& queue, const std::string& name) {
    mq::Subscription s;
    s.tenant = tenant;
    s.queue = queue;
    s.name = name;
    return s;
}
}  // namespace

TEST_CASE("a subscription is stored with every setting and read back", "[subscription]") {
    mqtest::TenantScope ts;
    mq::QueueSpec spec;
    spec.name = "orders";
    ts.catalog().create_queue(ts.tenant(), spec, mq::Config{});
    mq::SubscriptionCatalog subs(ts.db());
    auto s = sub(ts.tenant(), "orders", "billing");
    s.type = "webhook";
    s.handler = {{"url", "https://billing.internal/hook"}};
    s.retry.max_attempts = 9;
    s.retry.jitter = 0.1;
    s.filter = {{"headers", {{"region", "eu"}}}};
    s.rate_limit_per_s = 50;
    s.managed_by = "git:subs.yaml";
    auto created = subs.create(s);
    CHECK(created.id.size() == 36);
    CHECK(created.handler == s.handler);
    CHECK(created.retry.max_attempts == 9);
    CHECK(created.retry.jitter == Approx(0.1));
    CHECK(created.filter == s.filter);
    CHECK(created.rate_limit_per_s == 50);
    CHECK(created.managed_by == "git:subs.yaml");
    CHECK(created.status == "active");

    created.retry.max_attempts = 2;
    created.rate_limit_per_s.reset();
    auto updated = subs.update(created);
    CHECK(updated.retry.max_attempts == 2);
    CHECK_FALSE(updated.rate_limit_per_s);
    CHECK(subs.set_status(ts.tenant(), "orders", "billing", "paused").status == "paused");
    CHECK(subs.list(ts.tenant(), "orders").size() == 1);
    CHECK(subs.list(ts.tenant()).size() == 1);
    bool in_all = false;
    for (const auto& a : subs.list_all({ts.tenant()})) in_all = in_all || a.id == created.id;
    CHECK(in_all);
    subs.remove(ts.tenant(), "orders", "billing");
    CHECK_FALSE(subs.find(ts.tenant(), "orders", "billing"));
}

TEST_CASE("subscription errors: unknown queue, duplicate name, missing subscription, other tenant",
          "[subscription]") {
    mqtest::TenantScope a, b;
    mq::QueueSpec spec;
    spec.name = "orders";
    a.catalog().create_queue(a.tenant(), spec, mq::Config{});
    mq::SubscriptionCatalog subs(a.db());
    try {
        subs.create(sub(a.tenant(), "nope", "billing"));
        FAIL("created on a missing queue");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kQueueNotFound);
    }
    subs.create(sub(a.tenant(), "orders", "billing"));
    try {
        subs.create(sub(a.tenant(), "orders", "billing"));
        FAIL("duplicate accepted");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kConflict);
    }
    try {
        subs.get(b.tenant(), "orders", "billing");
        FAIL("tenant b saw tenant a's subscription");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kSubscriptionNotFound);
    }
    CHECK_THROWS_AS(subs.create(sub(b.tenant(), "orders", "billing")), mq::Error);
    CHECK_THROWS_AS(subs.set_status(a.tenant(), "orders", "billing", "sleeping"),
                    mq::ValidationError);
    CHECK_THROWS_AS(subs.remove(a.tenant(), "orders", "ghost"), mq::Error);
}

TEST_CASE("subscriptions on another tenant's queue: only public ones, named per subscriber tenant",
          "[subscription]") {
    mqtest::TenantScope a, b;
    mq::QueueSpec spec;
    spec.name = "open";
    spec.is_public = true;
    auto open = a.catalog().create_queue(a.tenant(), spec, mq::Config{});
    spec.name = "closed";
    spec.is_public = false;
    a.catalog().create_queue(a.tenant(), spec, mq::Config{});
    spec.name = "open";  // B's own queue of the same name
    b.catalog().create_queue(b.tenant(), spec, mq::Config{});
    mq::SubscriptionCatalog subs(a.db());

    auto cross = sub(b.tenant(), "closed", "audit");
    cross.queue_tenant = a.tenant();
    try {
        subs.create(cross);
        FAIL("subscribed to another tenant's private queue");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kQueueNotFound);
        CHECK(std::string(e.what()).find(a.tenant()) == std::string::npos);
    }
    cross.queue = "open";
    auto created = subs.create(cross);
    CHECK(created.tenant == b.tenant());
    CHECK(created.queue_tenant == a.tenant());
    auto own_a = subs.create(sub(a.tenant(), "open", "audit"));  // the same name, A's own
    auto own_b = subs.create(sub(b.tenant(), "open", "audit"));  // B's own queue "open"
    CHECK(own_a.queue_tenant == a.tenant());
    CHECK_THROWS_AS(subs.create(cross), mq::Error);  // twice in one tenant: conflict

    // The consumer_group column records the Redis group.
    auto group_of = [&](const std::string& id) {
        std::string out;
        a.db().transact([&](pqxx::work& tx) {
            out =
                tx.exec_params1(
                      "SELECT consumer_group FROM message_subscriptions WHERE id = $1::uuid", id)[0]
                    .as<std::string>();
        });
        return out;
    };
    CHECK(group_of(created.id) == b.tenant() + ":audit");
    CHECK(group_of(own_a.id) == "audit");

    // Addressed by the queue's tenant too: B's two "open/audit" are different rows.
    CHECK(subs.get(b.tenant(), "open", "audit").id == own_b.id);
    CHECK(subs.get(b.tenant(), "open", "audit", a.tenant()).id == created.id);
    CHECK(subs.list(b.tenant(), "open").size() == 1);  // a queue name means B's own queue
    CHECK(subs.list(b.tenant()).size() == 2);
    CHECK(subs.list(a.tenant()).size() == 1);  // the owner never lists B's subscription
    CHECK(subs.list_on_queue(open).size() == 2);
    CHECK(a.catalog().subscription_count(open) == 1);
    CHECK(subs.set_status(b.tenant(), "open", "audit", "paused", a.tenant()).status == "paused");
    CHECK(subs.get(b.tenant(), "open", "audit").status == "active");
    created.retry.max_attempts = 3;
    CHECK(subs.update(created).retry.max_attempts == 3);

    // Deleting the queue takes the other tenant's subscription with it.
    a.catalog().mark_deleting(open);
    a.catalog().delete_queue_row(open);
    CHECK_FALSE(subs.find(b.tenant(), "open", "audit", a.tenant()));
    CHECK(subs.find(b.tenant(), "open", "audit"));
}
