// What an operator sees of retention: expired counts in `mqctl stats`, and a capped queue
// whose consumer keeps up accepting publishes from mqctl (docs/retention.md).
#include <catch2/catch.hpp>
#include <map>
#include <thread>

#include "harness.hpp"
#include "mq/queue/trimmer.hpp"
#include "mqctl_shell.hpp"

using json = nlohmann::json;
using Shell = mqtest::MqctlShell;
using namespace std::chrono_literals;

TEST_CASE("stats_shows_entries_expired_unconsumed_per_subscription", "[mqctl][stats][retention]") {
    Shell sh;
    sh.create_queue({"short", "--retention", "1s"});
    auto& redis = sh.redis().redis();
    const std::string s = sh.stream("short", 0);
    redis.command({"XGROUP", "CREATE", s, "billing", "0", "MKSTREAM"});
    redis.command({"XGROUP", "CREATE", s, "audit", "0", "MKSTREAM"});
    for (int i = 0; i < 3; ++i)
        REQUIRE_EXIT(sh.run({"publish", "short", "m" + std::to_string(i)}), 0);
    redis.command({"XREADGROUP", "GROUP", "audit", "w1", "COUNT", "10", "STREAMS", s, ">"});
    auto read = redis.command({"XRANGE", s, "-", "+"});
    for (const auto& e : read.elements) redis.command({"XACK", s, "audit", e.elements.at(0).str});
    std::this_thread::sleep_for(1100ms);
    auto pass = mq::Trimmer(redis, sh.redis().keys()).trim(sh.queue("short"));
    REQUIRE(pass.expired == 3);

    json stats = sh.json_of({"stats", "short"});
    CHECK(stats["length"] == 0);
    std::map<std::string, json> subs;
    for (const auto& sub : stats["subscriptions"]) subs[sub["name"]] = sub;
    CHECK(subs.at("billing")["expired"] == 3);
    CHECK(subs.at("audit")["expired"] == 0);
    auto table = sh.run({"stats", "short"});
    REQUIRE_EXIT(table, 0);
    CHECK_THAT(table.out, Catch::Contains("EXPIRED"));
    CHECK_THAT(table.out, Catch::Matches("[\\s\\S]*\nbilling +0 +0 +3 +1/1\n[\\s\\S]*"));
}

TEST_CASE("a_capped_queue_keeps_accepting_publishes_while_its_subscription_keeps_up",
          "[mqctl][retention][backpressure]") {
    Shell sh;
    sh.create_queue({"capped", "--max-length", "2"});
    auto& redis = sh.redis().redis();
    const std::string s = sh.stream("capped", 0);
    redis.command({"XGROUP", "CREATE", s, "billing", "0", "MKSTREAM"});
    for (int i = 0; i < 5; ++i) {
        REQUIRE_EXIT(sh.run({"publish", "capped", "m" + std::to_string(i)}), 0);
        auto got = redis.command(
            {"XREADGROUP", "GROUP", "billing", "w1", "COUNT", "10", "STREAMS", s, ">"});
        for (const auto& e : got.elements.at(0).elements.at(1).elements)
            redis.command({"XACK", s, "billing", e.elements.at(0).str});
    }
    // Stalled now: two fill the backlog, the third is refused with the documented code.
    REQUIRE_EXIT(sh.run({"publish", "capped", "a"}), 0);
    REQUIRE_EXIT(sh.run({"publish", "capped", "b"}), 0);
    auto full = sh.run({"publish", "capped", "c"});
    CHECK(full.status != 0);
    CHECK_THAT(full.err, Catch::Contains("full"));
}
