#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mq {

/// Largest file read_input_file reads by default: schemas, handler JSON, payload files.
inline constexpr std::size_t kMaxInputFileBytes = 16 * 1024 * 1024;

/// Reads a file given by a user (`--file`, `--schema-file`...) with a bound: a directory,
/// a missing or unreadable file, or more than `max_bytes` (e.g. /dev/zero, a FIFO that never
/// ends is bounded the same way) throws ValidationError naming `what` and the path, with
/// details {"field": what}. Never reads more than max_bytes + 1 buffers' worth. "-" reads
/// standard input with the same bound.
std::string read_input_file(const std::string& path, std::string_view what,
                            std::size_t max_bytes = kMaxInputFileBytes);

}  // namespace mq
