// PUT /api/v1/mq/queues/{name} growing partitions goes through mq::update_queue: every
// subscription gets its group on the new partitions at id 0 (also one from "latest"), and
// running workers are told on the control channel.
#include <catch2/catch.hpp>

#include "api_process.hpp"
#include "harness.hpp"
#include "mq/consume/control.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

// last-delivered-id of `group` on `stream` (XINFO GROUPS), "" when it has no such group.
std::string last_delivered(mq::redis::Connection& redis, const std::string& stream,
                           const std::string& group) {
    auto r = redis.command_raw({"XINFO", "GROUPS", stream});
    if (r.is_error()) return "";
    for (const auto& g : r.elements) {
        std::string name, last;
        for (std::size_t i = 0; i + 1 < g.elements.size(); i += 2) {
            if (g.elements[i].str == "name") name = g.elements[i + 1].str;
            if (g.elements[i].str == "last-delivered-id") last = g.elements[i + 1].str;
        }
        if (name == group) return last;
    }
    return "";
}

}  // namespace

TEST_CASE("api_queue_growth_creates_groups_at_0_on_new_partitions_and_tells_workers",
          "[api][partitions]") {
    ApiSession s;
    mq::redis::Connection redis(mq::redis::parse_url(services().redis_url));
    mq::KeyLayout keys(s.api.key_prefix());
    REQUIRE(
        s.api.call_json("POST", "/api/v1/mq/queues", {{"name", "grow"}, {"partitions", 2}}, s.token)
            .status == 201);
    // A message before the subscription, so "latest" places its first groups after it.
    REQUIRE(s.api
                .call_json("POST", "/api/v1/mq/publish",
                           {{"queue", "grow"}, {"payload", "early"}, {"key", "a"}}, s.token)
                .status < 300);
    auto sub =
        s.api.call_json("POST", "/api/v1/mq/subscriptions",
                        {{"queue", "grow"}, {"name", "reader"}, {"start_from", "latest"}}, s.token);
    INFO(sub.body);
    REQUIRE(sub.status == 201);

    mq::redis::Connection listener(mq::redis::parse_url(services().redis_url));
    listener.write({"SUBSCRIBE", mq::control_channel(keys)});
    listener.read();
    auto up = s.api.call_json("PUT", "/api/v1/mq/queues/grow", {{"partitions", 4}}, s.token);
    INFO(up.body);
    REQUIRE(up.status == 200);
    CHECK(up.json()["partitions"] == 4);
    for (int p = 2; p < 4; ++p)
        CHECK(last_delivered(redis, keys.stream(s.tenant.tenant(), "grow", p), "reader") == "0-0");
    auto event = mq::parse_control_event(listener.read().elements.at(2).str);
    CHECK(event.event == "queue_changed");
    CHECK(event.queue == "grow");
    CHECK(event.tenant == s.tenant.tenant());
}
