// Pure parts of maintenance: the fixed shard function and the MAINTENANCE setting.
#include <catch2/catch.hpp>
#include <set>

#include "mq/config/config.hpp"
#include "mq/core/keys.hpp"
#include "mq/core/partitioner.hpp"
#include "mq/error.hpp"
#include "mq/maintenance/service.hpp"

TEST_CASE("maintenance_shard_is_fnv1a_of_tenant_slash_queue_and_spreads_over_every_shard",
          "[maintenance]") {
    CHECK(mq::kMaintenanceShards == 16);
    CHECK(mq::maintenance_shard("acme", "orders") ==
          static_cast<int>(mq::fnv1a_64("acme/orders") % 16));
    // "a/bc" and "ab/c" are different queues and may land in different shards; the
    // separator keeps them apart.
    CHECK(mq::maintenance_shard("a", "bc") == static_cast<int>(mq::fnv1a_64("a/bc") % 16));
    std::set<int> seen;
    for (int i = 0; i < 500; ++i) {
        int s = mq::maintenance_shard("tenant", "queue-" + std::to_string(i));
        CHECK(s >= 0);
        CHECK(s < mq::kMaintenanceShards);
        seen.insert(s);
    }
    CHECK(seen.size() == static_cast<std::size_t>(mq::kMaintenanceShards));
}

TEST_CASE("maintenance_lease_keys_live_under_the_prefix", "[maintenance]") {
    mq::KeyLayout keys("app1:");
    CHECK(keys.maintenance_lease(3) == "app1:maint:lease:3");
    CHECK(keys.maintenance_global_lease() == "app1:maint:lease:global");
    CHECK(keys.maintenance_members() == "app1:maint:members");
}

TEST_CASE("maintenance_setting_is_on_by_default_and_takes_on_off_from_env_and_yaml",
          "[maintenance][config]") {
    CHECK(mq::load_config("", {}).maintenance);
    CHECK_FALSE(mq::load_config("", {{"MAINTENANCE", "off"}}).maintenance);
    CHECK(mq::load_config("", {{"MAINTENANCE", "on"}}).maintenance);
    CHECK_FALSE(mq::load_config("", {{"MAINTENANCE", "false"}}).maintenance);
    try {
        mq::load_config("", {{"MAINTENANCE", "sometimes"}});
        FAIL("accepted MAINTENANCE=sometimes");
    } catch (const mq::ValidationError& e) {
        CHECK_THAT(e.what(),
                   Catch::Contains("MAINTENANCE=sometimes") && Catch::Contains("true or false"));
    }
}
