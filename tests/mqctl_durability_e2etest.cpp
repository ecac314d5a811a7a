// `mqctl queue create/update --durability` and what `queue show` prints; a publish to a
// "replica" queue on a Redis without replicas exits 5 (try again) naming the node.
#include <catch2/catch.hpp>

#include "mqctl_shell.hpp"

using Catch::Matchers::Contains;

TEST_CASE("mqctl_queue_durability_is_set_shown_and_checked", "[mqctl][durability]") {
    mqtest::MqctlShell sh;
    sh.create_queue({"orders", "--durability", "replica"});
    CHECK(sh.queue("orders").durability == "replica");
    auto shown = sh.run({"queue", "show", "orders"});
    REQUIRE_EXIT(shown, 0);
    CHECK_THAT(shown.out, Contains("durability") && Contains("replica"));
    CHECK(sh.json_of({"queue", "show", "orders"})["durability"] == "replica");

    REQUIRE_EXIT(sh.run({"queue", "update", "orders", "--durability", "leader"}), 0);
    CHECK(sh.queue("orders").durability == "leader");

    auto bad = sh.run({"queue", "update", "orders", "--durability", "quorum"});
    REQUIRE_EXIT(bad, 2);
    CHECK_THAT(bad.err, Contains("durability"));
    CHECK(sh.queue("orders").durability == "leader");
    REQUIRE_EXIT(sh.run({"queue", "create", "other", "--durability", ""}), 2);
}

TEST_CASE("mqctl_publish_to_a_replica_queue_without_a_replica_exits_5", "[mqctl][durability]") {
    mqtest::MqctlShell sh;  // the test services' Redis has no replica
    sh.create_queue({"orders", "--durability", "replica"});
    auto r = sh.run({"publish", "orders", "{\"n\":1}"});
    REQUIRE_EXIT(r, 5);
    CHECK_THAT(r.err, Contains("no replica"));
    REQUIRE_EXIT(sh.run({"queue", "update", "orders", "--durability", "leader"}), 0);
    REQUIRE_EXIT(sh.run({"publish", "orders", "{\"n\":2}"}), 0);
}
