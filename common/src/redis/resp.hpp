#pragma once

// RESP encoding of commands, shared by the blocking and the asynchronous connection.

#include <charconv>
#include <string>
#include <vector>

namespace mq::redis::resp {

inline void append_header(std::string& out, char kind, std::size_t n) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
    (void)ec;
    out += kind;
    out.append(digits, end);
    out += "\r\n";
}

/// One command: *<argc> then $<len> <bytes> per argument.
inline void append_command(std::string& out, const std::vector<std::string>& argv) {
    append_header(out, '*', argv.size());
    for (const auto& a : argv) {
        append_header(out, '$', a.size());
        out += a;
        out += "\r\n";
    }
}

}  // namespace mq::redis::resp
