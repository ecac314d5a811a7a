#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "mq/redis/client.hpp"

namespace mq::redis {

/// INFO's "key:value" lines as a map ("# Section" headers and blank lines skipped).
std::map<std::string, std::string> parse_info(std::string_view text);

/// The server's version ("7.0.15"), from INFO server's redis_version line; empty when the
/// reply has none.
std::string server_version(Connection& redis);

/// What an operator asks of Redis as a whole: every master of a cluster (the one server
/// otherwise), clients and memory summed, the shortest uptime, the first master's version,
/// the eviction policy when all agree ("mixed" otherwise).
struct ServerFacts {
    std::string version;
    std::size_t nodes = 0;
    std::int64_t connected_clients = 0;
    std::int64_t used_memory_bytes = 0;
    std::optional<std::int64_t> uptime_s;
    std::string maxmemory_policy;
};
ServerFacts server_facts(Connection& redis);

}  // namespace mq::redis
