#pragma once

#include <string>

#include "mq/config/config.hpp"

namespace mq {

/// Makes a stderr logger called `name` the default, at LOG_LEVEL, as text or as JSON
/// lines (LOG_FORMAT=json) with UTC timestamps. Shared by mq-worker and mq-api.
void setup_logging(const std::string& name, const Config& config);

}  // namespace mq
