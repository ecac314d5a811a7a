// mqctl on a Redis Cluster: `queue show` names the slot and master of every partition, and
// what it names is where the partition's stream really is. [cluster]: runs only in the
// `cluster` ctest label, whose fixture is a 3-master cluster.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>

#include "harness.hpp"
#include "mq/redis/cluster.hpp"
#include "mqctl_shell.hpp"

TEST_CASE("queue_show_on_a_cluster_names_the_master_of_each_partition", "[cluster][mqctl]") {
    mqtest::MqctlShell sh;
    sh.create_queue({"orders", "--partitions", "6"});
    for (int i = 0; i < 12; ++i)
        sh.ok({"publish", "orders", "{\"n\":" + std::to_string(i) + "}", "--key",
               "k" + std::to_string(i)});
    auto shown = sh.run({"queue", "show", "orders"});
    REQUIRE_EXIT(shown, 0);
    CHECK_THAT(shown.out, Catch::Contains("PARTITION") && Catch::Contains("NODE"));

    nlohmann::json q = sh.json_of({"queue", "show", "orders"});
    REQUIRE(q["placement"].size() == 6);
    std::set<std::string> nodes;
    for (const auto& p : q["placement"]) {
        const int partition = p["partition"].get<int>();
        const std::string stream = sh.stream("orders", partition);
        CHECK(p["slot"].get<int>() == mq::redis::key_slot(stream));
        // Asked directly (no routing), the named node holds the partition's stream.
        const std::string node = p["node"].get<std::string>();
        nodes.insert(node);
        mq::redis::Endpoint ep = mq::redis::parse_url("redis://" + node);
        mq::redis::Connection direct(ep);
        auto len = direct.command_raw({"XLEN", stream});
        CHECK_FALSE(len.is_error());
    }
    CHECK(nodes.size() >= 2);  // six partitions spread over the masters
}
