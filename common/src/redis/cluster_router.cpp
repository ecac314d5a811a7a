#include "cluster_router.hpp"

#include <algorithm>

namespace mq::redis {

ClusterRouter::ClusterRouter(Endpoint cluster, ConnectOptions options)
    : cluster_(std::move(cluster)), options_(options) {
    load_tls(cluster_);  // once, shared by every node's connection
    refresh();
}

Connection& ClusterRouter::node(const NodeAddress& address) {
    auto it = nodes_.find(address);
    if (it == nodes_.end())
        it = nodes_
                 .emplace(address,
                          std::make_unique<Connection>(node_endpoint(cluster_, address), options_))
                 .first;
    return *it->second;
}

// A node that failed on I/O: its connection goes (the next use connects afresh), the map
// is read again before the next command (the node may have failed over), and pipelines in
// flight on it learn their replies are gone.
void ClusterRouter::drop(const NodeAddress& address) {
    stale_ = true;  // also when the connection failed while being made
    if (pinned_ && *pinned_ == address) pinned_.reset();
    auto it = nodes_.find(address);
    if (it == nodes_.end()) return;
    for (auto& plan : in_flight_)
        for (auto& part : plan.parts)
            if (part.connection == it->second.get()) part.connection = nullptr;
    nodes_.erase(it);
}

// CLUSTER SHARDS (CLUSTER SLOTS before Redis 7) from the masters known, then the seeds.
// A node that cannot answer (down, an error reply, a reply that is no map) leaves the next
// one to try. The subscriber's connection is never asked: in subscriber mode it may only
// (un)subscribe and PING, so that node is read on a connection of its own.
void ClusterRouter::refresh() {
    std::vector<NodeAddress> candidates = map_.masters();
    for (const auto& seed : cluster_.cluster_nodes)
        if (std::find(candidates.begin(), candidates.end(), seed) == candidates.end())
            candidates.push_back(seed);
    std::string last_error = "no node answered";
    for (const auto& address : candidates) {
        std::unique_ptr<Connection> own;  // for the pinned (subscribed) node only
        try {
            if (pinned_ && *pinned_ == address)
                own = std::make_unique<Connection>(node_endpoint(cluster_, address), options_);
            Connection& c = own ? *own : node(address);
            Reply r = c.command_raw({"CLUSTER", "SHARDS"});
            SlotMap fresh;
            if (r.is_error() && r.str.find("cluster support disabled") != std::string::npos)
                throw Error(ErrorCode::kBackendUnavailable,
                            "Redis at " + address.describe() +
                                " is not a cluster node (cluster support disabled); use "
                                "REDIS_URL=redis://" +
                                address.describe() + " instead of REDIS_CLUSTER_NODES");
            if (r.is_error()) {  // before Redis 7: no CLUSTER SHARDS
                Reply slots = c.command_raw({"CLUSTER", "SLOTS"});
                if (slots.is_error()) throw reply_error(slots, "CLUSTER SLOTS");
                fresh = SlotMap::from_slots(slots);
            } else {
                fresh = SlotMap::from_shards(r, cluster_.tls);
            }
            if (fresh.unassigned_slots() == kClusterSlots) {
                last_error = address.describe() + " serves no slot (cluster not created yet?)";
                continue;
            }
            map_ = std::move(fresh);
            stale_ = false;
            refreshed_ = std::chrono::steady_clock::now();
            return;
        } catch (const BackendUnavailable& e) {
            if (!own) drop(address);
            last_error = e.what();
        } catch (const Error& e) {
            // Not a cluster node at all: no other node will make it one.
            if (e.code() == ErrorCode::kBackendUnavailable) throw;
            last_error = address.describe() + ": " + e.what();
        }
    }
    throw BackendUnavailable("cannot read the slot map of Redis " + cluster_.describe() + ": " +
                             last_error + "; check REDIS_CLUSTER_NODES");
}

void ClusterRouter::ensure_map() {
    if (stale_ || map_.empty() ||
        std::chrono::steady_clock::now() - refreshed_ > kSlotMapRefreshInterval)
        refresh();
}

NodeAddress ClusterRouter::default_node() {
    if (pinned_) return *pinned_;
    auto masters = map_.masters();
    if (masters.empty())
        throw BackendUnavailable("Redis " + cluster_.describe() + " has no master");
    // A connected master when there is one: keyless commands cost no new connection.
    for (const auto& m : masters)
        if (nodes_.count(m)) return m;
    return masters.front();
}

NodeAddress ClusterRouter::route(const std::vector<std::string>& argv) {
    auto key = routing_key(argv);
    if (!key) return default_node();
    int slot = key_slot(*key);
    const NodeAddress* master = map_.master(slot);
    if (!master) {
        stale_ = true;
        throw Error(ErrorCode::kBackendUnavailable,
                    "no node of Redis " + cluster_.describe() + " serves slot " +
                        std::to_string(slot) + " (cluster down or being resharded)",
                    nlohmann::json::object(), kTryAgainAfterSeconds);
    }
    return *master;
}

NodeAddress ClusterRouter::node_of(std::string_view key) {
    ensure_map();
    const NodeAddress* master = map_.master(key_slot(key));
    return master ? *master : NodeAddress{};
}

std::vector<NodeAddress> ClusterRouter::masters() {
    refresh();
    return map_.masters();
}

// MOVED: the slot lives elsewhere now (remembered, the map read again before the next
// command). ASK: this one command goes to the importing node, preceded by ASKING. Either way
// the command did not run where it was refused, so sending it again is safe.
Reply ClusterRouter::follow(Reply reply, const std::vector<std::string>& argv, const Script* script,
                            NodeAddress from) {
    for (int hop = 0; hop < kMaxRedirects; ++hop) {
        auto redirect = parse_redirect(reply);
        if (!redirect) return reply;
        if (redirect->node.host.empty()) redirect->node.host = from.host;
        Pipeline p;
        if (redirect->kind == Redirect::Kind::kMoved) {
            map_.assign(redirect->slot, redirect->node);
            stale_ = true;
        } else {
            p.add({"ASKING"});
        }
        p.add(argv, script);
        try {
            Connection& target = node(redirect->node);
            // Another pipeline's replies may be waiting on that connection: read them
            // first, or this command would take one of them for its own.
            read_ahead(target, redirect->node);
            auto replies = target.execute(p);
            reply = std::move(replies.back());
        } catch (const BackendUnavailable&) {
            drop(redirect->node);
            throw;
        }
        if (redirect->kind == Redirect::Kind::kAsk &&
            std::find(asked_.begin(), asked_.end(), redirect->node) == asked_.end())
            asked_.push_back(redirect->node);
        from = redirect->node;
    }
    if (!parse_redirect(reply)) return reply;
    stale_ = true;
    return try_again_reply("slot redirected more than " + std::to_string(kMaxRedirects) +
                           " times in one call (cluster being resharded?)");
}

Reply ClusterRouter::command(const std::vector<std::string>& argv, const Script* script) {
    ensure_map();
    NodeAddress address = route(argv);
    Reply r;
    try {
        if (script) {
            Pipeline p;
            p.add(argv, script);
            r = std::move(node(address).execute(p).front());
        } else {
            r = node(address).command_raw(argv);
        }
    } catch (const BackendUnavailable&) {
        drop(address);
        throw;
    }
    return follow(std::move(r), argv, script, address);
}

ClusterRouter::Plan ClusterRouter::plan(const Pipeline& pipeline) {
    Plan plan;
    for (std::size_t i = 0; i < pipeline.size(); ++i) {
        NodeAddress address = route(pipeline.commands()[i]);
        auto it = std::find_if(plan.parts.begin(), plan.parts.end(),
                               [&](const Part& p) { return p.address == address; });
        if (it == plan.parts.end()) {
            plan.parts.push_back({address, nullptr, {}, {}, std::nullopt});
            it = std::prev(plan.parts.end());
        }
        it->pipeline.add(pipeline.commands()[i], pipeline.script(i));
        it->index.push_back(i);
    }
    return plan;
}

void ClusterRouter::read_ahead(Connection& connection, const NodeAddress& address) {
    for (auto& plan : in_flight_)
        for (auto& part : plan.parts)
            if (part.connection == &connection && !part.received) {
                try {
                    part.received = connection.receive(part.pipeline);
                } catch (const BackendUnavailable&) {
                    drop(address);
                    throw;
                }
            }
}

std::vector<NodeAddress> ClusterRouter::take_asked() {
    std::vector<NodeAddress> out;
    out.swap(asked_);
    return out;
}

void ClusterRouter::send(const Pipeline& pipeline) {
    ensure_map();
    in_flight_.push_back(plan(pipeline));
    Plan& p = in_flight_.back();
    for (auto& part : p.parts) {
        try {
            part.connection = &node(part.address);
            part.connection->send(part.pipeline);
        } catch (const BackendUnavailable&) {
            part.connection = nullptr;
            drop(part.address);
            // The parts already sent are read by receive(), which reports this failure.
        }
    }
}

std::vector<Reply> ClusterRouter::receive(const Pipeline& pipeline) {
    Plan p = std::move(in_flight_.front());
    in_flight_.pop_front();
    std::vector<Reply> replies(pipeline.size());
    std::optional<BackendUnavailable> failure;
    // Every node's replies are read, even after one failed, so no connection is left with
    // replies that a later call would take for its own.
    for (auto& part : p.parts) {
        if (!part.connection && !part.received) {
            if (!failure)
                failure.emplace("lost connection to Redis at " + part.address.describe() +
                                "; the command may or may not have run");
            continue;
        }
        try {
            auto got =
                part.received ? std::move(*part.received) : part.connection->receive(part.pipeline);
            for (std::size_t k = 0; k < got.size(); ++k) replies[part.index[k]] = std::move(got[k]);
        } catch (const BackendUnavailable& e) {
            drop(part.address);
            if (!failure) failure.emplace(e.what());
        }
    }
    if (failure) throw *failure;
    for (auto& part : p.parts)
        for (std::size_t k = 0; k < part.index.size(); ++k) {
            std::size_t i = part.index[k];
            if (parse_redirect(replies[i]))
                replies[i] = follow(std::move(replies[i]), pipeline.commands()[i],
                                    pipeline.script(i), part.address);
        }
    return replies;
}

void ClusterRouter::write(const std::vector<std::string>& argv) {
    ensure_map();
    if (!pinned_) pinned_ = default_node();
    try {
        node(*pinned_).write(argv);
    } catch (const BackendUnavailable&) {
        drop(*pinned_);
        throw;
    }
}

Reply ClusterRouter::read() {
    if (!pinned_) throw BackendUnavailable("Redis " + cluster_.describe() + ": nothing to read");
    NodeAddress address = *pinned_;
    try {
        return node(address).read();
    } catch (const BackendUnavailable&) {
        drop(address);
        throw;
    }
}

void ClusterRouter::check_server_policy() {
    refresh();
    // Every master, also one without slots yet (added, about to receive some by a reshard).
    for (const auto& master : map_.all_masters()) {
        node(master).check_server_policy();
        // A replica becomes the master on failover: it must not evict either. One that
        // cannot be reached now is checked by the process that meets it as a master.
        for (const auto& replica : map_.replicas(master)) {
            try {
                node(replica).check_server_policy();
            } catch (const BackendUnavailable&) {
                drop(replica);
            }
        }
    }
}

void ClusterRouter::set_command_timeout(std::chrono::milliseconds timeout) {
    options_.command_timeout = timeout;
    for (auto& [address, c] : nodes_) c->set_command_timeout(timeout);
}

}  // namespace mq::redis
