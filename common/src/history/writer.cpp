#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include "mq/history/history.hpp"

namespace mq {

namespace {

// One partition's batch in one statement: the rows travel as a JSON array (libpqxx 6 has no
// array parameters). ON CONFLICT DO NOTHING on the buffer id: a batch committed before a
// crash, read again, inserts nothing twice.
const pg::Statement kInsertEvents{
    "mq_history_insert",
    "INSERT INTO message_events (tenant_id, topic_name, partition, history_id, message_id, "
    "event, at, subscription_name, consumer, attempt, outcome, duration_ms, error, publisher, "
    "message_key, headers, payload_size, trace_id, stream_id, detail) "
    "SELECT $1, $2, $3, r.hid, r.m::uuid, r.e, 'epoch'::timestamptz + r.ms * interval '1 "
    "millisecond', r.s, r.c, r.a, r.o, r.d, r.er, r.pr, r.k, r.h::jsonb, r.sz, r.tr, r.sid, r.x "
    "FROM jsonb_to_recordset($4::jsonb) AS r(hid text, m text, e text, ms bigint, s text, "
    "c text, a integer, o text, d bigint, er text, pr text, k text, h text, sz bigint, "
    "tr text, sid text, x text) "
    "ON CONFLICT (tenant_id, topic_name, partition, history_id) DO NOTHING"};

// JSON text per INSERT at most (one row may be larger alone): a batch of events with
// large headers stays far below PostgreSQL's 1 GB text and 256 MB jsonb limits, which would
// otherwise refuse the batch on every pass.
constexpr std::size_t kMaxInsertBytes = 16 * 1024 * 1024;

// `rows` (an array) as JSON arrays of at most `max_bytes` of text each.
std::vector<std::string> json_array_chunks(const nlohmann::json& rows, std::size_t max_bytes) {
    std::vector<std::string> chunks;
    std::string current;
    for (const auto& r : rows) {
        std::string text = r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        if (!current.empty() && current.size() + text.size() + 2 > max_bytes) {
            chunks.push_back(current + "]");
            current.clear();
        }
        current += current.empty() ? "[" : ",";
        current += text;
    }
    if (!current.empty()) chunks.push_back(current + "]");
    return chunks;
}

bool known(const std::string& v, std::initializer_list<const char*> names) {
    return std::any_of(names.begin(), names.end(), [&](const char* n) { return v == n; });
}

// Text PostgreSQL accepts: no NUL (text cannot hold it); invalid UTF-8 is replaced when the
// row is dumped.
nlohmann::json text(const std::string& v) {
    if (v.empty()) return nullptr;
    std::string out = v;
    out.erase(std::remove(out.begin(), out.end(), '\0'), out.end());
    return out;
}

// The time part of a stream id ("<ms>-<seq>"), or nullopt.
std::optional<std::int64_t> id_ms(const std::string& id) {
    std::int64_t ms = 0;
    const auto dash = id.find('-');
    const char* first = id.data();
    const char* last = first + (dash == std::string::npos ? id.size() : dash);
    if (std::from_chars(first, last, ms).ec != std::errc()) return std::nullopt;
    return ms;
}

// A whole decimal number, or nullopt.
std::optional<std::int64_t> number(const std::string& text) {
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return v;
}

// The row of one event, or null when it is not an event we can store.
nlohmann::json row(const std::string& history_id, std::int64_t ms, const HistoryEvent& e) {
    if (!is_uuid(e.message_id) || ms < 0) return nullptr;
    if (!known(e.kind, {history::kPublished, history::kAttempt, history::kDeadLettered,
                        history::kReplayed, history::kExpired}))
        return nullptr;
    if (!e.outcome.empty() &&
        !known(e.outcome, {"acked", "failed", "dead_lettered", "filtered", "dropped"}))
        return nullptr;
    nlohmann::json headers = nullptr;
    if (!e.headers_json.empty()) {
        auto h = nlohmann::json::parse(e.headers_json, nullptr, false);
        if (h.is_object())
            headers = h.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    return {{"hid", history_id},
            {"m", e.message_id},
            {"e", e.kind},
            {"ms", ms},
            {"s", text(e.subscription)},
            {"c", text(e.consumer)},
            {"a", e.attempt > 0 ? nlohmann::json(e.attempt) : nlohmann::json(nullptr)},
            {"o", text(e.outcome)},
            {"d", e.duration_ms >= 0 ? nlohmann::json(e.duration_ms) : nlohmann::json(nullptr)},
            {"er", text(e.error)},
            {"pr", text(e.producer)},
            {"k", text(e.key)},
            {"h", headers},
            {"sz", e.size >= 0 ? nlohmann::json(e.size) : nlohmann::json(nullptr)},
            {"tr", text(e.trace_id)},
            {"sid", text(e.stream_id)},
            {"x", text(e.detail)}};
}

// The entries of a recording queue's stream after the history cursor (hash: "id" the last
// entry read, "n" how many entries had been added to the stream up to it), without their
// payloads. Returns {n after these entries, entry, entry, ...}; an entry is {stream id,
// field, value, ...} with the message id ("m"), producer ("pr"), key, headers, trace id,
// publish time ("t") and payload size ("sz"), or only the id for an entry that is not to
// be recorded (no "pr": published while recording was off; "dl": moved from the delayed
// set, recorded when it was delayed). "n" lets the inspector count the unread entries
// (entries-added - n) without reading them; it is reset to entries-added whenever a read
// reaches the end, so a purge cannot leave it wrong for long.
// KEYS: stream, history cursor. ARGV: count.
const redis::Script kReadPublished(R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local count = tonumber(ARGV[1])
local read = redis.call('HGET', KEYS[2], 'id')
local n = tonumber(redis.call('HGET', KEYS[2], 'n') or '')
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local added = 0
for i = 1, #info, 2 do if info[i] == 'entries-added' then added = info[i + 1] end end
local from = '-'
if read then from = '(' .. read end
if not read or not n then n = added - redis.call('XLEN', KEYS[1]) end
local entries = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', count)
local out = {}
if #entries < count then out[1] = added else out[1] = n + #entries end
for i, e in ipairs(entries) do
  local f = e[2]
  local row = {e[1]}
  local recorded, delayed = false, false
  for j = 1, #f - 1, 2 do
    local name, value = f[j], f[j + 1]
    if name == 'pr' then
      recorded = true
      row[#row + 1] = 'pr'; row[#row + 1] = value
    elseif name == 'dl' then
      delayed = true
    elseif name == 'id' then
      row[#row + 1] = 'm'; row[#row + 1] = value
    elseif name == 'p' then
      row[#row + 1] = 'sz'; row[#row + 1] = tostring(#value)
    elseif name == 'k' or name == 'h' or name == 'tr' or name == 't' then
      row[#row + 1] = name; row[#row + 1] = value
    end
  end
  if not recorded or delayed then row = {e[1]} end
  out[i + 1] = row
end
return out
)lua");

}  // namespace

HistoryWriter::HistoryWriter(redis::Connection& redis, pg::Database& db, KeyLayout keys,
                             HistoryWriterOptions options)
    : redis_(redis), db_(db), keys_(std::move(keys)), options_(std::move(options)) {
    if (options_.batch < 1 || options_.batch > 100000)
        throw ValidationError("history batch must be between 1 and 100000", {{"field", "batch"}});
}

HistoryDrain HistoryWriter::drain(const Queue& q) {
    HistoryDrain out;
    const std::string count = std::to_string(options_.batch);
    // One round trip: per partition XRANGE h - + COUNT batch, and for a recording queue the
    // stream's entries after the history cursor (the published events).
    redis::Pipeline read;
    for (int p = 0; p < q.partition_count; ++p) {
        read.add({"XRANGE", keys_.history(q.tenant, q.name, p), "-", "+", "COUNT", count});
        if (q.record_messages)
            read.add_script(
                kReadPublished,
                {keys_.stream(q.tenant, q.name, p), keys_.history_cursor(q.tenant, q.name, p)},
                {count});
    }
    auto replies = redis_.execute(read);
    std::size_t next = 0;
    for (int p = 0; p < q.partition_count; ++p) {
        const redis::Reply& r = replies.at(next++);
        const redis::Reply* stream = q.record_messages ? &replies.at(next++) : nullptr;
        if (r.is_error()) throw redis::reply_error(r, "XRANGE history");
        if (stream && stream->is_error()) throw redis::reply_error(*stream, "history read");
        nlohmann::json rows = nlohmann::json::array();
        auto add = [&](const std::string& hid, std::int64_t ms, const HistoryEvent& e,
                       const std::string& where) {
            auto j = row(hid, ms, e);
            if (j.is_null()) {
                ++out.malformed;
                spdlog::warn("history of {}/{} partition {}: {} {} is not an event; dropped",
                             q.tenant, q.name, p, where, hid);
                return;
            }
            rows.push_back(std::move(j));
        };
        // Stream entries first (a published event precedes what happened to the message
        // when both have the same millisecond): the entry is the published event. Its row id is
        // "s:<stream id>" (buffer ids are bare), its time the entry's publish time.
        std::string last_read;
        std::int64_t added_through = 0;
        std::size_t stream_entries = 0;
        if (stream && stream->is_array() && !stream->elements.empty()) {
            added_through = stream->elements[0].as_integer();
            stream_entries = stream->elements.size() - 1;
            for (std::size_t k = 1; k < stream->elements.size(); ++k) {
                const redis::Reply& entry = stream->elements[k];
                if (!entry.is_array() || entry.elements.empty()) continue;
                last_read = entry.elements[0].str;
                if (entry.elements.size() < 2) continue;  // not to be recorded
                // The script named the fields as the buffer's events do (m, pr, k, h, tr,
                // sz), plus t, the publish time.
                FieldList fields;
                std::int64_t ms = id_ms(last_read).value_or(-1);
                for (std::size_t i = 1; i + 1 < entry.elements.size(); i += 2) {
                    if (entry.elements[i].str == "t")
                        ms = number(entry.elements[i + 1].str).value_or(ms);
                    else
                        fields.emplace_back(entry.elements[i].str, entry.elements[i + 1].str);
                }
                HistoryEvent e = decode_history_fields(fields);
                e.kind = history::kPublished;
                e.stream_id = last_read;
                add("s:" + last_read, ms, e, "stream entry");
            }
        }
        // Buffer entries; an entry may hold several events (the worker's acked batch).
        std::vector<std::string> ids;
        if (r.is_array()) {
            ids.reserve(r.elements.size());
            for (const auto& entry : r.elements) {
                if (!entry.is_array() || entry.elements.size() < 2) continue;
                const std::string& id = entry.elements[0].str;
                ids.push_back(id);
                FieldList fields;
                const auto& kv = entry.elements[1].elements;
                for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
                    fields.emplace_back(kv[i].str, kv[i + 1].str);
                const auto ms = id_ms(id);
                const auto events = decode_history_entry(fields);
                for (std::size_t i = 0; i < events.size(); ++i)
                    add(i == 0 ? id : id + "#" + std::to_string(i), ms.value_or(-1), events[i],
                        "buffer entry");
            }
        }
        if (!rows.empty()) {
            const auto chunks = json_array_chunks(rows, kMaxInsertBytes);
            db_.transact([&](pqxx::work& tx) {
                for (const auto& chunk : chunks)
                    db_.exec(tx, kInsertEvents, q.tenant, q.name, p, chunk);
            });
            out.written += static_cast<std::int64_t>(rows.size());
        }
        if (ids.empty() && last_read.empty()) continue;
        if (options_.before_delete) options_.before_delete();
        // Exactly what was committed (or dropped as malformed): XDEL of the buffer entries,
        // and the cursor moved past the stream entries read, in one round trip.
        redis::Pipeline done;
        if (!ids.empty()) {
            std::vector<std::string> xdel{"XDEL", keys_.history(q.tenant, q.name, p)};
            xdel.insert(xdel.end(), ids.begin(), ids.end());
            done.add(std::move(xdel));
        }
        if (!last_read.empty())
            done.add({"HSET", keys_.history_cursor(q.tenant, q.name, p), "id", last_read, "n",
                      std::to_string(added_through)});
        for (const auto& reply : redis_.execute(done))
            if (reply.is_error()) throw redis::reply_error(reply, "history delete");
        const auto full = static_cast<std::size_t>(options_.batch);
        if (r.elements.size() >= full || stream_entries >= full) out.more = true;
    }
    return out;
}

}  // namespace mq
