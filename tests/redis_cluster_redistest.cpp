// redis::Connection and redis::AsyncConnection on a Redis Cluster (3 masters, 3 replicas
// from `mq-services start --cluster`): routing by slot, pipelines split per node,
// MOVED and ASK while a slot moves between masters, Pub/Sub across nodes. [cluster]: these
// run only in the `cluster` ctest label, whose harness hands out the cluster.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "harness.hpp"
#include "mq/redis/async_connection.hpp"
#include "mq/redis/cluster.hpp"

using namespace mq::redis;

namespace {

// A connection to one node alone: no routing, so a MOVED shows.
Connection direct(const NodeAddress& node) {
    Endpoint ep;
    ep.host = node.host;
    ep.port = node.port;
    return Connection(ep);
}

std::string node_id(const NodeAddress& node) {
    return direct(node).command({"CLUSTER", "MYID"}).as_string();
}

// Moves `slot` from `from` to `to` as `redis-cli --cluster reshard` does: IMPORTING and
// MIGRATING, the keys by MIGRATE, then SETSLOT NODE on every master. `between` runs while
// the slot is half moved (ASK time).
template <class F>
void move_slot(int slot, const NodeAddress& from, const NodeAddress& to,
               const std::vector<NodeAddress>& masters, F between) {
    const std::string s = std::to_string(slot);
    Connection src = direct(from);
    Connection dst = direct(to);
    dst.command({"CLUSTER", "SETSLOT", s, "IMPORTING", node_id(from)});
    src.command({"CLUSTER", "SETSLOT", s, "MIGRATING", node_id(to)});
    between();
    for (;;) {
        auto keys = src.command({"CLUSTER", "GETKEYSINSLOT", s, "100"});
        if (keys.elements.empty()) break;
        std::vector<std::string> argv{"MIGRATE", to.host, std::to_string(to.port), "", "0",
                                      "5000",    "KEYS"};
        for (const auto& k : keys.elements) argv.push_back(k.str);
        src.command(argv);
    }
    const std::string to_id = node_id(to);
    dst.command({"CLUSTER", "SETSLOT", s, "NODE", to_id});
    src.command({"CLUSTER", "SETSLOT", s, "NODE", to_id});
    for (const auto& m : masters)
        if (!(m == from) && !(m == to)) direct(m).command({"CLUSTER", "SETSLOT", s, "NODE", to_id});
}

}  // namespace

TEST_CASE("cluster_connection_routes_every_partition_to_its_slots_master", "[cluster]") {
    mqtest::RedisScope scope;
    auto& redis = scope.redis();
    REQUIRE(redis.is_cluster());
    auto masters = redis.masters();
    REQUIRE(masters.size() == 3);
    auto keys = scope.keys();
    std::set<std::string> used;
    for (int p = 0; p < 12; ++p) {
        const auto stream = keys.stream("t", "q", p);
        redis.command({"XADD", stream, "*", "f", std::to_string(p)});
        NodeAddress owner = redis.node_of(stream);
        used.insert(owner.describe());
        // The node itself holds it: asked directly, it answers without MOVED.
        auto len = direct(owner).command_raw({"XLEN", stream});
        CHECK(len.as_integer() == 1);
    }
    CHECK(used.size() == 3);  // twelve partitions land on every master
    CHECK(scope.all_keys().size() == 12);
}

TEST_CASE("cluster_pipeline_spans_nodes_and_keeps_command_order", "[cluster]") {
    mqtest::RedisScope scope;
    auto& redis = scope.redis();
    Pipeline p;
    for (int i = 0; i < 30; ++i)
        p.add({"SET", scope.prefix() + "{k" + std::to_string(i) + "}", std::to_string(i)});
    for (int i = 0; i < 30; ++i) p.add({"GET", scope.prefix() + "{k" + std::to_string(i) + "}"});
    p.add({"PING"});
    auto replies = redis.execute(p);
    REQUIRE(replies.size() == 61);
    for (int i = 0; i < 30; ++i) CHECK(replies[30 + i].str == std::to_string(i));
    CHECK(replies[60].str == "PONG");
    // send/receive (the publisher's overlap) splits the same way.
    redis.send(p);
    auto again = redis.receive(p);
    CHECK(again[59].str == "29");
}

TEST_CASE("cluster_scripts_load_per_node_and_reload_after_script_flush", "[cluster]") {
    mqtest::RedisScope scope;
    auto& redis = scope.redis();
    Script script("return redis.call('INCR', KEYS[1])");
    std::vector<std::string> keys;
    for (int i = 0; i < 6; ++i) keys.push_back(scope.prefix() + "{s" + std::to_string(i) + "}");
    for (const auto& k : keys) CHECK(redis.eval(script, {k}, {}).as_integer() == 1);
    for (const auto& m : redis.masters()) direct(m).command({"SCRIPT", "FLUSH"});
    for (const auto& k : keys) CHECK(redis.eval(script, {k}, {}).as_integer() == 2);
}

TEST_CASE("cluster_connection_follows_moved_and_ask_while_a_slot_moves", "[cluster][reshard]") {
    mqtest::RedisScope scope;
    auto& redis = scope.redis();
    const std::string key = scope.prefix() + "{moving}:a";
    const std::string late = scope.prefix() + "{moving}:b";  // written while half moved
    const int slot = key_slot(key);
    redis.command({"SET", key, "1"});
    auto masters = redis.masters();
    NodeAddress from = redis.node_of(key);
    NodeAddress to = masters[0] == from ? masters[1] : masters[0];
    auto async_ioc = std::make_shared<boost::asio::io_context>();
    Endpoint ep = parse_url(mqtest::services().redis_url);
    AsyncConnection async(async_ioc, ep);

    move_slot(slot, from, to, masters, [&] {
        // A key not on the source yet: ASK to the importing node, and back to normal after.
        CHECK(redis.command({"SET", late, "2"}).as_string() == "OK");
        CHECK(redis.command({"GET", late}).str == "2");
        CHECK(redis.command({"GET", key}).str == "1");  // still on the source
    });
    // The connection's map still names the old master: MOVED, followed.
    CHECK(redis.command({"GET", key}).str == "1");
    CHECK(redis.command({"GET", late}).str == "2");
    CHECK(redis.node_of(key) == to);
    // The asynchronous connection too (its map was read before the move).
    Pipeline p;
    p.add({"GET", key});
    p.add({"GET", late});
    std::vector<Reply> got;
    bool called = false;
    async.execute(p, [&](std::vector<Reply> r, std::exception_ptr e) {
        CHECK_FALSE(e);
        got = std::move(r);
        called = true;
    });
    for (int i = 0; i < 200 && !called; ++i) async_ioc->run_one_for(std::chrono::milliseconds(50));
    REQUIRE(called);
    REQUIRE(got.size() == 2);
    CHECK(got[0].str == "1");
    CHECK(got[1].str == "2");
    // Put it back, so the cluster is as the other tests found it.
    move_slot(slot, to, from, masters, [] {});
    CHECK(redis.command({"GET", key}).str == "1");
}

TEST_CASE("cluster_redirect_to_a_node_with_another_pipeline_in_flight_keeps_replies_apart",
          "[cluster][reshard]") {
    mqtest::RedisScope scope;
    auto& redis = scope.redis();
    const std::string moving = scope.prefix() + "{inflight}:k";
    const int slot = key_slot(moving);
    auto masters = redis.masters();
    NodeAddress from = redis.node_of(moving);
    NodeAddress to = masters[0] == from ? masters[1] : masters[0];
    // A key the target serves already.
    std::string there;
    for (int i = 0; there.empty(); ++i) {
        std::string k = scope.prefix() + "{there" + std::to_string(i) + "}";
        if (redis.node_of(k) == to) there = k;
    }
    move_slot(slot, from, to, masters, [] {});  // the connection's map still names `from`
    Pipeline first;
    first.add({"INCRBY", moving, "7"});
    Pipeline second;
    second.add({"INCRBY", there, "5"});
    redis.send(first);
    redis.send(second);  // in flight on `to` while `first` is redirected there
    auto a = redis.receive(first);
    auto b = redis.receive(second);
    REQUIRE(a.size() == 1);
    REQUIRE(b.size() == 1);
    CHECK(a[0].integer == 7);
    CHECK(b[0].integer == 5);
    CHECK(redis.command({"GET", moving}).str == "7");
    CHECK(redis.command({"GET", there}).str == "5");
    move_slot(slot, to, from, masters, [] {});
}

TEST_CASE("cluster_subscriber_keeps_its_subscription_when_the_slot_map_is_read_again",
          "[cluster]") {
    mqtest::RedisScope scope;
    const std::string channel = scope.prefix() + "control";
    auto sub = scope.connect();
    sub->write({"SUBSCRIBE", channel});
    sub->read();
    // Reading the map again (every 30 s, or after a failure) must not use the subscribed
    // connection, which may only (un)subscribe and PING.
    for (int i = 0; i < 3; ++i) CHECK(sub->masters().size() == 3);
    sub->write({"PING"});
    auto pong = sub->read();
    REQUIRE(pong.elements.size() >= 1);
    CHECK(pong.elements[0].str == "pong");
    scope.redis().command({"PUBLISH", channel, "after"});
    auto msg = sub->read();
    REQUIRE(msg.elements.size() == 3);
    CHECK(msg.elements[2].str == "after");
}

TEST_CASE("cluster_async_connection_splits_a_group_commit_per_node", "[cluster]") {
    mqtest::RedisScope scope;
    auto ioc = std::make_shared<boost::asio::io_context>();
    AsyncConnection conn(ioc, parse_url(mqtest::services().redis_url));
    Pipeline p;
    for (int i = 0; i < 20; ++i)
        p.add({"INCRBY", scope.prefix() + "{a" + std::to_string(i) + "}", std::to_string(i)});
    Script script("return redis.call('GET', KEYS[1])");
    for (int i = 0; i < 20; ++i)
        p.add_script(script, {scope.prefix() + "{a" + std::to_string(i) + "}"}, {});
    std::vector<Reply> got;
    bool called = false;
    conn.execute(p, [&](std::vector<Reply> r, std::exception_ptr e) {
        CHECK_FALSE(e);
        got = std::move(r);
        called = true;
    });
    for (int i = 0; i < 200 && !called; ++i) ioc->run_one_for(std::chrono::milliseconds(50));
    REQUIRE(called);
    REQUIRE(got.size() == 40);
    for (int i = 0; i < 20; ++i) {
        CHECK(got[i].integer == i);
        CHECK(got[20 + i].str == std::to_string(i));
    }
    // One write per node that had work (three masters), not one per command.
    CHECK(conn.writes() <= 6);
}

TEST_CASE("cluster_pubsub_reaches_a_subscriber_on_another_node", "[cluster]") {
    mqtest::RedisScope scope;
    auto& redis = scope.redis();
    const std::string channel = scope.prefix() + "control";
    auto sub = scope.connect();
    sub->write({"SUBSCRIBE", channel});
    sub->read();
    // Published through every master in turn: the cluster bus carries it to the subscriber.
    for (const auto& m : redis.masters()) {
        direct(m).command({"PUBLISH", channel, m.describe()});
        auto msg = sub->read();
        REQUIRE(msg.elements.size() == 3);
        CHECK(msg.elements[2].str == m.describe());
    }
}

// Not [cluster]: these need no cluster, and run with the single Redis of the redis label.
TEST_CASE("cluster_seeds_that_do_not_answer_are_a_backend_error", "[redis][cluster_config]") {
    Endpoint ep = parse_url("redis+cluster://127.0.0.1:" + std::to_string(mqtest::dead_port()));
    try {
        Connection c(ep);
        FAIL("connected to a dead seed");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
        CHECK_THAT(e.what(), Catch::Matchers::Contains("slot map"));
    }
}

TEST_CASE("a_single_redis_named_as_cluster_seed_is_refused_by_name", "[redis][cluster_config]") {
    if (parse_url(mqtest::services().redis_url).cluster()) return;  // the cluster label's run
    Endpoint ep =
        parse_url("redis+cluster://127.0.0.1:" + std::to_string(mqtest::services().redis_port));
    try {
        Connection c(ep);
        FAIL("a non-cluster server was taken for a cluster");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
        CHECK_THAT(e.what(),
                   Catch::Matchers::Contains("is not a cluster node") &&
                       Catch::Matchers::Contains(std::to_string(mqtest::services().redis_port)));
    }
}
