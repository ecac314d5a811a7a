#pragma once

// The two formats of mq's logs (LOG_FORMAT): text for terminals, JSON lines for
// collectors. Both add the thread's log context (mq/core/log_context.hpp).

#include <spdlog/formatter.h>

#include <memory>
#include <string>
#include <string_view>

namespace mq {

/// One JSON object per line, valid whatever the message holds (quotes, newlines, control
/// characters escaped; bytes of invalid UTF-8 replaced by U+FFFD):
/// {"time":"2026-12-03T16:36:21.123Z","level":"warning","service":"mq-worker",
///  "message":"...", <context fields>}. Context keys that would repeat one of the four
/// fixed keys are left out.
class JsonLogFormatter final : public spdlog::formatter {
  public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
    std::unique_ptr<spdlog::formatter> clone() const override;
};

/// spdlog's default text line ("[2026-12-03 17:36:21.123] [mq-worker] [warning] ...", local
/// time, level colored on a terminal) followed by the context fields shown in text, as
/// " [tenant=acme queue=orders]"; a value with spaces, quotes or control characters is
/// quoted and escaped. Without context the line is exactly spdlog's default.
std::unique_ptr<spdlog::formatter> make_text_log_formatter();

/// The formatter for LOG_FORMAT: "json", else text.
std::unique_ptr<spdlog::formatter> make_log_formatter(std::string_view format);

/// The JSON line of one message as JsonLogFormatter writes it, without the newline (for
/// tests and tools).
std::string json_log_line(const spdlog::details::log_msg& msg);

}  // namespace mq
