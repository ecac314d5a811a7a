#pragma once

// The cluster topology behind a redis::Connection whose Endpoint names a Redis Cluster:
// the slot map, one Connection per node, routing and redirections. Private to mq_redis.

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mq/redis/client.hpp"
#include "mq/redis/cluster.hpp"

namespace mq::redis {

class ClusterRouter {
  public:
    ClusterRouter(Endpoint cluster, ConnectOptions options);

    /// One command on its key's master (keyless: the default node); error replies as
    /// values, MOVED and ASK followed up to kMaxRedirects times.
    Reply command(const std::vector<std::string>& argv, const Script* script = nullptr);
    /// The pipeline split per node: every node's part goes out before any reply is read
    /// (one round trip per node), replies come back in command order.
    void send(const Pipeline& pipeline);
    std::vector<Reply> receive(const Pipeline& pipeline);
    /// Subscriber mode: pinned to one node (PUBLISH reaches every node of a cluster).
    void write(const std::vector<std::string>& argv);
    Reply read();

    /// Every master must be `maxmemory-policy noeviction`; the error names the node.
    void check_server_policy();
    void set_command_timeout(std::chrono::milliseconds timeout);

    /// The master serving `key` (reads the slot map when needed).
    NodeAddress node_of(std::string_view key);
    /// Every master, the map read afresh.
    std::vector<NodeAddress> masters();
    /// A connection to one node (fan-out over masters()).
    Connection& node(const NodeAddress& address);
    /// The nodes that ran commands sent to them after an ASK since the last call: a write
    /// there is not on the node the map names, so a replica wait must ask them too.
    std::vector<NodeAddress> take_asked();

  private:
    struct Part {
        NodeAddress address;
        Connection* connection = nullptr;  // null once that connection was dropped
        Pipeline pipeline;
        std::vector<std::size_t> index;  // position of each command in the whole pipeline
        // Read ahead of receive(), to free the connection for a redirected command.
        std::optional<std::vector<Reply>> received;
    };
    struct Plan {
        std::vector<Part> parts;
    };

    void ensure_map();
    void refresh();
    NodeAddress route(const std::vector<std::string>& argv);
    NodeAddress default_node();
    void drop(const NodeAddress& address);
    Plan plan(const Pipeline& pipeline);
    void read_ahead(Connection& connection, const NodeAddress& address);
    Reply follow(Reply reply, const std::vector<std::string>& argv, const Script* script,
                 NodeAddress from);

    Endpoint cluster_;
    ConnectOptions options_;
    SlotMap map_;
    bool stale_ = true;
    std::chrono::steady_clock::time_point refreshed_{};
    std::map<NodeAddress, std::unique_ptr<Connection>> nodes_;
    std::optional<NodeAddress> pinned_;  // subscriber mode
    std::deque<Plan> in_flight_;         // sent, not received yet
    std::vector<NodeAddress> asked_;     // see take_asked()
};

}  // namespace mq::redis
