// The audit log in PostgreSQL: one row per admin action written in the transaction of the
// change (nothing for a change that fails), secrets masked, the table append-only for
// plain SQL too, rows outliving their tenant, and the listing's filters, tenant scope and
// pages (docs/audit.md).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "mq/audit/audit_log.hpp"
#include "mq/auth/quota.hpp"
#include "mq/auth/token.hpp"
#include "mq/config/config.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/core/time.hpp"
#include "mq/error.hpp"
#include "mq/schedule/schedule_catalog.hpp"

using nlohmann::json;

namespace {

const mq::audit::Actor kAlice{"alice", "", "mqctl", ""};

mq::Config config() { return mq::Config{}; }

std::vector<mq::audit::Record> rows_of(mqtest::TenantScope& t, const std::string& action = {}) {
    mq::audit::Query q;
    q.tenant = t.tenant();
    q.action = action;
    q.limit = mq::audit::kMaxPageSize;
    return mq::audit::list(t.db(), q).records;
}

mq::ErrorCode code_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const mq::Error& e) {
        return e.code();
    }
    FAIL("no mq::Error thrown");
    return mq::ErrorCode::kInternal;
}

std::string sql_error(mqtest::TenantScope& t, const std::string& sql) {
    try {
        t.exec(sql);
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

mq::Subscription pull_sub(const std::string& tenant, const std::string& queue,
                          const std::string& name) {
    mq::Subscription s;
    s.tenant = tenant;
    s.queue = queue;
    s.name = name;
    return s;
}

}  // namespace

TEST_CASE("queue_actions_leave_one_row_each_with_actor_target_and_change", "[audit]") {
    mqtest::TenantScope t;
    mq::audit::ActingAs acting(kAlice);
    mq::QueueSpec spec;
    spec.name = "orders";
    spec.description = "first";
    t.catalog().create_queue(t.tenant(), spec, config());
    mq::QueueChanges changes;
    changes.description = "second";
    changes.partition_count = 2;
    t.catalog().update_queue(t.tenant(), "orders", changes);

    auto created = rows_of(t, "queue.create");
    REQUIRE(created.size() == 1);
    CHECK(created[0].principal == "alice");
    CHECK(created[0].source == "mqctl");
    CHECK(created[0].tenant == t.tenant());
    CHECK(created[0].target_kind == "queue");
    CHECK(created[0].target == "orders");
    CHECK(created[0].change["before"].is_null());
    CHECK(created[0].change["after"]["description"] == "first");

    auto updated = rows_of(t, "queue.update");
    REQUIRE(updated.size() == 1);
    CHECK(updated[0].change["before"] == json{{"description", "first"}, {"partitions", 1}});
    CHECK(updated[0].change["after"] == json{{"description", "second"}, {"partitions", 2}});

    auto q = t.catalog().get_queue(t.tenant(), "orders");
    t.catalog().delete_queue_row(q, {{"subscriptions_deleted", 0}});
    auto deleted = rows_of(t, "queue.delete");
    REQUIRE(deleted.size() == 1);
    CHECK(deleted[0].change["before"]["name"] == "orders");
    CHECK(deleted[0].change["after"]["subscriptions_deleted"] == 0);
}

TEST_CASE("a_change_that_fails_leaves_no_row_and_no_change", "[audit]") {
    mqtest::TenantScope t;
    mq::QueueSpec spec;
    spec.name = "orders";
    spec.partition_count = 2;
    t.catalog().create_queue(t.tenant(), spec, config());
    // conflict
    CHECK(code_of([&] { t.catalog().create_queue(t.tenant(), spec, config()); }) ==
          mq::ErrorCode::kConflict);
    CHECK(rows_of(t, "queue.create").size() == 1);
    // validation inside the transaction (fewer partitions)
    mq::QueueChanges fewer;
    fewer.partition_count = 1;
    fewer.description = "changed";
    CHECK(code_of([&] { t.catalog().update_queue(t.tenant(), "orders", fewer); }) ==
          mq::ErrorCode::kValidation);
    // a step after the row that throws (Redis refusing consumer groups) rolls both back
    mq::QueueChanges more;
    more.partition_count = 4;
    CHECK_THROWS_AS(t.catalog().update_queue(t.tenant(), "orders", more,
                                             [](const mq::Queue&, const mq::Queue&) {
                                                 throw mq::BackendUnavailable("redis down");
                                             }),
                    mq::Error);
    CHECK(rows_of(t, "queue.update").empty());
    auto q = t.catalog().get_queue(t.tenant(), "orders");
    CHECK(q.partition_count == 2);
    CHECK(q.description.empty());
    // a subscription on a missing queue, a duplicate subscription
    mq::SubscriptionCatalog subs(t.db());
    CHECK(code_of([&] { subs.create(pull_sub(t.tenant(), "missing", "billing")); }) ==
          mq::ErrorCode::kQueueNotFound);
    subs.create(pull_sub(t.tenant(), "orders", "billing"));
    CHECK(code_of([&] { subs.create(pull_sub(t.tenant(), "orders", "billing")); }) ==
          mq::ErrorCode::kConflict);
    CHECK(code_of([&] {
              subs.create(pull_sub(t.tenant(), "orders", "audit"),
                          [](const mq::Subscription&) { throw mq::BackendUnavailable("x"); });
          }) == mq::ErrorCode::kBackendUnavailable);
    CHECK_FALSE(subs.find(t.tenant(), "orders", "audit"));
    CHECK(rows_of(t, "subscription.create").size() == 1);
    CHECK(code_of([&] { subs.set_status(t.tenant(), "orders", "nope", "paused"); }) ==
          mq::ErrorCode::kSubscriptionNotFound);
    CHECK(rows_of(t, "subscription").size() == 1);
}

TEST_CASE("subscription_actions_record_status_and_changed_fields", "[audit]") {
    mqtest::TenantScope t;
    mq::QueueSpec spec;
    spec.name = "orders";
    t.catalog().create_queue(t.tenant(), spec, config());
    mq::SubscriptionCatalog subs(t.db());
    mq::audit::ActingAs acting({"ops", "6f1c", "api", "req-1"});
    auto s = subs.create(pull_sub(t.tenant(), "orders", "billing"));
    subs.set_status(t.tenant(), "orders", "billing", "paused");
    subs.set_status(t.tenant(), "orders", "billing", "active");
    s.retry.max_attempts = 9;
    subs.update(s);
    subs.remove(t.tenant(), "orders", "billing");

    auto rows = rows_of(t, "subscription");
    REQUIRE(rows.size() == 5);  // newest first
    CHECK(rows[4].action == "subscription.create");
    CHECK(rows[3].action == "subscription.pause");
    CHECK(rows[3].change ==
          json{{"before", {{"status", "active"}}}, {"after", {{"status", "paused"}}}});
    CHECK(rows[2].action == "subscription.resume");
    CHECK(rows[1].action == "subscription.update");
    CHECK(rows[1].change["before"]["max_attempts"] == 5);
    CHECK(rows[1].change["after"]["max_attempts"] == 9);
    CHECK(rows[0].action == "subscription.delete");
    CHECK(rows[0].change["after"].is_null());
    for (const auto& r : rows) {
        CHECK(r.target_kind == "subscription");
        CHECK(r.target == "orders/billing");
        CHECK(r.principal == "ops");
        CHECK(r.token_id == "6f1c");
        CHECK(r.request_id == "req-1");
        CHECK(r.source == "api");
    }
}

TEST_CASE("token_tenant_and_schedule_actions_are_recorded_without_secrets", "[audit]") {
    mqtest::TenantScope t;
    mq::audit::ActingAs acting(kAlice);
    mq::TokenStore tokens(t.db());
    auto created = tokens.create(t.tenant(), mq::Role::kProducer, "shop", "", std::nullopt);
    tokens.revoke(t.tenant(), created.info.id);
    auto rows = rows_of(t, "token");
    REQUIRE(rows.size() == 2);
    CHECK(rows[1].action == "token.create");
    CHECK(rows[1].target == created.info.id);
    CHECK(rows[1].change["after"]["principal"] == "shop");
    CHECK(rows[0].action == "token.revoke");
    CHECK(rows[0].change["before"]["revoked_at"].is_null());
    CHECK(rows[0].change["after"]["revoked_at"].is_string());
    for (const auto& r : rows) CHECK(r.change.dump().find(created.secret) == std::string::npos);

    mq::set_tenant_publish_rate(t.db(), t.tenant(), 50);
    auto tenant_rows = rows_of(t, "tenant.update");
    REQUIRE(tenant_rows.size() == 1);
    CHECK(tenant_rows[0].change == json{{"before", {{"publish_rate_limit", nullptr}}},
                                        {"after", {{"publish_rate_limit", 50}}}});

    mq::QueueSpec spec;
    spec.name = "jobs";
    t.catalog().create_queue(t.tenant(), spec, config());
    mq::ScheduleSpec s;
    s.name = "nightly";
    s.queue = "jobs";
    s.cron = "0 3 * * *";
    s.payload = "{}";
    s.content_type = "application/json";
    mq::ScheduleCatalog schedules(t.db());
    schedules.create(t.tenant(), s, mq::now_ms());
    CHECK(code_of([&] { schedules.create(t.tenant(), s, mq::now_ms()); }) ==
          mq::ErrorCode::kConflict);
    schedules.set_paused(t.tenant(), "nightly", true, mq::now_ms());
    schedules.set_paused(t.tenant(), "nightly", false, mq::now_ms());
    schedules.remove(t.tenant(), "nightly");
    auto sched = rows_of(t, "schedule");
    REQUIRE(sched.size() == 4);
    CHECK(sched[3].action == "schedule.create");
    CHECK(sched[2].action == "schedule.pause");
    CHECK(sched[2].change["after"]["status"] == "paused");
    CHECK(sched[1].action == "schedule.resume");
    CHECK(sched[0].action == "schedule.delete");
    CHECK(sched[0].target == "nightly");
}

TEST_CASE("secrets_in_a_change_are_masked", "[audit]") {
    json handler = {{"url", "https://hooks.example/x"},
                    {"signing_secret", "whsec_c2VjcmV0"},
                    {"headers", {{"Authorization", "Bearer abc"}, {"X-Api-Key", "k"}}},
                    {"nested", {{"password", "p"}, {"api_key", "q"}, {"keep", "v"}}}};
    auto masked = mq::audit::mask_secrets({{"handler", handler}});
    CHECK(masked["handler"]["url"] == "https://hooks.example/x");
    CHECK(masked["handler"]["signing_secret"] == "***");
    CHECK(masked["handler"]["headers"] == json{{"Authorization", "***"}, {"X-Api-Key", "***"}});
    CHECK(masked["handler"]["nested"]["password"] == "***");
    CHECK(masked["handler"]["nested"]["api_key"] == "***");
    CHECK(masked["handler"]["nested"]["keep"] == "v");

    // and in the stored row, whatever the caller passed
    mqtest::TenantScope t;
    t.db().transact([&](pqxx::work& tx) {
        mq::audit::record(t.db(), tx,
                          {t.tenant(),
                           "subscription.create",
                           "subscription",
                           "q/s",
                           nullptr,
                           {{"handler", handler}}});
    });
    auto rows = rows_of(t, "subscription.create");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].change.dump().find("whsec_") == std::string::npos);
    CHECK(rows[0].change.dump().find("Bearer abc") == std::string::npos);
}

TEST_CASE("the_table_refuses_update_delete_and_truncate_from_plain_sql", "[audit]") {
    mqtest::TenantScope t;
    mq::QueueSpec spec;
    spec.name = "orders";
    t.catalog().create_queue(t.tenant(), spec, config());
    REQUIRE(rows_of(t).size() >= 1);
    const std::string where = " WHERE tenant_id = '" + t.tenant() + "'";
    CHECK_THAT(sql_error(t, "UPDATE audit_log SET principal = 'mallory'" + where),
               Catch::Contains("append-only"));
    CHECK_THAT(sql_error(t, "DELETE FROM audit_log" + where), Catch::Contains("append-only"));
    CHECK_THAT(sql_error(t, "TRUNCATE audit_log"), Catch::Contains("append-only"));
    auto rows = rows_of(t);
    REQUIRE_FALSE(rows.empty());
    for (const auto& r : rows) CHECK(r.principal != "mallory");
}

TEST_CASE("rows_outlive_their_tenant", "[audit]") {
    std::string tenant;
    {
        mqtest::TenantScope t;
        tenant = t.tenant();
        mq::QueueSpec spec;
        spec.name = "orders";
        t.catalog().create_queue(t.tenant(), spec, config());
    }  // the scope deletes the queue and the tenant row
    mqtest::TenantScope other;
    mq::audit::Query q;
    q.tenant = tenant;
    auto rows = mq::audit::list(other.db(), q).records;
    REQUIRE_FALSE(rows.empty());
    CHECK(rows[0].action == "queue.create");
}

TEST_CASE("listing_pages_with_a_cursor_and_never_crosses_the_tenant", "[audit]") {
    mqtest::TenantScope t;
    mqtest::TenantScope other;
    for (int i = 0; i < 7; ++i) {
        mq::QueueSpec spec;
        spec.name = "q" + std::to_string(i);
        t.catalog().create_queue(t.tenant(), spec, config());
    }
    mq::QueueSpec spec;
    spec.name = "q0";
    other.catalog().create_queue(other.tenant(), spec, config());

    auto q = mq::audit::parse_query({{"action", "queue.create"}, {"limit", "3"}}, mq::now_ms());
    q.tenant = t.tenant();
    std::vector<std::string> seen;
    for (int page = 0; page < 10; ++page) {
        auto p = mq::audit::list(t.db(), q);
        CHECK(p.records.size() <= 3);
        for (const auto& r : p.records) {
            CHECK(r.tenant == t.tenant());
            seen.push_back(r.target);
        }
        if (p.next_cursor.empty()) break;
        q.cursor = std::stoll(p.next_cursor);
    }
    CHECK(seen == std::vector<std::string>{"q6", "q5", "q4", "q3", "q2", "q1", "q0"});

    // a target filter does not reach another tenant's rows
    auto mine = mq::audit::parse_query({{"target", "q0"}}, mq::now_ms());
    mine.tenant = t.tenant();
    auto p = mq::audit::list(t.db(), mine);
    REQUIRE(p.records.size() == 1);
    CHECK(p.records[0].tenant == t.tenant());
    // since: the future finds nothing
    auto later = mq::audit::parse_query({{"since", "2099-01-01T00:00:00Z"}}, mq::now_ms());
    later.tenant = t.tenant();
    CHECK(mq::audit::list(t.db(), later).records.empty());
}

TEST_CASE("malformed_filters_name_their_field", "[audit]") {
    auto field_of = [](std::map<std::string, std::string> filters) -> std::string {
        try {
            mq::audit::parse_query(filters, mq::now_ms());
        } catch (const mq::ValidationError& e) {
            return e.details().value("field", "");
        }
        return "";
    };
    CHECK(field_of({{"since", "yesterday"}}) == "since");
    CHECK(field_of({{"since", "2026-13-45T00:00:00Z"}}) == "since");
    CHECK(field_of({{"action", "queue.delete; DROP TABLE"}}) == "action");
    CHECK(field_of({{"action", "Queue.Delete"}}) == "action");
    CHECK(field_of({{"limit", "0"}}) == "limit");
    CHECK(field_of({{"limit", "-5"}}) == "limit");
    CHECK(field_of({{"limit", "ten"}}) == "limit");
    CHECK(field_of({{"cursor", "abc"}}) == "cursor");
    CHECK(field_of({{"cursor", "99999999999999999999"}}) == "cursor");
    CHECK(field_of({{"target", std::string(301, 'x')}}) == "target");
    CHECK(field_of({{"target", "a\nb"}}) == "target");
    // a huge limit is cut to the hard maximum
    CHECK(mq::audit::parse_query({{"limit", "100000"}}, mq::now_ms()).limit ==
          mq::audit::kMaxPageSize);
    auto since = mq::audit::parse_query({{"since", "1h"}}, 10'000'000);
    CHECK(*since.since_ms == 10'000'000 - 3'600'000);
}

TEST_CASE("postgres_down_refuses_the_action_and_a_redis_only_action_does_not_run", "[audit]") {
    const std::string url =
        "postgresql://127.0.0.1:" + std::to_string(mqtest::dead_port()) + "/mq?connect_timeout=2";
    mq::QueueSpec spec;
    spec.name = "orders";
    CHECK(code_of([&] {
              mq::pg::Database down(url);
              mq::Catalog(down).create_queue("t1", spec, config());
          }) == mq::ErrorCode::kBackendUnavailable);
    bool ran = false;
    mqtest::TenantScope t;
    mq::pg::Database db(mqtest::services().database_url);
    CHECK(code_of([&] {
              mq::pg::Database down(url);
              mq::audit::run_recorded(
                  down, {"t1", "queue.purge", "queue", "orders", nullptr, nullptr},
                  [&] {
                      ran = true;
                      return 1;
                  },
                  [](int n) {
                      return json{{"purged", n}};
                  });
          }) == mq::ErrorCode::kBackendUnavailable);
    CHECK_FALSE(ran);
    // With PostgreSQL up the same action runs and is recorded once, with its outcome.
    mq::audit::run_recorded(
        db, {t.tenant(), "queue.purge", "queue", "orders", nullptr, nullptr},
        [&] {
            ran = true;
            return 3;
        },
        [](int n) {
            return json{{"purged", n}};
        });
    CHECK(ran);
    auto rows = rows_of(t, "queue.purge");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].change["after"] == json{{"purged", 3}});
}
