#include "mq/redis/stream_commands.hpp"

#include <charconv>

namespace mq::redis {

namespace {

[[noreturn]] void bad_shape(std::string_view command, std::string_view what) {
    throw ReplyShapeError("unexpected " + std::string(command) +
                          " reply from Redis: " + std::string(what));
}

bool is_text(const Reply& r) {
    return r.type == Reply::Type::kString || r.type == Reply::Type::kStatus;
}

const std::string& text_of(const Reply& r, std::string_view command, std::string_view what) {
    if (!is_text(r)) bad_shape(command, std::string(what) + " is not a string");
    return r.str;
}

std::int64_t integer_of(const Reply& r, std::string_view command, std::string_view what) {
    if (r.type == Reply::Type::kInteger) return r.integer;
    if (is_text(r)) {
        std::int64_t v = 0;
        auto [p, ec] = std::from_chars(r.str.data(), r.str.data() + r.str.size(), v);
        if (ec == std::errc() && p == r.str.data() + r.str.size()) return v;
    }
    bad_shape(command, std::string(what) + " is not an integer");
}

std::optional<std::int64_t> optional_integer_of(const Reply& r, std::string_view command,
                                                std::string_view what) {
    if (r.is_nil()) return std::nullopt;
    return integer_of(r, command, what);
}

const std::vector<Reply>& array_of(const Reply& r, std::string_view command,
                                   std::string_view what) {
    if (!r.is_array()) bad_shape(command, std::string(what) + " is not an array");
    return r.elements;
}

// XINFO replies are flat [name, value, name, value...] lists; calls f(name, value).
template <class F>
void for_each_field(const Reply& r, std::string_view command, F&& f) {
    const auto& kv = array_of(r, command, "an info record");
    if (kv.size() % 2 != 0) bad_shape(command, "an info record has an odd number of elements");
    for (std::size_t i = 0; i < kv.size(); i += 2)
        f(text_of(kv[i], command, "a field name"), kv[i + 1]);
}

// [id, [field, value, ...]] or [id, nil] for an entry deleted while pending.
StreamEntry take_entry(Reply& e, std::string_view command) {
    if (!e.is_array() || e.elements.size() != 2) bad_shape(command, "an entry is not [id, fields]");
    StreamEntry out;
    if (!is_text(e.elements[0])) bad_shape(command, "an entry id is not a string");
    out.id = std::move(e.elements[0].str);
    Reply& kv = e.elements[1];
    if (kv.is_nil()) {
        out.deleted = true;
        return out;
    }
    if (!kv.is_array() || kv.elements.size() % 2 != 0)
        bad_shape(command, "entry fields are not name/value pairs");
    out.fields.reserve(kv.elements.size() / 2);
    for (std::size_t i = 0; i < kv.elements.size(); i += 2)
        out.fields.emplace_back(std::move(kv.elements[i].str), std::move(kv.elements[i + 1].str));
    return out;
}

std::vector<StreamEntry> take_entries(Reply& list, std::string_view command) {
    if (!list.is_array()) bad_shape(command, "the entry list is not an array");
    std::vector<StreamEntry> out;
    out.reserve(list.elements.size());
    for (auto& e : list.elements) {
        // XCLAIM on Redis < 7 answers nil for a claimed id whose entry was deleted.
        if (e.is_nil()) continue;
        out.push_back(take_entry(e, command));
    }
    return out;
}

bool no_such_key(const Reply& r) {
    return r.is_error() && r.str.find("no such key") != std::string::npos;
}

}  // namespace

std::optional<std::int64_t> stream_id_millis(std::string_view id) {
    std::int64_t ms = 0;
    auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), ms);
    if (ec != std::errc() || p == id.data() || ms < 0) return std::nullopt;
    if (p != id.data() + id.size() && *p != '-') return std::nullopt;
    return ms;
}

void throw_if_error(const Reply& reply, std::string_view command) {
    if (!reply.is_error()) return;
    if (reply.error_code() == "NOGROUP")
        throw Error(ErrorCode::kSubscriptionNotFound, std::string(command) + ": " + reply.str);
    throw reply_error(reply, command);
}

// ---- XREADGROUP --------------------------------------------------------------------------

std::vector<std::string> xreadgroup_command(const std::string& group, const std::string& consumer,
                                            const std::string& stream, int count,
                                            std::chrono::milliseconds block,
                                            const std::string& id) {
    std::vector<std::string> argv{"XREADGROUP", "GROUP", group,
                                  consumer,     "COUNT", std::to_string(count)};
    if (block.count() > 0) {
        argv.emplace_back("BLOCK");
        argv.push_back(std::to_string(block.count()));
    }
    argv.emplace_back("STREAMS");
    argv.push_back(stream);
    argv.push_back(id);
    return argv;
}

std::vector<StreamEntry> parse_xreadgroup(Reply&& reply) {
    constexpr std::string_view kCmd = "XREADGROUP";
    throw_if_error(reply, kCmd);
    if (reply.is_nil()) return {};
    auto& streams = reply.elements;
    if (!reply.is_array()) bad_shape(kCmd, "not an array of streams");
    if (streams.empty()) return {};
    if (streams.size() != 1) bad_shape(kCmd, "more than one stream in the reply");
    Reply& s = streams[0];
    if (!s.is_array() || s.elements.size() != 2) bad_shape(kCmd, "a stream is not [key, entries]");
    return take_entries(s.elements[1], kCmd);
}

// ---- XPENDING ----------------------------------------------------------------------------

std::vector<std::string> xpending_summary_command(const std::string& stream,
                                                  const std::string& group) {
    return {"XPENDING", stream, group};
}

PendingSummary parse_xpending_summary(const Reply& reply) {
    constexpr std::string_view kCmd = "XPENDING";
    throw_if_error(reply, kCmd);
    const auto& r = array_of(reply, kCmd, "the summary");
    if (r.size() != 4) bad_shape(kCmd, "the summary does not have 4 elements");
    PendingSummary out;
    out.count = integer_of(r[0], kCmd, "the count");
    if (!r[1].is_nil()) out.smallest_id = text_of(r[1], kCmd, "the smallest id");
    if (!r[2].is_nil()) out.greatest_id = text_of(r[2], kCmd, "the greatest id");
    if (!r[3].is_nil())
        for (const auto& c : array_of(r[3], kCmd, "the consumer list")) {
            const auto& pair = array_of(c, kCmd, "a consumer");
            if (pair.size() != 2) bad_shape(kCmd, "a consumer is not [name, count]");
            out.consumers.emplace_back(text_of(pair[0], kCmd, "a consumer name"),
                                       integer_of(pair[1], kCmd, "a consumer's count"));
        }
    return out;
}

std::vector<std::string> xpending_command(const std::string& stream, const std::string& group,
                                          int count, std::chrono::milliseconds min_idle,
                                          const std::string& consumer, const std::string& start,
                                          const std::string& end) {
    std::vector<std::string> argv{"XPENDING", stream, group};
    if (min_idle.count() > 0) {
        argv.emplace_back("IDLE");
        argv.push_back(std::to_string(min_idle.count()));
    }
    argv.push_back(start);
    argv.push_back(end);
    argv.push_back(std::to_string(count));
    if (!consumer.empty()) argv.push_back(consumer);
    return argv;
}

std::vector<PendingRow> parse_xpending(const Reply& reply) {
    constexpr std::string_view kCmd = "XPENDING";
    throw_if_error(reply, kCmd);
    std::vector<PendingRow> out;
    const auto& rows = array_of(reply, kCmd, "the pending list");
    out.reserve(rows.size());
    for (const auto& e : rows) {
        const auto& f = array_of(e, kCmd, "a pending row");
        if (f.size() != 4) bad_shape(kCmd, "a pending row is not [id, consumer, idle, deliveries]");
        out.push_back(PendingRow{text_of(f[0], kCmd, "an id"), text_of(f[1], kCmd, "a consumer"),
                                 integer_of(f[2], kCmd, "an idle time"),
                                 integer_of(f[3], kCmd, "a delivery count")});
    }
    return out;
}

// ---- XINFO -------------------------------------------------------------------------------

std::vector<std::string> xinfo_groups_command(const std::string& stream) {
    return {"XINFO", "GROUPS", stream};
}

std::vector<GroupInfo> parse_xinfo_groups(const Reply& reply) {
    constexpr std::string_view kCmd = "XINFO GROUPS";
    if (no_such_key(reply)) return {};
    throw_if_error(reply, kCmd);
    std::vector<GroupInfo> out;
    for (const auto& g : array_of(reply, kCmd, "the group list")) {
        GroupInfo info;
        for_each_field(g, kCmd, [&](const std::string& field, const Reply& v) {
            if (field == "name")
                info.name = text_of(v, kCmd, "name");
            else if (field == "consumers")
                info.consumers = integer_of(v, kCmd, "consumers");
            else if (field == "pending")
                info.pending = integer_of(v, kCmd, "pending");
            else if (field == "last-delivered-id")
                info.last_delivered_id = text_of(v, kCmd, "last-delivered-id");
            else if (field == "entries-read")
                info.entries_read = optional_integer_of(v, kCmd, "entries-read");
            else if (field == "lag")
                info.lag = optional_integer_of(v, kCmd, "lag");
        });
        if (info.name.empty()) bad_shape(kCmd, "a group has no name");
        out.push_back(std::move(info));
    }
    return out;
}

std::vector<std::string> xinfo_consumers_command(const std::string& stream,
                                                 const std::string& group) {
    return {"XINFO", "CONSUMERS", stream, group};
}

std::vector<ConsumerInfo> parse_xinfo_consumers(const Reply& reply) {
    constexpr std::string_view kCmd = "XINFO CONSUMERS";
    if (no_such_key(reply) || reply.error_code() == "NOGROUP") return {};
    throw_if_error(reply, kCmd);
    std::vector<ConsumerInfo> out;
    for (const auto& c : array_of(reply, kCmd, "the consumer list")) {
        ConsumerInfo info;
        for_each_field(c, kCmd, [&](const std::string& field, const Reply& v) {
            if (field == "name")
                info.name = text_of(v, kCmd, "name");
            else if (field == "pending")
                info.pending = integer_of(v, kCmd, "pending");
            else if (field == "idle")
                info.idle_ms = integer_of(v, kCmd, "idle");
            else if (field == "inactive")
                info.inactive_ms = optional_integer_of(v, kCmd, "inactive");
        });
        out.push_back(std::move(info));
    }
    return out;
}

std::vector<std::string> xinfo_stream_command(const std::string& stream) {
    return {"XINFO", "STREAM", stream};
}

std::optional<StreamInfo> parse_xinfo_stream(const Reply& reply) {
    constexpr std::string_view kCmd = "XINFO STREAM";
    if (no_such_key(reply)) return std::nullopt;
    throw_if_error(reply, kCmd);
    StreamInfo info;
    for_each_field(reply, kCmd, [&](const std::string& field, const Reply& v) {
        if (field == "length")
            info.length = integer_of(v, kCmd, "length");
        else if (field == "groups")
            info.groups = integer_of(v, kCmd, "groups");
        else if (field == "last-generated-id")
            info.last_generated_id = text_of(v, kCmd, "last-generated-id");
        else if (field == "entries-added")
            info.entries_added = optional_integer_of(v, kCmd, "entries-added");
        else if (field == "first-entry" || field == "last-entry") {
            if (v.is_nil()) return;
            Reply copy = v;
            auto entry = take_entry(copy, kCmd);
            (field == "first-entry" ? info.first_entry : info.last_entry) = std::move(entry);
        }
    });
    return info;
}

// ---- XCLAIM / XAUTOCLAIM -----------------------------------------------------------------

std::vector<std::string> xclaim_command(const std::string& stream, const std::string& group,
                                        const std::string& consumer,
                                        std::chrono::milliseconds min_idle,
                                        const std::vector<std::string>& ids,
                                        const ClaimOptions& options) {
    std::vector<std::string> argv{"XCLAIM", stream, group, consumer,
                                  std::to_string(min_idle.count())};
    argv.insert(argv.end(), ids.begin(), ids.end());
    if (options.idle) {
        argv.emplace_back("IDLE");
        argv.push_back(std::to_string(options.idle->count()));
    }
    if (options.retry_count) {
        argv.emplace_back("RETRYCOUNT");
        argv.push_back(std::to_string(*options.retry_count));
    }
    if (options.just_id) argv.emplace_back("JUSTID");
    return argv;
}

std::vector<StreamEntry> parse_xclaim(Reply&& reply) {
    constexpr std::string_view kCmd = "XCLAIM";
    throw_if_error(reply, kCmd);
    if (!reply.is_array()) bad_shape(kCmd, "not an array");
    std::vector<StreamEntry> out;
    out.reserve(reply.elements.size());
    for (auto& e : reply.elements) {
        if (e.is_nil()) continue;  // Redis < 7: a claimed id whose entry was deleted
        if (is_text(e)) {          // JUSTID
            out.push_back(StreamEntry{std::move(e.str), {}, false});
            continue;
        }
        out.push_back(take_entry(e, kCmd));
    }
    return out;
}

std::vector<std::string> xautoclaim_command(const std::string& stream, const std::string& group,
                                            const std::string& consumer,
                                            std::chrono::milliseconds min_idle,
                                            const std::string& start, int count, bool just_id) {
    std::vector<std::string> argv{"XAUTOCLAIM",
                                  stream,
                                  group,
                                  consumer,
                                  std::to_string(min_idle.count()),
                                  start,
                                  "COUNT",
                                  std::to_string(count)};
    if (just_id) argv.emplace_back("JUSTID");
    return argv;
}

AutoClaimed parse_xautoclaim(Reply&& reply) {
    constexpr std::string_view kCmd = "XAUTOCLAIM";
    throw_if_error(reply, kCmd);
    if (!reply.is_array() || reply.elements.size() < 2 || reply.elements.size() > 3)
        bad_shape(kCmd, "not [cursor, entries, deleted ids]");
    AutoClaimed out;
    out.next_cursor = text_of(reply.elements[0], kCmd, "the cursor");
    Reply& list = reply.elements[1];
    if (!list.is_array()) bad_shape(kCmd, "the entry list is not an array");
    for (auto& e : list.elements) {
        if (is_text(e))
            out.entries.push_back(StreamEntry{std::move(e.str), {}, false});  // JUSTID
        else if (!e.is_nil())
            out.entries.push_back(take_entry(e, kCmd));
    }
    if (reply.elements.size() == 3)
        for (const auto& id : array_of(reply.elements[2], kCmd, "the deleted id list"))
            out.deleted_ids.push_back(text_of(id, kCmd, "a deleted id"));
    return out;
}

}  // namespace mq::redis
