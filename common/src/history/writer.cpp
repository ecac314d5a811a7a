#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

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

// The row of one buffer entry, or null when it is not an event we can store.
nlohmann::json row(const std::string& history_id, const HistoryEvent& e) {
    if (!is_uuid(e.message_id)) return nullptr;
    if (!known(e.kind, {history::kPublished, history::kAttempt, history::kDeadLettered,
                        history::kReplayed, history::kExpired}))
        return nullptr;
    if (!e.outcome.empty() &&
        !known(e.outcome, {"acked", "failed", "dead_lettered", "filtered", "dropped"}))
        return nullptr;
    std::int64_t ms = 0;
    const auto dash = history_id.find('-');
    const char* first = history_id.data();
    const char* last = first + (dash == std::string::npos ? history_id.size() : dash);
    if (std::from_chars(first, last, ms).ec != std::errc()) return nullptr;
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

}  // namespace

HistoryWriter::HistoryWriter(redis::Connection& redis, pg::Database& db, KeyLayout keys,
                             HistoryWriterOptions options)
    : redis_(redis), db_(db), keys_(std::move(keys)), options_(std::move(options)) {
    if (options_.batch < 1 || options_.batch > 100000)
        throw ValidationError("history batch must be between 1 and 100000", {{"field", "batch"}});
}

HistoryDrain HistoryWriter::drain(const Queue& q) {
    HistoryDrain out;
    // XRANGE h - + COUNT batch on every partition, one round trip.
    redis::Pipeline read;
    for (int p = 0; p < q.partition_count; ++p)
        read.add({"XRANGE", keys_.history(q.tenant, q.name, p), "-", "+", "COUNT",
                  std::to_string(options_.batch)});
    auto replies = redis_.execute(read);
    for (int p = 0; p < q.partition_count; ++p) {
        const redis::Reply& r = replies.at(static_cast<std::size_t>(p));
        if (r.is_error()) throw redis::reply_error(r, "XRANGE history");
        if (!r.is_array() || r.elements.empty()) continue;
        nlohmann::json rows = nlohmann::json::array();
        std::vector<std::string> ids;
        ids.reserve(r.elements.size());
        for (const auto& entry : r.elements) {
            if (!entry.is_array() || entry.elements.size() < 2) continue;
            const std::string& id = entry.elements[0].str;
            ids.push_back(id);
            FieldList fields;
            const auto& kv = entry.elements[1].elements;
            for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
                fields.emplace_back(kv[i].str, kv[i + 1].str);
            auto j = row(id, decode_history_fields(fields));
            if (j.is_null()) {
                ++out.malformed;
                spdlog::warn("history of {}/{} partition {}: entry {} is not an event; dropped",
                             q.tenant, q.name, p, id);
                continue;
            }
            rows.push_back(std::move(j));
        }
        if (!rows.empty()) {
            const std::string payload =
                rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            db_.transact(
                [&](pqxx::work& tx) { db_.exec(tx, kInsertEvents, q.tenant, q.name, p, payload); });
            out.written += static_cast<std::int64_t>(rows.size());
        }
        if (options_.before_delete) options_.before_delete();
        // XDEL h id...: exactly what was committed (or dropped as malformed).
        std::vector<std::string> xdel{"XDEL", keys_.history(q.tenant, q.name, p)};
        xdel.insert(xdel.end(), ids.begin(), ids.end());
        redis_.command(xdel);
        if (static_cast<std::int64_t>(r.elements.size()) >= options_.batch) out.more = true;
    }
    return out;
}

}  // namespace mq
