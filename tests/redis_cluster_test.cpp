// The Redis Cluster protocol without a server: key slots, slot maps, routing keys,
// redirections, seed lists and redis+cluster:// URLs.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "mq/core/keys.hpp"
#include "mq/error.hpp"
#include "mq/redis/cluster.hpp"

using Catch::Matchers::Contains;
using namespace mq::redis;

namespace {

Reply str(std::string s) {
    Reply r;
    r.type = Reply::Type::kString;
    r.str = std::move(s);
    return r;
}
Reply num(std::int64_t v) {
    Reply r;
    r.type = Reply::Type::kInteger;
    r.integer = v;
    return r;
}
Reply arr(std::vector<Reply> e) {
    Reply r;
    r.type = Reply::Type::kArray;
    r.elements = std::move(e);
    return r;
}
Reply err(std::string s) {
    Reply r;
    r.type = Reply::Type::kError;
    r.str = std::move(s);
    return r;
}
Reply shard_node(const std::string& ip, int port, const std::string& role,
                 const std::string& health = "online") {
    return arr({str("id"), str("x"), str("port"), num(port), str("ip"), str(ip), str("endpoint"),
                str(ip), str("role"), str(role), str("replication-offset"), num(0), str("health"),
                str(health)});
}

}  // namespace

TEST_CASE("crc16_is_the_xmodem_checksum_redis_cluster_uses", "[redis_cluster]") {
    CHECK(crc16("123456789") == 0x31C3);  // the XMODEM check value
    CHECK(crc16("") == 0);
}

TEST_CASE("key_slot_matches_redis_cluster_keyslot", "[redis_cluster]") {
    // Values from `redis-cli CLUSTER KEYSLOT <key>` on Redis 7.0.
    CHECK(key_slot("somekey") == 11058);
    CHECK(key_slot("foo") == 12182);
    CHECK(key_slot("bar") == 5061);
    CHECK(key_slot("foo{hash_tag}") == 2515);
    CHECK(key_slot("bar{hash_tag}") == 2515);
    CHECK(key_slot("mq:{default:orders:0}:s") == 6314);
    CHECK(key_slot("foo{{bar}}zap") == 4015);
}

TEST_CASE("key_slot_hashes_only_the_first_non_empty_hash_tag", "[redis_cluster]") {
    CHECK(key_slot("{user1000}.following") == key_slot("{user1000}.followers"));
    CHECK(key_slot("{user1000}.following") == key_slot("user1000"));
    // An empty tag "{}" does not count: the whole key is hashed.
    CHECK(key_slot("foo{}{bar}") == crc16("foo{}{bar}") % kClusterSlots);
    // Only the first '{' opens a tag, up to the first '}' after it.
    CHECK(key_slot("foo{{bar}}zap") == key_slot("{bar"));
    CHECK(key_slot("foo{bar}{zap}") == key_slot("bar"));
    CHECK(key_slot("no-closing{brace") == crc16("no-closing{brace") % kClusterSlots);
}

TEST_CASE("every_key_of_one_partition_shares_its_slot", "[redis_cluster]") {
    mq::KeyLayout keys("mq:");
    const int slot = key_slot(keys.stream("acme", "orders", 3));
    CHECK(key_slot(keys.delayed("acme", "orders", 3)) == slot);
    CHECK(key_slot(keys.dead_letters("acme", "orders", 3)) == slot);
    CHECK(key_slot(keys.retry_after("acme", "orders", 3)) == slot);
    CHECK(key_slot(keys.expired("acme", "orders", 3)) == slot);
    CHECK(key_slot(keys.stream("acme", "orders", 4)) != slot);
}

TEST_CASE("routing_key_finds_the_key_of_each_command_mq_sends", "[redis_cluster]") {
    CHECK(routing_key({"XADD", "k1", "*", "f", "v"}) == "k1");
    CHECK(routing_key({"EVALSHA", "abc", "2", "k1", "k2", "arg"}) == "k1");
    CHECK(routing_key({"EVALSHA", "abc", "0", "arg"}) == std::nullopt);
    CHECK(routing_key({"XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "BLOCK", "100", "STREAMS",
                       "s1", ">"}) == "s1");
    CHECK(routing_key({"XINFO", "GROUPS", "s1"}) == "s1");
    CHECK(routing_key({"XGROUP", "CREATE", "s1", "g", "0", "MKSTREAM"}) == "s1");
    CHECK(routing_key({"PING"}) == std::nullopt);
    CHECK(routing_key({"publish", "mq:control", "{}"}) == std::nullopt);
    CHECK(routing_key({"INFO", "memory"}) == std::nullopt);
    CHECK(routing_key({}) == std::nullopt);
    // SCAN routes by the hash tag of its pattern, where every matching key lives.
    CHECK(routing_key({"SCAN", "0", "MATCH", "mq:{t:q:0}:k:*", "COUNT", "1000"}) == "{t:q:0}");
    CHECK(routing_key({"SCAN", "0", "MATCH", "mq:{t:*}:k:*"}) == std::nullopt);
    CHECK(routing_key({"SCAN", "0"}) == std::nullopt);
}

TEST_CASE("parse_redirect_reads_moved_and_ask", "[redis_cluster]") {
    auto moved = parse_redirect(err("MOVED 3999 127.0.0.1:6381"));
    REQUIRE(moved);
    CHECK(moved->kind == Redirect::Kind::kMoved);
    CHECK(moved->slot == 3999);
    CHECK(moved->node.host == "127.0.0.1");
    CHECK(moved->node.port == 6381);
    auto ask = parse_redirect(err("ASK 12 [::1]:7000"));
    REQUIRE(ask);
    CHECK(ask->kind == Redirect::Kind::kAsk);
    CHECK(ask->node.host == "::1");
    CHECK(ask->node.port == 7000);
    auto unknown_host = parse_redirect(err("MOVED 5 :7001"));
    REQUIRE(unknown_host);
    CHECK(unknown_host->node.host.empty());
    CHECK_FALSE(parse_redirect(err("ERR MOVED 1 a:1")));
    CHECK_FALSE(parse_redirect(err("MOVED 99999 127.0.0.1:1")));
    CHECK_FALSE(parse_redirect(err("MOVED x 127.0.0.1:1")));
    CHECK_FALSE(parse_redirect(err("MOVED 1 127.0.0.1:0")));
    CHECK_FALSE(parse_redirect(err("MOVED 1")));
    CHECK_FALSE(parse_redirect(str("MOVED 1 127.0.0.1:1")));
}

TEST_CASE("slot_map_from_cluster_shards_takes_the_online_master", "[redis_cluster]") {
    Reply shards = arr({arr({str("slots"), arr({num(0), num(5460)}), str("nodes"),
                             arr({shard_node("127.0.0.1", 7000, "master"),
                                  shard_node("127.0.0.1", 7003, "replica")})}),
                        arr({str("slots"), arr({num(5461), num(10922)}), str("nodes"),
                             arr({shard_node("127.0.0.1", 7001, "master", "fail"),
                                  shard_node("127.0.0.1", 7004, "master")})}),
                        arr({str("slots"), arr({num(10923), num(16000), num(16001), num(16383)}),
                             str("nodes"), arr({shard_node("127.0.0.1", 7002, "master")})})});
    SlotMap map = SlotMap::from_shards(shards);
    CHECK(map.unassigned_slots() == 0);
    CHECK(map.master(0)->port == 7000);
    CHECK(map.master(5460)->port == 7000);
    CHECK(map.master(5461)->port == 7004);  // the promoted replica, not the failed master
    CHECK(map.master(16383)->port == 7002);
    CHECK(map.master(16384) == nullptr);
    CHECK(map.masters().size() == 3);
    REQUIRE(map.replicas({"127.0.0.1", 7000}).size() == 1);
    CHECK(map.replicas({"127.0.0.1", 7000}).front().port == 7003);
    map.assign(0, {"127.0.0.1", 7002});
    CHECK(map.master(0)->port == 7002);
}

TEST_CASE("slot_map_from_cluster_slots_and_incomplete_maps", "[redis_cluster]") {
    Reply slots = arr({arr({num(0), num(99), arr({str("127.0.0.1"), num(7000), str("id")}),
                            arr({str("127.0.0.1"), num(7003), str("id2")})})});
    SlotMap map = SlotMap::from_slots(slots);
    CHECK(map.master(50)->port == 7000);
    CHECK(map.master(100) == nullptr);
    CHECK(map.unassigned_slots() == kClusterSlots - 100);
    CHECK(map.replicas({"127.0.0.1", 7000}).size() == 1);
}

TEST_CASE("slot_maps_refuse_malformed_replies", "[redis_cluster]") {
    CHECK_THROWS_AS(SlotMap::from_shards(str("nope")), mq::Error);
    CHECK_THROWS_AS(SlotMap::from_shards(arr({arr({str("slots"), num(1)})})), mq::Error);
    CHECK_THROWS_AS(
        SlotMap::from_shards(arr({arr({str("slots"), arr({num(0), num(99999)}), str("nodes"),
                                       arr({shard_node("127.0.0.1", 7000, "master")})})})),
        mq::Error);
    CHECK_THROWS_AS(SlotMap::from_slots(arr({arr({num(0), num(1)})})), mq::Error);
    CHECK_THROWS_AS(SlotMap::from_slots(arr({arr({num(0), num(1), arr({str("h"), num(0)})})})),
                    mq::Error);
}

TEST_CASE("node_lists_parse_and_refuse_bad_entries", "[redis_cluster]") {
    auto nodes =
        parse_node_list("127.0.0.1:7000, 127.0.0.1:7001,[::1]:7002", "REDIS_CLUSTER_NODES");
    REQUIRE(nodes.size() == 3);
    CHECK(nodes[1].port == 7001);
    CHECK(nodes[2].host == "::1");
    CHECK(nodes[2].describe() == "[::1]:7002");
    CHECK_THROWS_WITH(parse_node_list("", "REDIS_CLUSTER_NODES"), Contains("names no node"));
    CHECK_THROWS_WITH(parse_node_list("127.0.0.1", "REDIS_CLUSTER_NODES"),
                      Contains("REDIS_CLUSTER_NODES"));
    CHECK_THROWS_AS(parse_node_list("h:0", "X"), mq::ValidationError);
    CHECK_THROWS_AS(parse_node_list("h:70000", "X"), mq::ValidationError);
    CHECK_THROWS_AS(parse_node_list("h:7000x", "X"), mq::ValidationError);
    CHECK_THROWS_AS(parse_node_list("a b:7000", "X"), mq::ValidationError);
    CHECK_THROWS_AS(parse_node_list("[]:7000", "X"), mq::ValidationError);
    // A user and password pasted in are never echoed.
    for (const char* bad : {"default:s3cret@10.0.0.1:7000", "redis+cluster://:s3cret@h:7000"}) {
        INFO(bad);
        try {
            parse_node_list(bad, "REDIS_CLUSTER_NODES");
            FAIL("accepted");
        } catch (const mq::ValidationError& e) {
            CHECK_THAT(e.what(), Contains("REDIS_CLUSTER_NODES") && !Contains("s3cret"));
        }
    }
}

TEST_CASE("slot_map_prefers_the_tls_port_for_a_tls_client_and_lists_slotless_masters",
          "[redis_cluster]") {
    auto node = [](int port, int tls_port, const std::string& role) {
        return arr({str("id"), str("x"), str("port"), num(port), str("tls-port"), num(tls_port),
                    str("ip"), str("127.0.0.1"), str("endpoint"), str("127.0.0.1"), str("role"),
                    str(role), str("health"), str("online")});
    };
    Reply shards =
        arr({arr({str("slots"), arr({num(0), num(16383)}), str("nodes"),
                  arr({node(7000, 8000, "master"), node(7003, 8003, "replica")})}),
             // added with --cluster add-node, no slot yet
             arr({str("slots"), arr({}), str("nodes"), arr({node(7006, 8006, "master")})})});
    CHECK(SlotMap::from_shards(shards).master(0)->port == 7000);
    SlotMap tls = SlotMap::from_shards(shards, true);
    CHECK(tls.master(0)->port == 8000);
    CHECK(tls.replicas({"127.0.0.1", 8000}).front().port == 8003);
    CHECK(tls.masters().size() == 1);  // serving slots
    REQUIRE(tls.all_masters().size() == 2);
    CHECK(tls.all_masters()[1].port == 8006);
}

TEST_CASE("redis_cluster_urls_name_the_seeds", "[redis_cluster]") {
    auto ep = parse_url("redis+cluster://user:s3cret@10.0.0.1:7000,10.0.0.2:7001");
    REQUIRE(ep.cluster());
    CHECK(ep.cluster_nodes.size() == 2);
    CHECK(ep.username == "user");
    CHECK(ep.password == "s3cret");
    CHECK_FALSE(ep.tls);
    CHECK(ep.describe() == "cluster 10.0.0.1:7000,10.0.0.2:7001");
    CHECK(parse_url("rediss+cluster://h:7000").tls);
    CHECK_FALSE(parse_url("redis://h:7000").cluster());
    CHECK_THROWS_WITH(parse_url("redis+cluster://h:7000/2"), Contains("only database 0"));
    CHECK_THROWS_AS(parse_url("redis+cluster://"), mq::ValidationError);
    CHECK_THROWS_AS(parse_url("redis+cluster://a:s3cret@h"), mq::ValidationError);
    try {
        parse_url("redis+cluster://a:s3cret@h");
    } catch (const mq::Error& e) {
        CHECK_THAT(e.what(), !Contains("s3cret"));
    }
}

TEST_CASE("node_endpoint_keeps_credentials_and_drops_the_seed_list", "[redis_cluster]") {
    auto cluster = parse_url("redis+cluster://:pw@h:7000,h:7001");
    auto node = node_endpoint(cluster, {"10.1.1.1", 7005});
    CHECK_FALSE(node.cluster());
    CHECK(node.host == "10.1.1.1");
    CHECK(node.port == 7005);
    CHECK(node.password == "pw");
}
