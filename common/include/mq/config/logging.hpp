#pragma once

#include <string>

#include "mq/config/config.hpp"

namespace mq {

/// Makes a stderr logger called `name` the default, at LOG_LEVEL, as text or as JSON
/// lines (LOG_FORMAT=json, mq/core/log_format.hpp), both with the thread's log context
/// (mq/core/log_context.hpp). Shared by mq-worker and mq-api.
void setup_logging(const std::string& name, const Config& config);

/// Reports the error that ends the process: "<name>: <message>" on stderr, or, once
/// setup_logging chose JSON, a JSON line at level "critical" (so every line of a JSON log
/// parses, the last one included).
void log_fatal(const std::string& name, const std::string& message);

}  // namespace mq
