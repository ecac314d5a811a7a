// Roles, access to queues and publish quotas: pure logic, no servers.
#include <catch2/catch.hpp>
#include <thread>

#include "mq/auth/access.hpp"
#include "mq/auth/quota.hpp"
#include "mq/auth/token.hpp"
#include "mq/queue/catalog.hpp"

namespace {

using mq::Action;
using mq::Role;

mq::Principal as(Role role, const std::string& tenant = "acme", const std::string& name = "svc") {
    return mq::Principal{"00000000-0000-0000-0000-000000000001", tenant, role, name};
}

mq::Queue queue(const std::string& tenant, const std::string& name = "orders") {
    mq::Queue q;
    q.tenant = tenant;
    q.name = name;
    return q;
}

/// The code and message of what `f` throws (it must throw an mq::Error).
template <class F>
std::pair<mq::ErrorCode, std::string> thrown(F&& f) {
    try {
        f();
    } catch (const mq::Error& e) {
        return {e.code(), e.what()};
    }
    FAIL("expected an mq::Error");
    return {};
}

}  // namespace

TEST_CASE("roles_are_spelled_as_in_the_database_and_parse_back", "[auth]") {
    for (Role r : {Role::kAdmin, Role::kTenantAdmin, Role::kProducer, Role::kConsumer})
        CHECK(mq::parse_role(mq::role_name(r)) == r);
    CHECK(mq::role_name(Role::kTenantAdmin) == "tenant-admin");
    CHECK_FALSE(mq::parse_role("root"));
    CHECK_FALSE(mq::parse_role("Admin"));
    CHECK_FALSE(mq::parse_role(""));
}

TEST_CASE("role_matrix_allows_exactly_the_documented_actions", "[auth]") {
    struct Row {
        Action action;
        bool admin, tenant_admin, producer, consumer;
    };
    // The table of docs/auth.md, written out independently of the one in access.cpp.
    const Row expected[] = {
        {Action::kReadQueues, true, true, true, true},
        {Action::kManageQueues, true, true, false, false},
        {Action::kPublish, true, true, true, false},
        {Action::kReadSubscriptions, true, true, false, true},
        {Action::kManageSubscriptions, true, true, false, false},
        {Action::kConsume, true, true, false, true},
        {Action::kMonitor, true, true, true, true},
        {Action::kMonitorAll, true, false, false, false},
        {Action::kManageDeadLetters, true, true, false, false},
        {Action::kReadAudit, true, true, false, false},
        {Action::kReadAuditAll, true, false, false, false},
    };
    for (const auto& row : expected) {
        INFO("action " << mq::action_name(row.action));
        const std::pair<Role, bool> cells[] = {{Role::kAdmin, row.admin},
                                               {Role::kTenantAdmin, row.tenant_admin},
                                               {Role::kProducer, row.producer},
                                               {Role::kConsumer, row.consumer}};
        for (auto [role, allowed] : cells) {
            INFO("role " << mq::role_name(role));
            CHECK(mq::role_allows(role, row.action) == allowed);
            if (allowed) {
                CHECK_NOTHROW(mq::authorize(as(role), row.action));
            } else {
                auto [code, message] = thrown([&] { mq::authorize(as(role), row.action); });
                CHECK(code == mq::ErrorCode::kForbidden);
                CHECK_THAT(message, Catch::Contains(std::string(mq::role_name(role))));
            }
        }
    }
    // Every action has its own name (a missing matrix row would repeat the last one).
    CHECK(mq::action_name(Action::kReadQueues) == "read-queues");
    CHECK(mq::action_name(Action::kConsume) == "consume");
    CHECK(mq::action_name(Action::kMonitorAll) == "monitor-all");
    CHECK(mq::action_name(Action::kManageDeadLetters) == "manage-dead-letters");
    CHECK(mq::action_name(Action::kReadAudit) == "read-audit");
    CHECK(mq::action_name(Action::kReadAuditAll) == "read-audit-all");
}

TEST_CASE("another_tenants_queue_is_answered_exactly_like_a_missing_one", "[auth]") {
    auto missing = mq::queue_not_found("acme", "orders");
    for (Role role : {Role::kAdmin, Role::kTenantAdmin, Role::kProducer}) {
        auto [code, message] = thrown([&] { mq::authorize_publish(as(role), queue("globex")); });
        CHECK(code == mq::ErrorCode::kQueueNotFound);
        CHECK(message == std::string(missing.what()));
        CHECK_THAT(message, !Catch::Contains("globex"));
    }
    for (Role role : {Role::kAdmin, Role::kTenantAdmin, Role::kConsumer}) {
        auto [code, message] = thrown([&] { mq::authorize_consume(as(role), queue("globex")); });
        CHECK(code == mq::ErrorCode::kQueueNotFound);
        CHECK(message == std::string(missing.what()));
    }
}

TEST_CASE("a_role_without_the_action_is_forbidden_before_the_queue_is_considered", "[auth]") {
    CHECK(thrown([] { mq::authorize_publish(as(Role::kConsumer), queue("acme")); }).first ==
          mq::ErrorCode::kForbidden);
    CHECK(thrown([] { mq::authorize_consume(as(Role::kProducer), queue("acme")); }).first ==
          mq::ErrorCode::kForbidden);
    CHECK_NOTHROW(mq::authorize_publish(as(Role::kProducer), queue("acme")));
    CHECK_NOTHROW(mq::authorize_consume(as(Role::kConsumer), queue("acme")));
}

TEST_CASE("allowed_lists_restrict_principals_of_the_tenant_but_not_its_admin", "[auth]") {
    auto q = queue("acme");
    q.allowed_producers = {"billing", "checkout"};
    q.allowed_consumers = {"ledger"};

    CHECK_NOTHROW(mq::authorize_publish(as(Role::kProducer, "acme", "checkout"), q));
    auto [code, message] =
        thrown([&] { mq::authorize_publish(as(Role::kProducer, "acme", "intruder"), q); });
    CHECK(code == mq::ErrorCode::kForbidden);
    CHECK_THAT(message, Catch::Contains("intruder") && Catch::Contains("allowed_producers"));
    CHECK(thrown([&] { mq::authorize_publish(as(Role::kTenantAdmin, "acme", "ops"), q); }).first ==
          mq::ErrorCode::kForbidden);
    CHECK_NOTHROW(mq::authorize_publish(as(Role::kAdmin, "acme", "ops"), q));

    CHECK_NOTHROW(mq::authorize_consume(as(Role::kConsumer, "acme", "ledger"), q));
    CHECK(thrown([&] { mq::authorize_consume(as(Role::kConsumer, "acme", "billing"), q); }).first ==
          mq::ErrorCode::kForbidden);
    CHECK_NOTHROW(mq::authorize_consume(as(Role::kAdmin, "acme", "ops"), q));
}

TEST_CASE("a_public_queue_may_be_consumed_but_never_published_to_by_other_tenants", "[auth]") {
    auto q = queue("globex");
    q.is_public = true;
    for (Role role : {Role::kAdmin, Role::kTenantAdmin, Role::kConsumer})
        CHECK_NOTHROW(mq::authorize_consume(as(role, "acme", "anyone"), q));
    CHECK(thrown([&] { mq::authorize_consume(as(Role::kProducer, "acme"), q); }).first ==
          mq::ErrorCode::kForbidden);
    CHECK(thrown([&] { mq::authorize_publish(as(Role::kProducer, "acme"), q); }).first ==
          mq::ErrorCode::kQueueNotFound);
    q.allowed_consumers = {"ledger"};
    CHECK(thrown([&] {
              mq::authorize_consume(as(Role::kConsumer, "globex", "anyone"), q);
          }).first == mq::ErrorCode::kForbidden);
}

TEST_CASE("a_public_queues_allowed_consumers_name_other_tenants_principals_with_their_tenant",
          "[auth]") {
    auto q = queue("globex");
    q.is_public = true;
    q.allowed_consumers = {"ledger", "acme/reporting"};
    CHECK(mq::foreign_principal_entry(as(Role::kConsumer, "acme", "reporting")) ==
          "acme/reporting");
    CHECK_NOTHROW(mq::authorize_consume(as(Role::kConsumer, "acme", "reporting"), q));
    CHECK_NOTHROW(mq::authorize_consume(as(Role::kConsumer, "globex", "ledger"), q));
    // A plain entry is the owner's principal, not one of the same name elsewhere; another
    // tenant's admin does not bypass the list; the owner's admin does.
    for (const auto& p : {as(Role::kConsumer, "acme", "ledger"), as(Role::kAdmin, "acme", "root"),
                          as(Role::kConsumer, "initech", "reporting")}) {
        auto [code, message] = thrown([&] { mq::authorize_consume(p, q); });
        CHECK(code == mq::ErrorCode::kForbidden);
        CHECK(message.find("'" + p.tenant + "/" + p.name + "'") != std::string::npos);
    }
    CHECK_NOTHROW(mq::authorize_consume(as(Role::kAdmin, "globex", "root"), q));
    // Not public: the list does not matter, the queue is not there.
    q.is_public = false;
    CHECK(thrown([&] {
              mq::authorize_consume(as(Role::kConsumer, "acme", "reporting"), q);
          }).first == mq::ErrorCode::kQueueNotFound);
}

TEST_CASE("principal_names_are_printable_and_bounded", "[auth]") {
    CHECK_NOTHROW(mq::validate_principal("billing-service@prod"));
    CHECK_NOTHROW(mq::validate_principal(std::string(128, 'a')));
    CHECK_THROWS_AS(mq::validate_principal(""), mq::ValidationError);
    CHECK_THROWS_AS(mq::validate_principal(std::string(129, 'a')), mq::ValidationError);
    CHECK_THROWS_AS(mq::validate_principal("a\nb"), mq::ValidationError);
    CHECK_THROWS_AS(mq::validate_principal("a,b"), mq::ValidationError);
    CHECK_THROWS_AS(mq::validate_principal(" padded"), mq::ValidationError);
}

TEST_CASE("hash_token_is_raw_sha256", "[auth]") {
    std::string h = mq::hash_token("abc");
    REQUIRE(h.size() == 32);
    // sha-256("abc") = ba7816bf...15ad
    CHECK(static_cast<unsigned char>(h[0]) == 0xba);
    CHECK(static_cast<unsigned char>(h[1]) == 0x78);
    CHECK(static_cast<unsigned char>(h[31]) == 0xad);
    CHECK(mq::hash_token("abd") != h);
}

namespace {

/// A clock the test moves by hand.
struct FakeClock {
    std::chrono::steady_clock::time_point t{std::chrono::hours(1)};
    mq::PublishQuota::Clock fn() {
        return [this] { return t; };
    }
    void advance(std::chrono::milliseconds d) { t += d; }
};

}  // namespace

TEST_CASE("quota_allows_a_burst_of_one_second_then_refills_at_the_rate", "[auth][quota]") {
    FakeClock clock;
    mq::PublishQuota quota(std::nullopt, clock.fn());
    quota.set_rate("acme", 10);
    CHECK_FALSE(quota.take("acme", 6));
    CHECK_FALSE(quota.take("acme", 4));
    auto wait = quota.take("acme", 1);
    REQUIRE(wait);
    CHECK(*wait == 1);
    clock.advance(std::chrono::milliseconds(150));  // 1.5 messages back
    CHECK_FALSE(quota.take("acme", 1));
    CHECK(quota.take("acme", 1));
    clock.advance(std::chrono::seconds(60));  // never more than the burst
    CHECK_FALSE(quota.take("acme", 10));
    CHECK(quota.take("acme", 1));
}

TEST_CASE("quota_retry_after_is_the_whole_seconds_until_the_batch_fits", "[auth][quota]") {
    FakeClock clock;
    mq::PublishQuota quota(2.0, clock.fn());  // default for every tenant: burst 2
    CHECK_FALSE(quota.take("acme", 2));
    CHECK(quota.take("acme", 1) == 1);  // 0.5 s at 2/s, rounded up to 1
    CHECK(quota.take("acme", 2) == 1);
    quota.set_rate("slow", 0.25);  // burst is at least one message
    CHECK_FALSE(quota.take("slow", 1));
    CHECK(quota.take("slow", 1) == 4);  // 1 message at 0.25/s
    CHECK(quota.max_batch("slow") == 1u);
    CHECK(quota.take("slow", 2) == 4);  // larger than the burst: refused, never fits
    // Tenants have buckets of their own.
    CHECK_FALSE(quota.take("globex", 2));
}

TEST_CASE("quota_is_unlimited_without_a_rate_and_set_rate_nullopt_restores_the_default",
          "[auth][quota]") {
    FakeClock clock;
    mq::PublishQuota unlimited(std::nullopt, clock.fn());
    for (int i = 0; i < 100; ++i) REQUIRE_FALSE(unlimited.take("acme", 1000));
    CHECK_FALSE(unlimited.max_batch("acme"));

    mq::PublishQuota quota(1.0, clock.fn());
    quota.set_rate("acme", 100);
    CHECK_FALSE(quota.take("acme", 100));
    quota.set_rate("acme", std::nullopt);  // back to 1/s, bucket capped to the new burst
    clock.advance(std::chrono::milliseconds(500));
    CHECK(quota.rate("acme") == 1.0);
    CHECK(quota.take("acme", 1));
    CHECK_THROWS_AS(quota.set_rate("acme", 0), mq::ValidationError);
    CHECK_THROWS_AS(quota.set_rate("acme", -3), mq::ValidationError);
}

TEST_CASE("quota_refills_with_the_real_clock", "[auth][quota]") {
    mq::PublishQuota quota(20.0);  // 50 ms per message
    CHECK_FALSE(quota.take("acme", 20));
    CHECK(quota.take("acme", 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    CHECK_FALSE(quota.take("acme", 1));
}
