#include "mq/consume/entry_ref.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "mq/error.hpp"

namespace mq {

EntryRef parse_entry_ref(std::string_view text, std::string_view listed_by) {
    auto bad = [&]() {
        return ValidationError("invalid entry id '" + printable(text) + "': use the ID column of " +
                                   std::string(listed_by) +
                                   " (partition:stream-id, e.g. 0:1700000000000-0)",
                               {{"id", printable(text)}});
    };
    auto all_digits = [](std::string_view s) {
        return !s.empty() &&
               std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    auto colon = text.find(':');
    if (colon == std::string_view::npos || colon == 0) throw bad();
    EntryRef r;
    r.text = std::string(text);
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + colon, r.partition);
    if (ec != std::errc() || ptr != text.data() + colon || r.partition < 0) throw bad();
    std::string_view sid = text.substr(colon + 1);
    auto dash = sid.find('-');
    // Each half of a stream id is a 64-bit unsigned number; more digits are not an id
    // Redis would take (it answers "Invalid stream ID", which is not a usage error).
    auto u64 = [&](std::string_view s) {
        std::uint64_t v = 0;
        auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), v);
        return all_digits(s) && err == std::errc() && end == s.data() + s.size();
    };
    if (!u64(sid.substr(0, dash)) || (dash != std::string_view::npos && !u64(sid.substr(dash + 1))))
        throw bad();
    r.stream_id = std::string(sid);
    if (dash == std::string_view::npos) r.stream_id += "-0";
    return r;
}

std::string entry_ref_text(int partition, const std::string& stream_id) {
    return std::to_string(partition) + ":" + stream_id;
}

}  // namespace mq
