#pragma once

#include <string>

#include "mq/redis/client.hpp"

namespace mq::redis {

/// The server's version ("7.0.15"), from INFO server's redis_version line; empty when the
/// reply has none.
std::string server_version(Connection& redis);

}  // namespace mq::redis
