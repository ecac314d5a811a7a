#include <algorithm>
#include <cctype>
#include <charconv>

#include "mq/core/codec.hpp"
#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/history/history.hpp"

namespace mq {

namespace {

#define MQ_EVENT_MS "(extract(epoch FROM at) * 1000)::bigint"

const pg::Statement kTimeline{
    "mq_history_timeline",
    "SELECT event, " MQ_EVENT_MS
    ", topic_name, partition, subscription_name, consumer, "
    "attempt, outcome, duration_ms, error, publisher, message_key, headers::text, payload_size, "
    "trace_id, stream_id, detail FROM message_events WHERE tenant_id = $1 AND message_id = "
    "$2::uuid ORDER BY at, id LIMIT $3"};

// One page of a queue's recorded messages, newest first, by keyset (at, message_id): the
// cursor is the last row's pair, so a page costs the same however deep it is. The status
// of each message comes from its other events (one index lookup per message).
const pg::Statement kList{
    "mq_history_list",
    "SELECT p.message_id::text, "
    "(extract(epoch FROM p.at) * 1000000)::bigint, p.partition, "
    "p.publisher, p.message_key, p.payload_size, p.trace_id, f.acked, f.failed, f.dead, "
    "f.expired, f.replayed, f.settled, f.attempts "
    "FROM message_events p CROSS JOIN LATERAL ("
    "  SELECT coalesce(bool_or(e.outcome = 'acked'), false) AS acked,"
    "         coalesce(bool_or(e.outcome = 'failed'), false) AS failed,"
    "         coalesce(bool_or(e.event = 'dead_lettered'), false) AS dead,"
    "         coalesce(bool_or(e.event = 'expired'), false) AS expired,"
    "         coalesce(bool_or(e.event = 'replayed'), false) AS replayed,"
    "         coalesce(bool_or(e.outcome IN ('dropped', 'filtered')), false) AS settled,"
    "         count(*) FILTER (WHERE e.event = 'attempt' OR e.event = 'dead_lettered') AS attempts"
    "  FROM message_events e WHERE e.message_id = p.message_id AND e.tenant_id = p.tenant_id"
    ") f "
    "WHERE p.tenant_id = $1 AND p.topic_name = $2 AND p.event = 'published' "
    "AND ($3::bigint IS NULL OR p.at >= 'epoch'::timestamptz + $3 * interval '1 millisecond') "
    "AND ($4::bigint IS NULL OR (p.at, p.message_id) < "
    "     ('epoch'::timestamptz + $4 * interval '1 microsecond', $5::uuid)) "
    "AND CASE $6::text "
    "  WHEN '' THEN true "
    "  WHEN 'acked' THEN f.acked "
    "  WHEN 'failed' THEN f.failed "
    "  WHEN 'dead_lettered' THEN f.dead "
    "  WHEN 'expired' THEN f.expired "
    "  WHEN 'replayed' THEN f.replayed "
    "  ELSE NOT (f.acked OR f.dead OR f.expired OR f.settled) END "
    "ORDER BY p.at DESC, p.message_id DESC LIMIT $7"};

const pg::Statement kPurge{
    "mq_history_purge",
    "DELETE FROM message_events WHERE id IN (SELECT id FROM message_events WHERE at < now() - "
    "$1 * interval '1 millisecond' LIMIT $2)"};

constexpr std::string_view kCursorVersion = "h1";

std::string encode_cursor(std::int64_t at_us, const std::string& message_id) {
    return codec::base64url_encode(std::string(kCursorVersion) + "|" + std::to_string(at_us) + "|" +
                                   message_id);
}

// The cursor's (at in microseconds, message id); ValidationError {"field": "cursor"} for
// anything that is not one of ours.
std::pair<std::int64_t, std::string> decode_cursor(const std::string& text) {
    auto bad = [] {
        return ValidationError("cursor is not one this server gave out; start again without it",
                               {{"field", "cursor"}});
    };
    if (text.size() > 256) throw bad();
    auto raw = codec::base64url_decode(text);
    if (!raw) throw bad();
    const std::string& s = *raw;
    auto a = s.find('|');
    auto b = a == std::string::npos ? a : s.find('|', a + 1);
    if (b == std::string::npos || s.substr(0, a) != kCursorVersion) throw bad();
    std::int64_t us = 0;
    const char* first = s.data() + a + 1;
    const char* last = s.data() + b;
    auto [end, ec] = std::from_chars(first, last, us);
    // Between 1970 and 9999 (microseconds): any other value is not a time we gave out,
    // and would overflow PostgreSQL's timestamp arithmetic.
    if (ec != std::errc() || end != last || us < 0 || us > 253402300799999999) throw bad();
    std::string id = s.substr(b + 1);
    if (!is_uuid(id)) throw bad();
    return {us, id};
}

std::string opt_text(const pqxx::field& f) { return f.is_null() ? std::string() : f.c_str(); }
std::int64_t opt_int(const pqxx::field& f, std::int64_t fallback) {
    return f.is_null() ? fallback : f.as<std::int64_t>();
}

}  // namespace

bool is_uuid(const std::string& id) {
    if (id.size() != 36) return false;
    for (std::size_t i = 0; i < id.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? id[i] != '-' : std::isxdigit(static_cast<unsigned char>(id[i])) == 0)
            return false;
    }
    return true;
}

std::int64_t parse_since(const std::string& text, const std::string& field) {
    try {
        if (text.size() >= 10 && text[4] == '-') {
            std::int64_t ms = parse_rfc3339(text, field);
            if (ms < 0) throw ValidationError("before 1970");
            return ms;
        }
        return std::max<std::int64_t>(0, now_ms() - parse_duration(text, field).count());
    } catch (const ValidationError&) {
        throw ValidationError("invalid " + field + " '" + printable(text) +
                                  "': give an age like 30m, 1h, 2d or a time like "
                                  "2026-11-21T10:00:00Z",
                              {{"field", field}});
    }
}

void validate(const MessageFilter& f) {
    if (f.limit < 1 || f.limit > kMaxHistoryPage)
        throw ValidationError("limit must be from 1 to " + std::to_string(kMaxHistoryPage),
                              {{"field", "limit"}});
    const auto& known = history_statuses();
    if (!f.status.empty() && std::find(known.begin(), known.end(), f.status) == known.end())
        throw ValidationError(
            "status must be one of pending, failed, acked, dead_lettered, "
            "expired, replayed; got '" +
                printable(f.status) + "'",
            {{"field", "status"}});
    if (f.since_ms && (*f.since_ms < 0 || *f.since_ms > now_ms() + kMaxDuration.count()))
        throw ValidationError("since is out of range", {{"field", "since"}});
    if (!f.cursor.empty()) decode_cursor(f.cursor);
}

nlohmann::json to_json(const HistoryRecord& r) {
    const HistoryEvent& e = r.detail;
    nlohmann::json j = {{"event", r.event},
                        {"at", format_rfc3339(r.at_ms)},
                        {"queue", r.queue},
                        {"partition", r.partition}};
    auto put = [&](const char* k, const std::string& v) {
        if (!v.empty()) j[k] = v;
    };
    put("subscription", e.subscription);
    put("consumer", e.consumer);
    if (e.attempt > 0) j["attempt"] = e.attempt;
    put("outcome", e.outcome);
    if (e.duration_ms >= 0) j["duration_ms"] = e.duration_ms;
    put("error", e.error);
    put("producer", e.producer);
    put("key", e.key);
    if (!e.headers_json.empty()) {
        auto h = nlohmann::json::parse(e.headers_json, nullptr, false);
        if (h.is_object()) j["headers"] = h;
    }
    if (e.size >= 0) j["size"] = e.size;
    put("trace_id", e.trace_id);
    put("stream_id", e.stream_id);
    put("detail", e.detail);
    return j;
}

nlohmann::json to_json(const MessageSummary& s) {
    nlohmann::json j = {
        {"id", s.message_id},       {"queue", s.queue},
        {"partition", s.partition}, {"published_at", format_rfc3339(s.published_ms)},
        {"status", s.status},       {"attempts", s.attempts}};
    if (!s.producer.empty()) j["producer"] = s.producer;
    if (!s.key.empty()) j["key"] = s.key;
    if (s.size >= 0) j["size"] = s.size;
    if (!s.trace_id.empty()) j["trace_id"] = s.trace_id;
    return j;
}

MessageTimeline HistoryStore::timeline(const std::string& tenant, const std::string& message_id) {
    if (!is_uuid(message_id))
        throw ValidationError("message id must be a uuid, got '" + printable(message_id) + "'",
                              {{"field", "id"}});
    MessageTimeline out;
    db_.transact([&](pqxx::work& tx) {
        auto rows = db_.exec(tx, kTimeline, tenant, message_id,
                             static_cast<std::int64_t>(kMaxTimeline + 1));
        for (const auto& r : rows) {
            if (out.events.size() == kMaxTimeline) {
                out.truncated = true;
                break;
            }
            HistoryRecord& h = out.events.emplace_back();
            h.event = r[0].as<std::string>();
            h.at_ms = r[1].as<std::int64_t>();
            h.tenant = tenant;
            h.queue = r[2].as<std::string>();
            h.partition = r[3].as<int>();
            HistoryEvent& e = h.detail;
            e.kind = h.event;
            e.message_id = message_id;
            e.subscription = opt_text(r[4]);
            e.consumer = opt_text(r[5]);
            e.attempt = static_cast<int>(opt_int(r[6], 0));
            e.outcome = opt_text(r[7]);
            e.duration_ms = opt_int(r[8], -1);
            e.error = opt_text(r[9]);
            e.producer = opt_text(r[10]);
            e.key = opt_text(r[11]);
            e.headers_json = opt_text(r[12]);
            e.size = opt_int(r[13], -1);
            e.trace_id = opt_text(r[14]);
            e.stream_id = opt_text(r[15]);
            e.detail = opt_text(r[16]);
        }
    });
    if (out.events.empty())
        throw Error(ErrorCode::kNotFound,
                    "no history for message '" + message_id +
                        "' (unknown, another tenant's, not recorded, or past HISTORY_RETENTION)",
                    {{"id", message_id}});
    return out;
}

MessagePage HistoryStore::list(const std::string& tenant, const std::string& queue,
                               const MessageFilter& filter) {
    validate(filter);
    std::optional<std::int64_t> cursor_us;
    std::optional<std::string> cursor_id;
    if (!filter.cursor.empty()) {
        auto [us, id] = decode_cursor(filter.cursor);
        cursor_us = us;
        cursor_id = id;
    }
    MessagePage page;
    std::int64_t last_us = 0;
    db_.transact([&](pqxx::work& tx) {
        // A status that few messages have walks the whole retention window: bounded in
        // time, so one wide query cannot hold a connection (MQ_OVERLOADED, 503, instead).
        tx.exec("SET LOCAL statement_timeout = " + std::to_string(kListTimeout.count()));
        auto rows = db_.exec(tx, kList, tenant, queue, filter.since_ms, cursor_us, cursor_id,
                             filter.status, static_cast<std::int64_t>(filter.limit + 1));
        for (const auto& r : rows) {
            if (page.items.size() == filter.limit) {
                page.next_cursor = encode_cursor(last_us, page.items.back().message_id);
                break;
            }
            MessageSummary& s = page.items.emplace_back();
            s.message_id = r[0].as<std::string>();
            last_us = r[1].as<std::int64_t>();
            s.published_ms = last_us / 1000;
            s.queue = queue;
            s.partition = r[2].as<int>();
            s.producer = opt_text(r[3]);
            s.key = opt_text(r[4]);
            s.size = opt_int(r[5], -1);
            s.trace_id = opt_text(r[6]);
            const bool acked = r[7].as<bool>(), failed = r[8].as<bool>(), dead = r[9].as<bool>(),
                       expired = r[10].as<bool>(), replayed = r[11].as<bool>(),
                       settled = r[12].as<bool>();
            s.attempts = static_cast<int>(r[13].as<std::int64_t>());
            s.status = replayed  ? "replayed"
                       : dead    ? "dead_lettered"
                       : acked   ? "acked"
                       : expired ? "expired"
                       : settled ? "acked"
                       : failed  ? "failed"
                                 : "pending";
        }
    });
    return page;
}

std::int64_t HistoryStore::purge(std::chrono::milliseconds retention, std::int64_t batch,
                                 int max_batches, std::chrono::milliseconds budget) {
    std::int64_t removed = 0;
    const auto deadline = std::chrono::steady_clock::now() + budget;
    for (int i = 0; i < max_batches && std::chrono::steady_clock::now() < deadline; ++i) {
        auto n = db_.transact([&](pqxx::work& tx) {
            return static_cast<std::int64_t>(
                db_.exec(tx, kPurge, static_cast<std::int64_t>(retention.count()), batch)
                    .affected_rows());
        });
        removed += n;
        if (n < batch) break;
    }
    return removed;
}

}  // namespace mq
