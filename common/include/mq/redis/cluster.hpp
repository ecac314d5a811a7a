#pragma once

// The Redis Cluster protocol, without I/O: key slots (CRC16 with hash tags), the slot map
// read from CLUSTER SHARDS or CLUSTER SLOTS, which key of a command routes it, and the
// MOVED/ASK redirections. redis::Connection and redis::AsyncConnection route by it when
// their Endpoint names a cluster (docs/cluster.md).

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mq/redis/client.hpp"

namespace mq::redis {

/// Slots of a Redis Cluster.
inline constexpr int kClusterSlots = 16384;

/// Redirections one command may follow (MOVED, ASK) before it fails: a slot that moves
/// more often than this during one call means the cluster is being resharded in a loop.
inline constexpr int kMaxRedirects = 5;

/// How often a connection reads the slot map again when no redirection or failure asked.
inline constexpr std::chrono::seconds kSlotMapRefreshInterval{30};

/// CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with.
std::uint16_t crc16(std::string_view data);

/// The slot of a key: CRC16 of its hash tag (the text between the first '{' and the next
/// '}', when not empty) or of the whole key, modulo 16384.
int key_slot(std::string_view key);

/// Parses `host:port,host:port` (REDIS_CLUSTER_NODES, the seeds' name). Throws
/// ValidationError naming `setting` on an empty list, a missing or bad port.
std::vector<NodeAddress> parse_node_list(std::string_view list, std::string_view setting);

/// Which master serves each slot, and the masters' replicas (for `mqctl queue show`).
class SlotMap {
  public:
    /// From a CLUSTER SHARDS reply (Redis 7). Throws Error on a malformed reply.
    /// `tls`: the client speaks TLS, so a node's `tls-port` is the one to use when it
    /// announces both.
    static SlotMap from_shards(const Reply& reply, bool tls = false);
    /// From a CLUSTER SLOTS reply (Redis 3 to 7). Throws Error on a malformed reply.
    static SlotMap from_slots(const Reply& reply);

    /// The master of `slot`, or nullptr when no node serves it (the cluster is incomplete).
    const NodeAddress* master(int slot) const;
    /// After MOVED: `slot` is now served by `node`.
    void assign(int slot, const NodeAddress& node);
    /// Every master, each once, in address order.
    std::vector<NodeAddress> masters() const;
    /// Every master the map read, also one that serves no slot yet, sorted.
    std::vector<NodeAddress> all_masters() const;
    /// The replicas of a master, as the map read them.
    std::vector<NodeAddress> replicas(const NodeAddress& master) const;
    /// Slots no master serves.
    int unassigned_slots() const;
    bool empty() const { return nodes_.empty(); }

  private:
    struct Shard {
        NodeAddress master;
        std::vector<NodeAddress> replicas;
    };
    int shard_of(const NodeAddress& master);
    std::vector<Shard> nodes_;
    std::array<std::int16_t, kClusterSlots> slot_shard_{};  // index into nodes_ + 1; 0: none
};

/// The key that routes a command to its slot's node: the first key of a keyed command
/// (EVALSHA's first key, XREADGROUP's first stream, XINFO's key, a SCAN MATCH pattern's
/// hash tag), or nothing for commands that any node answers (PING, INFO, PUBLISH, TIME).
/// Commands mq sends with several keys keep them in one slot (DESIGN.md §3).
std::optional<std::string> routing_key(const std::vector<std::string>& argv);

/// A MOVED or ASK error reply, parsed.
struct Redirect {
    enum class Kind { kMoved, kAsk };
    Kind kind = Kind::kMoved;
    int slot = 0;
    NodeAddress node;
};

/// The redirection an error reply asks for; nothing for every other reply.
std::optional<Redirect> parse_redirect(const Reply& reply);

/// The error reply a call ends with when it cannot be served now (a slot redirected more
/// than kMaxRedirects times, no master for a slot): "TRYAGAIN <why>", a try-again reply,
/// so mq-api answers 503 with Retry-After and mqctl exits 5, as for a down single Redis.
Reply try_again_reply(const std::string& why);

/// The endpoint of one cluster node: `cluster`'s credentials and TLS, `node`'s address,
/// database 0, no cluster list (a connection to one node).
Endpoint node_endpoint(const Endpoint& cluster, const NodeAddress& node);

}  // namespace mq::redis
