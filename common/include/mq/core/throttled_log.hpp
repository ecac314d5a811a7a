#pragma once

// A warning that may repeat many times a second (accept failing for want of descriptors,
// a backend down for every request) is written at most once per interval, with the
// number of occurrences it stands for: the log says what happens, and cannot fill a disk.

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace mq {

/// One repeated log message, written at most once per `interval`. Thread-safe, lock-free.
class ThrottledLog {
  public:
    explicit ThrottledLog(std::chrono::milliseconds interval = std::chrono::seconds(10))
        : interval_ms_(interval.count()) {}

    /// Whether this occurrence is to be written; when it is, the number of occurrences
    /// dropped since the last written one (0 the first time).
    std::optional<std::uint64_t> admit();

    /// spdlog::log(level, ...) for an admitted occurrence, with " (N more in the last Xs)"
    /// appended when some were dropped.
    template <class... Args>
    void log(spdlog::level::level_enum level, spdlog::format_string_t<Args...> fmt,
             Args&&... args) {
        if (!spdlog::should_log(level)) return;
        auto dropped = admit();
        if (!dropped) return;
        std::string text = fmt::format(fmt, std::forward<Args>(args)...);
        if (*dropped > 0)
            spdlog::log(level, "{} ({} more like this in the last {} s)", text, *dropped,
                        interval_ms_ / 1000.0);
        else
            spdlog::log(level, "{}", text);
    }
    template <class... Args>
    void warn(spdlog::format_string_t<Args...> fmt, Args&&... args) {
        log(spdlog::level::warn, fmt, std::forward<Args>(args)...);
    }
    template <class... Args>
    void error(spdlog::format_string_t<Args...> fmt, Args&&... args) {
        log(spdlog::level::err, fmt, std::forward<Args>(args)...);
    }

    /// Occurrences seen in total (written or not).
    std::uint64_t total() const { return total_.load(std::memory_order_relaxed); }

  private:
    std::int64_t interval_ms_;
    std::atomic<std::int64_t> next_ms_{0};  // steady clock, ms: earliest next write
    std::atomic<std::uint64_t> dropped_{0};
    std::atomic<std::uint64_t> total_{0};
};

}  // namespace mq
