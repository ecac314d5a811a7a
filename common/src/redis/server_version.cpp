#include "mq/redis/server_version.hpp"

#include <algorithm>
#include <cstdlib>

namespace mq::redis {

std::map<std::string, std::string> parse_info(std::string_view text) {
    // "# Server\r\nredis_version:7.0.15\r\n..."
    std::map<std::string, std::string> out;
    while (!text.empty()) {
        auto eol = text.find('\n');
        std::string_view line = text.substr(0, eol);
        text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty() || line.front() == '#') continue;
        if (auto colon = line.find(':'); colon != std::string_view::npos)
            out.emplace(line.substr(0, colon), line.substr(colon + 1));
    }
    return out;
}

std::string server_version(Connection& redis) {
    auto info = parse_info(redis.command({"INFO", "server"}).as_string());
    return info["redis_version"];
}

ServerFacts server_facts(Connection& redis) {
    ServerFacts facts;
    for (const auto& m : redis.masters()) {
        auto info = parse_info(redis.node(m).command({"INFO"}).as_string());
        auto num = [&](const char* k) -> std::int64_t { return std::atoll(info[k].c_str()); };
        ++facts.nodes;
        facts.connected_clients += num("connected_clients");
        facts.used_memory_bytes += num("used_memory");
        const std::int64_t up = num("uptime_in_seconds");
        facts.uptime_s = facts.uptime_s ? std::min(*facts.uptime_s, up) : up;
        if (facts.version.empty()) facts.version = info["redis_version"];
        const std::string& policy = info["maxmemory_policy"];
        if (facts.nodes == 1)
            facts.maxmemory_policy = policy;
        else if (facts.maxmemory_policy != policy)
            facts.maxmemory_policy = "mixed";
    }
    return facts;
}

}  // namespace mq::redis
