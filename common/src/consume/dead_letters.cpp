#include "mq/consume/dead_letters.hpp"

#include <algorithm>
#include <charconv>

#include "mq/consume/entry_ref.hpp"
#include "mq/core/time.hpp"

namespace mq {

namespace {

DeadLetter from_entry(int partition, const redis::Reply& entry) {
    DeadLetter d;
    d.partition = partition;
    d.dlq_id = entry.elements.at(0).str;
    FieldList fields;
    const auto& kv = entry.elements.at(1).elements;
    for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
        const std::string& f = kv[i].str;
        const std::string& v = kv[i + 1].str;
        if (f == "dlr") d.reason = v;
        else if (f == "dle") d.error = v;
        else if (f == "dla") std::from_chars(v.data(), v.data() + v.size(), d.attempts);
        else if (f == "dls") d.subscription = v;
        else if (f == "dlo") d.original_stream_id = v;
        else if (f == "dlt") std::from_chars(v.data(), v.data() + v.size(), d.dead_ms);
        else fields.emplace_back(f, v);
    }
    d.message = decode_fields(fields);
    return d;
}

std::int64_t id_millis(const std::string& id) {
    std::int64_t ms = 0;
    std::from_chars(id.data(), id.data() + id.size(), ms);
    return ms;
}

}  // namespace

nlohmann::json to_json(const DeadLetter& d) {
    return {{"id", d.handle()},
            {"partition", d.partition},
            {"message_id", d.message.id},
            {"key", d.message.key},
            {"headers", d.message.headers_json.empty() ? nlohmann::json::object()
                                                       : nlohmann::json::parse(d.message.headers_json, nullptr, false)},
            {"payload", d.message.payload},
            {"content_type", d.message.content_type},
            {"subscription", d.subscription},
            {"reason", d.reason},
            {"error", d.error},
            {"attempts", d.attempts},
            {"dead_at", format_rfc3339(d.dead_ms)},
            {"published_at", format_rfc3339(d.message.published_ms)},
            {"original_stream_id", d.original_stream_id}};
}

std::vector<DeadLetter> DeadLetterStore::list(const Queue& q, const std::string& subscription, std::size_t limit,
                                              std::optional<std::int64_t> since_ms) {
    std::vector<DeadLetter> all;
    const std::string low = since_ms ? std::to_string(*since_ms) : "-";
    for (int p = 0; p < q.partition_count; ++p) {
        // XREVRANGE dlq + <since> COUNT n, paging while a subscription filter drops entries.
        std::string high = "+";
        std::size_t kept = 0;
        for (;;) {
            auto r = redis_.command({"XREVRANGE", keys_.dead_letters(q.tenant, q.name, p), high, low, "COUNT",
                                     std::to_string(std::max<std::size_t>(limit, 100))});
            if (r.elements.empty()) break;
            for (const auto& e : r.elements) {
                DeadLetter d = from_entry(p, e);
                if (!subscription.empty() && d.subscription != subscription) continue;
                all.push_back(std::move(d));
                ++kept;
            }
            if (kept >= limit || r.elements.size() < std::max<std::size_t>(limit, 100)) break;
            high = "(" + r.elements.back().elements.at(0).str;
        }
    }
    std::sort(all.begin(), all.end(), [](const DeadLetter& a, const DeadLetter& b) {
        auto am = id_millis(a.dlq_id), bm = id_millis(b.dlq_id);
        return am != bm ? am > bm : a.dlq_id > b.dlq_id;
    });
    if (all.size() > limit) all.resize(limit);
    return all;
}

std::optional<DeadLetter> DeadLetterStore::find(const Queue& q, const std::string& handle) {
    EntryRef ref = parse_entry_ref(handle, "mqctl dlq list");
    if (ref.partition >= q.partition_count) return std::nullopt;
    auto r = redis_.command({"XRANGE", keys_.dead_letters(q.tenant, q.name, ref.partition), ref.stream_id,
                             ref.stream_id});
    if (r.elements.empty()) return std::nullopt;
    return from_entry(ref.partition, r.elements[0]);
}

std::int64_t DeadLetterStore::count(const Queue& q) {
    std::int64_t n = 0;
    for (int p = 0; p < q.partition_count; ++p)
        n += redis_.command({"XLEN", keys_.dead_letters(q.tenant, q.name, p)}).as_integer();
    return n;
}

PublishOutcome DeadLetterStore::replay(const Queue& from, const DeadLetter& d, const Queue& target,
                                       Publisher& publisher) {
    PublishRequest r;
    r.payload = d.message.payload;
    r.key = d.message.key;
    r.content_type = d.message.content_type;
    r.trace_id = d.message.trace_id;
    r.encryption_key_id = d.message.encryption_key_id;  // still sealed: keep its key id
    if (!d.message.headers_json.empty()) {
        auto h = nlohmann::json::parse(d.message.headers_json, nullptr, false);
        if (h.is_object())
            for (const auto& [k, v] : h.items())
                if (v.is_string()) r.headers[k] = v.get<std::string>();
    }
    r.headers["mq-replayed-from"] = d.message.id;
    PublishOutcome out = publisher.publish(target, r);  // throws: the dead letter stays
    redis_.command({"XDEL", keys_.dead_letters(from.tenant, from.name, d.partition), d.dlq_id});
    return out;
}

std::int64_t DeadLetterStore::purge(const Queue& q, std::optional<std::int64_t> before_ms) {
    std::int64_t removed = 0;
    for (int p = 0; p < q.partition_count; ++p) {
        const std::string key = keys_.dead_letters(q.tenant, q.name, p);
        if (!before_ms) {
            removed += redis_.command({"XLEN", key}).as_integer();
            redis_.command({"DEL", key});
        } else {
            // XTRIM MINID keeps entries at or after the cutoff.
            removed += redis_.command({"XTRIM", key, "MINID", std::to_string(*before_ms)}).as_integer();
        }
    }
    return removed;
}

}  // namespace mq
