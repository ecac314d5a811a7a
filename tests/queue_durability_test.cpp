// The queue setting `durability` (leader|replica, docs/cluster.md): read from the API
// bodies, checked, shown in the queue JSON.
#include <catch2/catch.hpp>

#include "mq/error.hpp"
#include "mq/queue/queue.hpp"

using nlohmann::json;

TEST_CASE("queue_durability_is_read_from_the_api_bodies_and_shown", "[queue][durability]") {
    auto spec = mq::queue_spec_from_json({{"name", "orders"}, {"durability", "replica"}});
    REQUIRE(spec.durability);
    CHECK(*spec.durability == "replica");
    CHECK_FALSE(mq::queue_spec_from_json({{"name", "orders"}}).durability);  // default leader

    auto changes = mq::queue_changes_from_json({{"durability", "leader"}});
    CHECK_FALSE(changes.empty());
    CHECK(changes.durability == std::optional<std::string>("leader"));

    mq::Queue q;
    CHECK(mq::to_json(q)["durability"] == "leader");
    q.durability = "replica";
    CHECK(mq::to_json(q)["durability"] == "replica");
}

TEST_CASE("queue_durability_refuses_unknown_values_and_types", "[queue][durability]") {
    for (const json& bad : {json("quorum"), json(""), json("Leader"), json(1), json(nullptr),
                            json::array({"replica"})}) {
        INFO(bad.dump());
        try {
            mq::queue_spec_from_json({{"name", "orders"}, {"durability", bad}});
            FAIL("accepted");
        } catch (const mq::ValidationError& e) {
            CHECK(e.details()["field"] == "durability");
        }
        CHECK_THROWS_AS(mq::queue_changes_from_json({{"durability", bad}}), mq::ValidationError);
    }
    mq::QueueChanges c;
    c.durability = "all";
    CHECK_THROWS_WITH(mq::validate(c), Catch::Matchers::Contains("leader or replica"));
    CHECK(mq::is_known_durability("leader"));
    CHECK(mq::is_known_durability("replica"));
    CHECK_FALSE(mq::is_known_durability("none"));
}
