#include "mq/redis/server_version.hpp"

#include <sstream>

namespace mq::redis {

std::string server_version(Connection& redis) {
    // INFO server: "# Server\r\nredis_version:7.0.15\r\n..."
    std::istringstream lines(redis.command({"INFO", "server"}).as_string());
    std::string line;
    const std::string key = "redis_version:";
    while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.compare(0, key.size(), key) == 0) return line.substr(key.size());
    }
    return {};
}

}  // namespace mq::redis
