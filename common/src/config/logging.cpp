#include "mq/config/logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <iostream>

#include "mq/core/log_format.hpp"

namespace mq {

namespace {
std::atomic<bool> json_logging{false};
}

void setup_logging(const std::string& name, const Config& config) {
    // Synchronous: the formatter runs on the thread that logs, where its LogScope lives.
    auto logger = spdlog::stderr_color_mt(name);
    logger->set_formatter(make_log_formatter(config.log_format));
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(config.log_level));
    json_logging = config.log_format == "json";
}

void log_fatal(const std::string& name, const std::string& message) {
    if (!json_logging) {
        std::cerr << name << ": " << message << '\n';
        return;
    }
    spdlog::critical("{}", message);
    spdlog::default_logger()->flush();
}

}  // namespace mq
