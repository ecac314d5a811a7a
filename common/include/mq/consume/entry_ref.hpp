#pragma once

#include <string>
#include <string_view>

namespace mq {

/// An entry named by an operator: "<partition>:<ms>[-<seq>]", as `mqctl pending` and
/// `mqctl dlq list` print it (stream ids alone repeat across partitions).
struct EntryRef {
    int partition = 0;
    std::string stream_id;  ///< always "<ms>-<seq>"
    std::string text;       ///< as given
};

/// Throws ValidationError saying where to find valid ids (`listed_by`, e.g. "mqctl
/// pending") when `text` is malformed.
EntryRef parse_entry_ref(std::string_view text, std::string_view listed_by);

/// "<partition>:<stream id>".
std::string entry_ref_text(int partition, const std::string& stream_id);

}  // namespace mq
