#pragma once

#include <string>
#include <vector>

#include "mq/config/config.hpp"

namespace mq {

/// The settings whose values differ between two configurations, by environment name
/// (REDIS_URL, LOG_LEVEL, TLS_CERT_FILE...), in the order Config declares them. What a
/// reload (SIGHUP) compares: each daemon applies the names it can change while running and
/// logs the others as needing a restart.
std::vector<std::string> changed_settings(const Config& before, const Config& after);

}  // namespace mq
