#include "mq/redis/cluster.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace mq::redis {

// ---- slots -----------------------------------------------------------------------------

std::uint16_t crc16(std::string_view data) {
    // CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection. Computed bit
    // by bit: a key is hashed once per command, and keys are short.
    std::uint16_t crc = 0;
    for (unsigned char byte : data) {
        crc ^= static_cast<std::uint16_t>(byte << 8);
        for (int bit = 0; bit < 8; ++bit)
            crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                 : static_cast<std::uint16_t>(crc << 1);
    }
    return crc;
}

int key_slot(std::string_view key) {
    if (auto open = key.find('{'); open != std::string_view::npos) {
        auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1)
            key = key.substr(open + 1, close - open - 1);
    }
    return crc16(key) % kClusterSlots;
}

// ---- node addresses --------------------------------------------------------------------

std::string NodeAddress::describe() const {
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

namespace {

bool parse_port(std::string_view s, int& port) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), port);
    return ec == std::errc() && p == s.data() + s.size() && port > 0 && port <= 65535;
}

std::string trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return std::string(s);
}

}  // namespace

std::vector<NodeAddress> parse_node_list(std::string_view list, std::string_view setting) {
    std::vector<NodeAddress> nodes;
    auto fail = [&](const std::string& item, const std::string& why) {
        // Up to an '@' is a user and password someone pasted in: never shown.
        const auto at = item.rfind('@');
        const std::string visible = at == std::string::npos ? item : "***" + item.substr(at);
        std::string shown;
        for (unsigned char c : visible)
            shown += (c < 0x20 || c >= 0x7f) ? '?' : static_cast<char>(c);
        throw ValidationError(std::string(setting) + ": '" + shown + "' " + why +
                                  " (expected host:port,host:port,...)",
                              {{"field", std::string(setting)}});
    };
    std::size_t from = 0;
    while (from <= list.size()) {
        auto comma = list.find(',', from);
        std::string item = trim(list.substr(
            from, comma == std::string_view::npos ? std::string_view::npos : comma - from));
        from = comma == std::string_view::npos ? list.size() + 1 : comma + 1;
        if (item.empty()) continue;
        NodeAddress node;
        std::string_view port;
        if (item.front() == '[') {
            auto close = item.find(']');
            if (close == std::string::npos || close + 1 >= item.size() || item[close + 1] != ':')
                fail(item, "is not [host]:port");
            node.host = item.substr(1, close - 1);
            if (node.host.empty()) fail(item, "has an empty host");
            port = std::string_view(item).substr(close + 2);
        } else {
            auto colon = item.rfind(':');
            if (colon == std::string::npos || colon == 0) fail(item, "has no host:port");
            node.host = item.substr(0, colon);
            port = std::string_view(item).substr(colon + 1);
        }
        for (unsigned char c : node.host)
            if (c <= 0x20 || c >= 0x7f || c == '/' || c == '@' || c == '{' || c == '}')
                fail(item, "has a bad host");
        if (!parse_port(port, node.port)) fail(item, "has a bad port");
        nodes.push_back(std::move(node));
    }
    if (nodes.empty())
        throw ValidationError(std::string(setting) + " names no node (expected host:port,...)",
                              {{"field", std::string(setting)}});
    return nodes;
}

// ---- slot map --------------------------------------------------------------------------

int SlotMap::shard_of(const NodeAddress& master) {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i].master == master) return static_cast<int>(i);
    nodes_.push_back({master, {}});
    return static_cast<int>(nodes_.size() - 1);
}

const NodeAddress* SlotMap::master(int slot) const {
    if (slot < 0 || slot >= kClusterSlots) return nullptr;
    int s = slot_shard_[static_cast<std::size_t>(slot)];
    return s == 0 ? nullptr : &nodes_[static_cast<std::size_t>(s - 1)].master;
}

void SlotMap::assign(int slot, const NodeAddress& node) {
    if (slot < 0 || slot >= kClusterSlots) return;
    slot_shard_[static_cast<std::size_t>(slot)] = static_cast<std::int16_t>(shard_of(node) + 1);
}

std::vector<NodeAddress> SlotMap::masters() const {
    std::vector<NodeAddress> out;
    std::vector<bool> serves(nodes_.size(), false);
    for (auto s : slot_shard_)
        if (s != 0) serves[static_cast<std::size_t>(s - 1)] = true;
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (serves[i]) out.push_back(nodes_[i].master);
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<NodeAddress> SlotMap::all_masters() const {
    std::vector<NodeAddress> out;
    for (const auto& n : nodes_) out.push_back(n.master);
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<NodeAddress> SlotMap::replicas(const NodeAddress& m) const {
    for (const auto& n : nodes_)
        if (n.master == m) return n.replicas;
    return {};
}

int SlotMap::unassigned_slots() const {
    return static_cast<int>(std::count(slot_shard_.begin(), slot_shard_.end(), 0));
}

namespace {

[[noreturn]] void malformed(std::string_view what) {
    throw Error(ErrorCode::kInternal,
                "unexpected Redis reply to " + std::string(what) + ": not a cluster slot map");
}

// A flat RESP2 map ("key", value, "key", value...) as CLUSTER SHARDS sends it.
const Reply* field(const Reply& map, std::string_view name) {
    if (!map.is_array()) return nullptr;
    for (std::size_t i = 0; i + 1 < map.elements.size(); i += 2)
        if (map.elements[i].str == name) return &map.elements[i + 1];
    return nullptr;
}

std::string text_of(const Reply* r) {
    if (!r || (r->type != Reply::Type::kString && r->type != Reply::Type::kStatus)) return {};
    return r->str;
}

int slot_number(const Reply& r, std::string_view what) {
    std::int64_t v = 0;
    try {
        v = r.as_integer();
    } catch (const Error&) {
        malformed(what);
    }
    if (v < 0 || v >= kClusterSlots) malformed(what);
    return static_cast<int>(v);
}

// The address a node announces: its preferred endpoint, or its IP when the endpoint is
// unknown ("?") or empty.
std::optional<NodeAddress> shard_node_address(const Reply& node, bool tls) {
    NodeAddress a;
    a.host = text_of(field(node, "endpoint"));
    if (a.host.empty() || a.host == "?") a.host = text_of(field(node, "ip"));
    const Reply* port = field(node, tls ? "tls-port" : "port");
    if (!port) port = field(node, tls ? "port" : "tls-port");
    if (a.host.empty() || !port) return std::nullopt;
    try {
        a.port = static_cast<int>(port->as_integer());
    } catch (const Error&) {
        return std::nullopt;
    }
    if (a.port <= 0 || a.port > 65535) return std::nullopt;
    return a;
}

}  // namespace

SlotMap SlotMap::from_shards(const Reply& reply, bool tls) {
    constexpr std::string_view kWhat = "CLUSTER SHARDS";
    if (!reply.is_array()) malformed(kWhat);
    SlotMap map;
    for (const Reply& entry : reply.elements) {
        const Reply* slots = field(entry, "slots");
        const Reply* nodes = field(entry, "nodes");
        if (!slots || !nodes || !slots->is_array() || !nodes->is_array()) malformed(kWhat);
        // The serving master: role master and online. A failed master stays listed (as
        // master, health fail) until it rejoins as a replica; it serves nothing.
        std::optional<NodeAddress> master;
        std::vector<NodeAddress> replicas;
        for (const Reply& node : nodes->elements) {
            auto address = shard_node_address(node, tls);
            if (!address) continue;
            std::string role = text_of(field(node, "role"));
            std::string health = text_of(field(node, "health"));
            if (role == "master" && health != "fail" && health != "failed" && !master)
                master = std::move(address);
            else if (role != "master")
                replicas.push_back(std::move(*address));
        }
        if (slots->elements.size() % 2 != 0) malformed(kWhat);
        if (!master) continue;  // no master serves this shard's slots (yet)
        int shard = map.shard_of(*master);
        for (auto& r : replicas) map.nodes_[static_cast<std::size_t>(shard)].replicas.push_back(r);
        for (std::size_t i = 0; i < slots->elements.size(); i += 2) {
            int from = slot_number(slots->elements[i], kWhat);
            int to = slot_number(slots->elements[i + 1], kWhat);
            for (int s = from; s <= to; ++s)
                map.slot_shard_[static_cast<std::size_t>(s)] = static_cast<std::int16_t>(shard + 1);
        }
    }
    return map;
}

SlotMap SlotMap::from_slots(const Reply& reply) {
    constexpr std::string_view kWhat = "CLUSTER SLOTS";
    if (!reply.is_array()) malformed(kWhat);
    SlotMap map;
    auto address = [&](const Reply& node) {
        if (!node.is_array() || node.elements.size() < 2) malformed(kWhat);
        NodeAddress a;
        a.host = text_of(&node.elements[0]);
        try {
            a.port = static_cast<int>(node.elements[1].as_integer());
        } catch (const Error&) {
            malformed(kWhat);
        }
        if (a.port <= 0 || a.port > 65535) malformed(kWhat);
        return a;
    };
    for (const Reply& range : reply.elements) {
        if (!range.is_array() || range.elements.size() < 3) malformed(kWhat);
        int from = slot_number(range.elements[0], kWhat);
        int to = slot_number(range.elements[1], kWhat);
        NodeAddress master = address(range.elements[2]);
        int shard = map.shard_of(master);
        auto& replicas = map.nodes_[static_cast<std::size_t>(shard)].replicas;
        for (std::size_t i = 3; i < range.elements.size(); ++i) {
            NodeAddress r = address(range.elements[i]);
            if (std::find(replicas.begin(), replicas.end(), r) == replicas.end())
                replicas.push_back(std::move(r));
        }
        for (int s = from; s <= to; ++s)
            map.slot_shard_[static_cast<std::size_t>(s)] = static_cast<std::int16_t>(shard + 1);
    }
    return map;
}

// ---- routing ---------------------------------------------------------------------------

namespace {

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

std::optional<std::string> routing_key(const std::vector<std::string>& argv) {
    if (argv.empty()) return std::nullopt;
    const std::string cmd = upper(argv[0]);
    // Commands without a key: any node answers (PUBLISH is broadcast over the cluster bus).
    static constexpr std::string_view kKeyless[] = {
        "PING",    "INFO",    "TIME",     "PUBLISH",  "SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE",
        "SCRIPT",  "CLIENT",  "CONFIG",   "CLUSTER",  "AUTH",      "SELECT",      "WAIT",
        "DBSIZE",  "ECHO",    "FLUSHDB",  "FLUSHALL", "READONLY",  "READWRITE",   "ASKING",
        "COMMAND", "MEMORY",  "LASTSAVE", "ROLE",     "HELLO",     "QUIT",        "RESET",
        "SLOWLOG", "LATENCY", "FUNCTION", "DEBUG",    "MULTI",     "EXEC",        "DISCARD"};
    for (auto k : kKeyless)
        if (cmd == k) return std::nullopt;
    if (cmd == "EVAL" || cmd == "EVALSHA" || cmd == "EVAL_RO" || cmd == "EVALSHA_RO" ||
        cmd == "FCALL" || cmd == "FCALL_RO") {
        if (argv.size() < 4 || argv[2] == "0") return std::nullopt;
        return argv[3];
    }
    if (cmd == "XREAD" || cmd == "XREADGROUP") {
        for (std::size_t i = 1; i + 1 < argv.size(); ++i)
            if (upper(argv[i]) == "STREAMS") return argv[i + 1];
        return std::nullopt;
    }
    if (cmd == "XINFO" || cmd == "XGROUP" || cmd == "OBJECT") {
        if (argv.size() < 3) return std::nullopt;
        return argv[2];
    }
    if (cmd == "SCAN") {
        // Keys matching a pattern with a hash tag all live in the tag's slot.
        for (std::size_t i = 2; i + 1 < argv.size(); ++i) {
            if (upper(argv[i]) != "MATCH") continue;
            const std::string& pattern = argv[i + 1];
            auto open = pattern.find('{');
            auto close = open == std::string::npos ? open : pattern.find('}', open + 1);
            if (close == std::string::npos || close == open + 1) return std::nullopt;
            std::string tag = pattern.substr(open + 1, close - open - 1);
            if (tag.find_first_of("*?[\\") != std::string::npos) return std::nullopt;
            return "{" + tag + "}";
        }
        return std::nullopt;
    }
    if (argv.size() < 2) return std::nullopt;
    return argv[1];
}

std::optional<Redirect> parse_redirect(const Reply& reply) {
    if (!reply.is_error()) return std::nullopt;
    auto code = reply.error_code();
    Redirect r;
    if (code == "MOVED")
        r.kind = Redirect::Kind::kMoved;
    else if (code == "ASK")
        r.kind = Redirect::Kind::kAsk;
    else
        return std::nullopt;
    // "MOVED 3999 127.0.0.1:6381" (an empty host means: the node that answered)
    std::string_view rest = std::string_view(reply.str).substr(code.size());
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    auto space = rest.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    auto slot = rest.substr(0, space);
    auto [p, ec] = std::from_chars(slot.data(), slot.data() + slot.size(), r.slot);
    if (ec != std::errc() || p != slot.data() + slot.size() || r.slot < 0 ||
        r.slot >= kClusterSlots)
        return std::nullopt;
    std::string_view address = rest.substr(space + 1);
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos || !parse_port(address.substr(colon + 1), r.node.port))
        return std::nullopt;
    std::string_view host = address.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    r.node.host = std::string(host);
    return r;
}

Reply try_again_reply(const std::string& why) {
    Reply r;
    r.type = Reply::Type::kError;
    r.str = "TRYAGAIN " + why;
    return r;
}

Endpoint node_endpoint(const Endpoint& cluster, const NodeAddress& node) {
    Endpoint ep = cluster;
    ep.cluster_nodes.clear();
    ep.host = node.host;
    ep.port = node.port;
    ep.db = 0;
    return ep;
}

}  // namespace mq::redis
