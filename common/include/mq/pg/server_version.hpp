#pragma once

#include <string>

#include "mq/pg/database.hpp"

namespace mq::pg {

/// The server's version as it reports it (SHOW server_version: "15.8 (Debian 15.8-0+deb12u1)").
std::string server_version(Database& db);

}  // namespace mq::pg
