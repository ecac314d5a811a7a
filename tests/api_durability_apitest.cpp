// The queue setting `durability` over HTTP: created, shown, changed and refused like the
// other queue fields; a publish to a "replica" queue on a Redis without replicas answers
// 503 MQ_BACKEND_UNAVAILABLE with Retry-After (nothing acknowledged that is not
// replicated), and the same queue set back to "leader" takes publishes again.
#include <catch2/catch.hpp>

#include "api_process.hpp"
#include "harness.hpp"
#include "private_services.hpp"

using namespace mqtest;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {
const std::string kQueues = "/api/v1/mq/queues";
}

TEST_CASE("api_queue_durability_is_created_shown_changed_and_checked", "[api][durability]") {
    ApiSession s;
    auto made =
        s.api.call_json("POST", kQueues, {{"name", "orders"}, {"durability", "replica"}}, s.token);
    INFO(made.body);
    REQUIRE(made.status == 201);
    CHECK(made.json()["durability"] == "replica");
    auto plain = s.api.call_json("POST", kQueues, {{"name", "plain"}}, s.token);
    REQUIRE(plain.status == 201);
    CHECK(plain.json()["durability"] == "leader");
    CHECK(s.api.call("GET", kQueues + "/orders", "", s.token).json()["durability"] == "replica");

    for (const json& bad : {json("quorum"), json(2), json(nullptr)}) {
        auto r = s.api.call_json("PUT", kQueues + "/orders", {{"durability", bad}}, s.token);
        INFO(bad.dump() << " " << r.body);
        CHECK(r.status == 400);
        CHECK(r.error_code() == "MQ_VALIDATION_ERROR");
        CHECK(r.json()["error"]["details"]["field"] == "durability");
    }
    auto bad_create =
        s.api.call_json("POST", kQueues, {{"name", "q2"}, {"durability", "all"}}, s.token);
    CHECK(bad_create.status == 400);
    CHECK(s.api.call("GET", kQueues + "/q2", "", s.token).status == 404);

    auto changed = s.api.call_json("PUT", kQueues + "/orders", {{"durability", "leader"}}, s.token);
    REQUIRE(changed.status == 200);
    CHECK(changed.json()["durability"] == "leader");
}

TEST_CASE("api_publish_to_a_replica_queue_without_a_replica_answers_503", "[api][durability]") {
    ApiSession s;  // the test services' Redis has no replica
    REQUIRE(
        s.api.call_json("POST", kQueues, {{"name", "orders"}, {"durability", "replica"}}, s.token)
            .status == 201);
    auto r = s.api.call_json("POST", "/api/v1/mq/publish",
                             {{"queue", "orders"}, {"payload", {{"n", 1}}}}, s.token);
    INFO(r.body);
    CHECK(r.status == 503);
    CHECK(r.error_code() == "MQ_BACKEND_UNAVAILABLE");
    CHECK_FALSE(r.headers["retry-after"].empty());
    // Batches too.
    auto batch = s.api.call_json(
        "POST", "/api/v1/mq/publish/batch",
        {{"queue", "orders"}, {"messages", json::array({{{"payload", 1}}, {{"payload", 2}}})}},
        s.token);
    INFO(batch.body);
    CHECK(batch.status == 503);

    REQUIRE(
        s.api.call_json("PUT", kQueues + "/orders", {{"durability", "leader"}}, s.token).status ==
        200);
    CHECK(eventually(
        [&] {
            return s.api
                       .call_json("POST", "/api/v1/mq/publish",
                                  {{"queue", "orders"}, {"payload", {{"n", 2}}}}, s.token)
                       .status == 201;
        },
        10s));
}
