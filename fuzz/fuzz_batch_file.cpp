// A JSON-lines batch file through the first pass of `mqctl publish --batch` (parse and
// validate every line, spool to a stream), with a small message limit so the line bound
// is reached too.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "mq/error.hpp"
#include "mq/publish/batch_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    std::ostringstream spool;
    mq::PublishLimits limits;
    limits.max_message_size = 512;
    mq::BatchOptions options;
    mq::BatchReport report;
    try {
        auto bad = mq::check_json_lines(in, limits, options, report, &spool);
        if (report.invalid.size() > bad.size()) __builtin_trap();
        if (report.invalid.size() > 100) __builtin_trap();
    } catch (const mq::Error&) {
    }
    return 0;
}
