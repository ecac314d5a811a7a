// Failover on a Redis Cluster of this test alone (`mq-services start --cluster`): the
// master of a busy partition is killed with SIGKILL while a blocking and an asynchronous
// connection write to it; its replica is promoted (cluster-node-timeout 2 s) and both
// connections carry on without being recreated. Acknowledged writes that the promoted
// replica never received are counted and reported (replication is asynchronous).
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "harness.hpp"
#include "mq/redis/async_connection.hpp"
#include "mq/redis/cluster.hpp"
#include "private_cluster.hpp"

using namespace mq::redis;
using namespace std::chrono_literals;

using mqtest::PrivateCluster;

TEST_CASE("cluster_connections_survive_the_kill_of_a_partitions_master",
          "[redis][cluster_failover]") {
    PrivateCluster cluster;
    Endpoint ep = parse_url(cluster.url());
    ConnectOptions fast;
    fast.connect_timeout = 500ms;
    fast.command_timeout = 1000ms;
    Connection redis(ep, fast);
    const std::string stream = "mq:{failover:q:0}:s";
    const NodeAddress victim = redis.node_of(stream);
    REQUIRE(victim.port > 0);

    auto ioc = std::make_shared<boost::asio::io_context>();
    AsyncConnection async(ioc, ep, fast);
    std::string last_error;
    auto async_xadd = [&](const std::string& value) {
        Pipeline p;
        p.add({"XADD", stream, "*", "v", value});
        bool called = false;
        std::exception_ptr error;
        std::string id;
        async.execute(p, [&](std::vector<Reply> r, std::exception_ptr e) {
            called = true;
            error = e;
            if (!e && !r.empty() && !r[0].is_error()) id = r[0].str;
            if (!e && !r.empty() && r[0].is_error()) last_error = "async: " + r[0].str;
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& x) {
                    last_error = std::string("async: ") + x.what();
                }
            }
        });
        // A call may complete at once (no node for its slot yet): the loop still runs a
        // little, so the slot map read in the background can arrive.
        ioc->restart();
        ioc->poll();
        for (int i = 0; i < 100 && !called; ++i) ioc->run_one_for(50ms);
        if (!called) last_error = "async: no callback in 5 s";
        return id;  // empty: not acknowledged
    };

    std::set<std::string> acked;  // values whose XADD was acknowledged
    int failures = 0;
    bool killed = false;
    auto start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point killed_at, recovered_at;
    int after_kill_ok = 0;
    for (int i = 0; std::chrono::steady_clock::now() - start < 40s; ++i) {
        const std::string value = std::to_string(i);
        bool ok = false;
        try {
            if (i % 2 == 0) {
                redis.command({"XADD", stream, "*", "v", value});
                ok = true;
            } else {
                ok = !async_xadd(value).empty();
            }
        } catch (const mq::Error& e) {
            CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
            last_error = e.what();
        }
        if (ok) acked.insert(value);
        if (!ok) {
            ++failures;
            ioc->restart();
            ioc->run_for(50ms);  // the pause between retries runs the asynchronous side
        }
        if (!killed && acked.size() >= 200) {
            cluster.kill_node(victim.port);
            killed = true;
            killed_at = std::chrono::steady_clock::now();
        }
        if (killed && ok && ++after_kill_ok >= 100) {
            if (recovered_at == std::chrono::steady_clock::time_point{})
                recovered_at = std::chrono::steady_clock::now();
            break;
        }
        if (!ok) after_kill_ok = 0;
    }
    REQUIRE(killed);
    INFO("last error: " << last_error << "; " << acked.size() << " acknowledged");
    REQUIRE(after_kill_ok >= 100);                 // both connections write again, not recreated
    CHECK_FALSE(redis.node_of(stream) == victim);  // the replica now serves the slot
    // Which acknowledged writes did the promoted replica never get?
    std::set<std::string> stored;
    auto entries = redis.command({"XRANGE", stream, "-", "+"});
    for (const auto& e : entries.elements) stored.insert(e.elements.at(1).elements.at(1).str);
    std::size_t lost = 0;
    for (const auto& v : acked) lost += stored.count(v) == 0;
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(recovered_at - killed_at);
    WARN("failover: " << acked.size() << " acknowledged writes, " << lost
                      << " lost with the killed master, " << failures
                      << " calls failed, back after " << took.count() << " ms");
    CHECK(took < 30s);
}

TEST_CASE("a_cluster_node_that_may_evict_is_refused_by_name", "[redis][cluster_failover]") {
    PrivateCluster cluster;
    Endpoint ep = parse_url(cluster.url());
    Connection redis(ep);
    REQUIRE_NOTHROW(redis.check_server_policy());
    // A replica too: it becomes the master on failover.
    auto masters = redis.masters();
    REQUIRE(masters.size() == 3);
    auto roles = redis.node(masters[0]).command({"ROLE"});
    REQUIRE(roles.elements.size() >= 3);
    REQUIRE_FALSE(roles.elements[2].elements.empty());
    const auto& replica = roles.elements[2].elements[0];  // [ip, port, offset]
    const std::string port = replica.elements.at(1).str;
    Endpoint one;
    one.host = "127.0.0.1";
    one.port = std::stoi(port);
    Connection(one).command({"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"});
    try {
        redis.check_server_policy();
        FAIL("an evicting replica was accepted");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
        CHECK_THAT(e.what(), Catch::Matchers::Contains("127.0.0.1:" + port) &&
                                 Catch::Matchers::Contains("allkeys-lru"));
    }
    Connection(one).command({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
    CHECK_NOTHROW(redis.check_server_policy());
}
