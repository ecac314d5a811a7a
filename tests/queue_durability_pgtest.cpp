// The queue setting `durability` in PostgreSQL (migration 012): stored and read back,
// leader by default, changed by update_queue with an audit row naming the change, and
// refused by the table itself for values mq does not know.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "mq/audit/audit_log.hpp"
#include "mq/config/config.hpp"
#include "mq/error.hpp"

using nlohmann::json;

TEST_CASE("queue_durability_is_stored_updated_and_audited", "[queue][durability][pg]") {
    mqtest::TenantScope t;
    mq::QueueSpec plain;
    plain.name = "plain";
    CHECK(t.catalog().create_queue(t.tenant(), plain, mq::Config{}).durability == "leader");

    mq::QueueSpec spec;
    spec.name = "orders";
    spec.durability = "replica";
    auto q = t.catalog().create_queue(t.tenant(), spec, mq::Config{});
    CHECK(q.durability == "replica");
    CHECK(t.catalog().get_queue(t.tenant(), "orders").durability == "replica");

    mq::QueueChanges c;
    c.durability = "leader";
    CHECK(t.catalog().update_queue(t.tenant(), "orders", c).durability == "leader");
    CHECK(t.catalog().get_queue(t.tenant(), "orders").durability == "leader");

    mq::audit::Query query;
    query.tenant = t.tenant();
    query.action = "queue.update";
    auto rows = mq::audit::list(t.db(), query).records;
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].target == "orders");
    CHECK(rows[0].change["before"] == json{{"durability", "replica"}});
    CHECK(rows[0].change["after"] == json{{"durability", "leader"}});

    query.action = "queue.create";
    auto created = mq::audit::list(t.db(), query).records;
    REQUIRE(created.size() == 2);
    for (const auto& r : created) CHECK(r.change["after"].contains("durability"));
}

TEST_CASE("queue_durability_refuses_an_unknown_value_before_and_in_the_table",
          "[queue][durability][pg]") {
    mqtest::TenantScope t;
    mq::QueueSpec spec;
    spec.name = "orders";
    spec.durability = "quorum";
    CHECK_THROWS_AS(t.catalog().create_queue(t.tenant(), spec, mq::Config{}), mq::ValidationError);
    CHECK_FALSE(t.catalog().find_queue(t.tenant(), "orders"));
    spec.durability.reset();
    t.catalog().create_queue(t.tenant(), spec, mq::Config{});
    mq::QueueChanges c;
    c.durability = "quorum";
    CHECK_THROWS_AS(t.catalog().update_queue(t.tenant(), "orders", c), mq::ValidationError);
    CHECK(t.catalog().get_queue(t.tenant(), "orders").durability == "leader");
    // The column's CHECK holds for writers other than mq too.
    CHECK_THROWS(t.exec("UPDATE message_topics SET durability = 'quorum' WHERE tenant_id = '" +
                        t.tenant() + "'"));
    CHECK(t.catalog().get_queue(t.tenant(), "orders").durability == "leader");
}
