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
    CHECK_THROWS_AS(subs.set_status(a.tenant(), "orders", "billing", "sleeping"), mq::ValidationError);
    CHECK_THROWS_AS(subs.remove(a.tenant(), "orders", "ghost"), mq::Error);
}
