// mq-api runs the maintenance service: a delayed message reaches a pull consumer with no
// worker and no scheduler process; MAINTENANCE=off leaves it waiting; a bad value stops
// startup.
#include <catch2/catch.hpp>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"

using namespace mqtest;
using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kSubs = "/api/v1/mq/subscriptions";

struct Session : ApiSession {
    std::string consumer = create_token(tenant.tenant(), "consumer", "reader");
    explicit Session(ApiOptions options = {}) : ApiSession(std::move(options)) {
        REQUIRE(api.call_json("POST", "/api/v1/mq/queues",
                              {{"name", "reminders"}, {"partitions", 2}}, token)
                    .status == 201);
        auto r = api.call_json("POST", kSubs, {{"queue", "reminders"}, {"name", "app"}}, token);
        INFO(r.body);
        REQUIRE(r.status == 201);
        sub = r.json()["id"];
    }
    std::string publish_delayed(int delay_ms) {
        auto r = api.call_json(
            "POST", "/api/v1/mq/publish/delayed",
            {{"queue", "reminders"}, {"payload", {{"remind", "me"}}}, {"delay_ms", delay_ms}},
            token);
        INFO(r.body);
        REQUIRE(r.status == 201);
        REQUIRE(r.json()["delayed"] == true);
        return r.json()["id"];
    }
    json pull(int wait_ms) {
        auto r = api.call_json("POST", kSubs + "/" + sub + "/pull",
                               {{"max_messages", 10}, {"wait_ms", wait_ms}}, consumer);
        INFO(r.body);
        REQUIRE(r.status == 200);
        return r.json()["messages"];
    }
    std::string sub;
};

}  // namespace

TEST_CASE("api_alone_delivers_a_delayed_message_to_a_pull_consumer", "[api][maintenance]") {
    Session s;
    const auto t0 = Clock::now();
    const std::string id = s.publish_delayed(1000);
    CHECK(s.pull(0).empty());  // not due yet

    json got = json::array();
    while (got.empty() && Clock::now() - t0 < 10s) got = s.pull(2000);
    REQUIRE(got.size() == 1);
    CHECK(got[0]["id"] == id);
    const double took = std::chrono::duration<double>(Clock::now() - t0).count();
    INFO("delivered after " << took << " s");
    CHECK(took >= 0.9);
    CHECK(took < 3.0);  // the mover runs every 200 ms
}

TEST_CASE("api_with_maintenance_off_leaves_delayed_messages_in_the_delayed_set",
          "[api][maintenance]") {
    ApiOptions options;
    options.env = {{"MAINTENANCE", "off"}};
    Session s(options);
    s.publish_delayed(1);
    std::this_thread::sleep_for(1500ms);
    CHECK(s.pull(0).empty());
    CHECK(s.api.log().find("maintenance: started") == std::string::npos);
}

TEST_CASE("api_refuses_to_start_with_a_bad_maintenance_setting", "[api][maintenance][hostile]") {
    ApiOptions options;
    options.env = {{"MAINTENANCE", "sometimes"}};
    options.wait_ready = false;
    ApiProcess api(options);
    auto until = Clock::now() + 10s;
    while (api.running() && Clock::now() < until) std::this_thread::sleep_for(20ms);
    CHECK(api.terminate(1s) == 2);
    CHECK_THAT(api.log(),
               Catch::Contains("MAINTENANCE=sometimes") && Catch::Contains("true or false"));
}

TEST_CASE("api_metrics_count_expired_entries_per_subscription_and_maintenance_work",
          "[api][maintenance][retention]") {
    ApiSession s;
    REQUIRE(s.api
                .call_json("POST", "/api/v1/mq/queues", {{"name", "short"}, {"retention_ms", 500}},
                           s.token)
                .status == 201);
    REQUIRE(
        s.api.call_json("POST", kSubs, {{"queue", "short"}, {"name", "idle"}}, s.token).status ==
        201);
    for (int i = 0; i < 3; ++i)
        REQUIRE(s.api
                    .call_json("POST", "/api/v1/mq/publish",
                               {{"queue", "short"}, {"payload", "p" + std::to_string(i)}}, s.token)
                    .status == 201);
    REQUIRE(s.api
                .call_json("POST", "/api/v1/mq/publish/delayed",
                           {{"queue", "short"}, {"payload", "later"}, {"delay_ms", 1}}, s.token)
                .status == 201);
    // Nobody consumes: past the 500 ms retention the trimmer removes the entries and counts
    // them as expired for the subscription; the mover has moved the delayed one.
    const std::string expired = "mq_subscription_expired_total{tenant=\"" + s.tenant.tenant() +
                                "\",queue=\"short\",subscription=\"idle\"} 4";
    std::string body;
    const auto until = Clock::now() + 15s;
    while (Clock::now() < until) {
        body = s.api.scrape().body;
        if (body.find(expired) != std::string::npos) break;
        std::this_thread::sleep_for(200ms);
    }
    INFO(body);
    CHECK_THAT(body, Catch::Contains(expired));
    CHECK_THAT(body, Catch::Contains("mq_maintenance_leases_held "));
    CHECK_THAT(body,
               Catch::Contains("mq_maintenance_task_last_run_timestamp_seconds{task=\"trim\"}"));
    CHECK(body.find("mq_maintenance_moved_total 0\n") == std::string::npos);
    // The stream itself is empty again: nothing is left to grow.
    auto q = s.api.call("GET", "/api/v1/mq/queues/short", "", s.token);
    INFO(q.body);
    CHECK(q.json()["stats"]["messages"] == 0);
}
