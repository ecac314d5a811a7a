#include "mq/consume/dead_letters.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <thread>
#include <tuple>

#include "mq/audit/audit_log.hpp"
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
        if (f == "dlr")
            d.reason = v;
        else if (f == "dle")
            d.error = v;
        else if (f == "dla")
            std::from_chars(v.data(), v.data() + v.size(), d.attempts);
        else if (f == "dls")
            d.subscription = v;
        else if (f == "dlo")
            d.original_stream_id = v;
        else if (f == "dlt")
            std::from_chars(v.data(), v.data() + v.size(), d.dead_ms);
        else
            fields.emplace_back(f, v);
    }
    d.message = decode_fields(fields);
    return d;
}

// (ms, seq) of a stream id "<ms>-<seq>".
std::pair<std::int64_t, std::int64_t> id_parts(const std::string& id) {
    std::int64_t ms = 0, seq = 0;
    auto dash = id.find('-');
    std::from_chars(id.data(), id.data() + (dash == std::string::npos ? id.size() : dash), ms);
    if (dash != std::string::npos)
        std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq);
    return {ms, seq};
}

// List order: newest first by stream id, then by partition (higher first).
bool newer(const DeadLetter& a, const DeadLetter& b) {
    auto ak = id_parts(a.dlq_id), bk = id_parts(b.dlq_id);
    return std::tie(ak.first, ak.second, a.partition) > std::tie(bk.first, bk.second, b.partition);
}

bool matches(const DeadLetter& d, const DeadLetterFilter& f) {
    return (f.subscription.empty() || d.subscription == f.subscription) &&
           (f.reason.empty() || d.reason == f.reason);
}

// A stream-id bound for XRANGE/XREVRANGE: (ms, seq), inclusive or not.
struct Bound {
    std::int64_t ms = 0, seq = 0;
    bool exclusive = false;
    std::string text() const {
        return (exclusive ? "(" : "") + std::to_string(ms) + "-" + std::to_string(seq);
    }
};

// The lower of two upper bounds (an exclusive bound is lower than an inclusive one at the same id).
std::optional<Bound> lower_of(std::optional<Bound> a, std::optional<Bound> b) {
    if (!a) return b;
    if (!b) return a;
    if (std::tie(a->ms, a->seq) != std::tie(b->ms, b->seq))
        return std::tie(a->ms, a->seq) < std::tie(b->ms, b->seq) ? a : b;
    return a->exclusive ? a : b;
}

constexpr std::size_t kScanCount = 200;

}  // namespace

nlohmann::json to_json(const DeadLetter& d) {
    return {{"id", d.handle()},
            {"partition", d.partition},
            {"message_id", d.message.id},
            {"key", d.message.key},
            {"headers", d.message.headers_json.empty()
                            ? nlohmann::json::object()
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

std::vector<DeadLetter> DeadLetterStore::list(const Queue& q, const std::string& subscription,
                                              std::size_t limit,
                                              std::optional<std::int64_t> since_ms) {
    DeadLetterFilter f;
    f.subscription = subscription;
    f.since_ms = since_ms;
    return page(q, f, limit).items;
}

namespace {

// Up to `want` dead letters of one partition matching `f` between `low` and `high`
// (XRANGE, or XREVRANGE when `newest_first`), paging while the filter drops entries.
std::vector<DeadLetter> scan(redis::Connection& redis, const std::string& key, int partition,
                             bool newest_first, std::string low, std::string high,
                             const DeadLetterFilter& f, std::size_t want) {
    std::vector<DeadLetter> out;
    for (;;) {
        // XREVRANGE key high low COUNT n | XRANGE key low high COUNT n
        auto r =
            newest_first
                ? redis.command({"XREVRANGE", key, high, low, "COUNT", std::to_string(kScanCount)})
                : redis.command({"XRANGE", key, low, high, "COUNT", std::to_string(kScanCount)});
        for (const auto& e : r.elements) {
            DeadLetter d = from_entry(partition, e);
            if (matches(d, f)) out.push_back(std::move(d));
            if (out.size() >= want) return out;
        }
        if (r.elements.size() < kScanCount) return out;
        const std::string& last = r.elements.back().elements.at(0).str;
        (newest_first ? high : low) = "(" + last;
    }
}

// The cursor of a page request, checked against the queue.
std::optional<EntryRef> cursor_of(const Queue& q, const std::string& after) {
    if (after.empty()) return std::nullopt;
    try {
        EntryRef ref = parse_entry_ref(after, "the previous page's next_cursor");
        if (ref.partition >= q.partition_count) throw ValidationError("no such partition");
        return ref;
    } catch (const ValidationError&) {
        throw ValidationError(
            "invalid cursor '" + printable(after) + "': pass next_cursor of the previous page",
            {{"field", "cursor"}});
    }
}

}  // namespace

DeadLetterPage DeadLetterStore::page(const Queue& q, const DeadLetterFilter& f, std::size_t limit) {
    limit = std::max<std::size_t>(limit, 1);
    auto cursor = cursor_of(q, f.after);
    std::vector<DeadLetter> all;
    const std::string low = f.since_ms ? std::to_string(*f.since_ms) : "-";
    for (int p = 0; p < q.partition_count; ++p) {
        std::optional<Bound> high;
        if (f.before_ms) high = Bound{*f.before_ms, 0, true};
        if (cursor) {
            auto [ms, seq] = id_parts(cursor->stream_id);
            // Same id in a lower partition comes after the cursor in list order.
            high = lower_of(high, Bound{ms, seq, p >= cursor->partition});
        }
        auto part = scan(redis_, keys_.dead_letters(q.tenant, q.name, p), p, true, low,
                         high ? high->text() : "+", f, limit + 1);
        std::move(part.begin(), part.end(), std::back_inserter(all));
    }
    std::sort(all.begin(), all.end(), newer);
    DeadLetterPage page;
    if (all.size() > limit) {
        all.resize(limit);
        page.next_cursor = all.back().handle();
    }
    page.items = std::move(all);
    return page;
}

std::vector<DeadLetter> DeadLetterStore::select(const Queue& q, const DeadLetterFilter& f,
                                                std::size_t limit) {
    limit = std::max<std::size_t>(limit, 1);
    std::vector<DeadLetter> all;
    const std::string low = f.since_ms ? std::to_string(*f.since_ms) : "-";
    const std::string high = f.before_ms ? Bound{*f.before_ms, 0, true}.text() : "+";
    for (int p = 0; p < q.partition_count; ++p) {
        auto part =
            scan(redis_, keys_.dead_letters(q.tenant, q.name, p), p, false, low, high, f, limit);
        std::move(part.begin(), part.end(), std::back_inserter(all));
    }
    std::sort(all.begin(), all.end(),
              [](const DeadLetter& a, const DeadLetter& b) { return newer(b, a); });
    if (all.size() > limit) all.resize(limit);
    return all;
}

std::optional<DeadLetter> DeadLetterStore::find(const Queue& q, const std::string& handle) {
    EntryRef ref = parse_entry_ref(handle, "mqctl dlq list");
    if (ref.partition >= q.partition_count) return std::nullopt;
    auto r = redis_.command({"XRANGE", keys_.dead_letters(q.tenant, q.name, ref.partition),
                             ref.stream_id, ref.stream_id});
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
                                       Publisher& publisher, const PublishUseCase& use_case) {
    PublishRequest r = use_case.republish_request(from, d.message, target);  // throws: it stays
    r.idempotency_key = "mq-replay:" + from.tenant + "/" + from.name + ":" + d.handle();
    PublishOutcome out = publisher.publish(target, r);  // throws: the dead letter stays
    // XDEL dlq id: only now, so a failed publish never loses the dead letter.
    redis_.command({"XDEL", keys_.dead_letters(from.tenant, from.name, d.partition), d.dlq_id});
    return out;
}

ReplayReport DeadLetterStore::replay_all(const Queue& from, const std::vector<DeadLetter>& todo,
                                         const std::vector<std::string>& missing,
                                         const Queue& target, Publisher& publisher,
                                         const PublishUseCase& use_case,
                                         const ReplayOptions& options) {
    if (options.rate_per_s && !(*options.rate_per_s > 0 && *options.rate_per_s <= kMaxReplayRate))
        throw ValidationError(
            "replay rate must be above 0 and at most " + std::to_string(kMaxReplayRate) + "/s",
            {{"field", "rate"}});
    if (!options.dry_run) use_case.take_quota(target, todo.size());
    ReplayReport report;
    auto record = [&](ReplayResult res) {
        switch (res.status) {
            case ReplayStatus::kReplayed:
                ++report.replayed;
                break;
            case ReplayStatus::kWouldReplay:
                ++report.would_replay;
                break;
            case ReplayStatus::kFailed:
                ++report.failed;
                break;
            case ReplayStatus::kNotFound:
                ++report.not_found;
                break;
        }
        if (options.on_result) options.on_result(res);
        report.results.push_back(std::move(res));
    };
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < todo.size(); ++i) {
        const DeadLetter& d = todo[i];
        ReplayResult res;
        res.id = d.handle();
        if (options.dry_run) {
            try {
                use_case.republish_request(from, d.message, target);
                res.status = ReplayStatus::kWouldReplay;
            } catch (const Error& e) {
                res.status = ReplayStatus::kFailed;
                res.error = e;
            }
            record(std::move(res));
            continue;
        }
        if (options.rate_per_s && i > 0) {
            // The i-th replay starts i/rate after the first: even pacing, no catch-up burst
            // beyond what the schedule allows.
            auto due =
                start +
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                    std::chrono::duration<double>(static_cast<double>(i) / *options.rate_per_s));
            std::this_thread::sleep_until(due);
        }
        try {
            res.outcome = replay(from, d, target, publisher, use_case);
            res.status = ReplayStatus::kReplayed;
        } catch (const Error& e) {
            if (e.code() == ErrorCode::kBackendUnavailable)
                throw;  // the rest would fail the same way
            res.status = ReplayStatus::kFailed;
            res.error = e;
        }
        record(std::move(res));
    }
    for (const auto& id : missing) {
        ReplayResult res;
        res.id = id;
        res.status = ReplayStatus::kNotFound;
        record(std::move(res));
    }
    return report;
}

double parse_replay_rate(const std::string& text, const std::string& field) {
    auto bad = [&] {
        return ValidationError("invalid " + field + " '" + printable(text) +
                                   "': give messages per second like 50 or 50/s (or 600/m, 3600/h)",
                               {{"field", field}});
    };
    std::string num = text;
    double per = 1;
    if (auto slash = text.find('/'); slash != std::string::npos) {
        num = text.substr(0, slash);
        std::string unit = text.substr(slash + 1);
        if (unit == "s")
            per = 1;
        else if (unit == "m")
            per = 60;
        else if (unit == "h")
            per = 3600;
        else
            throw bad();
    }
    double n = 0;
    auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
    if (num.empty() || ec != std::errc() || end != num.data() + num.size() || !std::isfinite(n) ||
        n <= 0)
        throw bad();
    double rate = n / per;
    if (rate > kMaxReplayRate) throw bad();
    return rate;
}

std::string_view replay_status_name(ReplayStatus s) {
    switch (s) {
        case ReplayStatus::kReplayed:
            return "replayed";
        case ReplayStatus::kWouldReplay:
            return "would_replay";
        case ReplayStatus::kFailed:
            return "failed";
        case ReplayStatus::kNotFound:
            return "not_found";
    }
    return "failed";
}

nlohmann::json to_json(const ReplayResult& r) {
    nlohmann::json j = {{"id", r.id}, {"status", replay_status_name(r.status)}};
    if (r.status == ReplayStatus::kReplayed) {
        j["message_id"] = r.outcome.message_id;
        j["partition"] = r.outcome.partition;
        j["stream_id"] = r.outcome.stream_id;
        j["duplicate"] = r.outcome.status == PublishStatus::kDuplicate;
    }
    if (r.error) j["error"] = r.error->to_json()["error"];
    return j;
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
            removed +=
                redis_.command({"XTRIM", key, "MINID", std::to_string(*before_ms)}).as_integer();
        }
    }
    return removed;
}

ReplayReport replay_dead_letters(pg::Database& db, DeadLetterStore& store, const Queue& from,
                                 const std::vector<DeadLetter>& todo,
                                 const std::vector<std::string>& missing, const Queue& target,
                                 Publisher& publisher, const PublishUseCase& use_case,
                                 const ReplayOptions& options) {
    auto run = [&] {
        return store.replay_all(from, todo, missing, target, publisher, use_case, options);
    };
    if (options.dry_run) return run();
    return audit::run_recorded(
        db, {from.tenant, "dead_letter.replay", "queue", from.name, nullptr, nullptr}, run,
        [&](const ReplayReport& r) {
            nlohmann::json replayed = nlohmann::json::array();
            for (const auto& res : r.results)
                if (res.status == ReplayStatus::kReplayed) replayed.push_back(res.id);
            return nlohmann::json{
                {"to",
                 target.tenant == from.tenant ? target.name : target.tenant + "/" + target.name},
                {"replayed", r.replayed},
                {"failed", r.failed},
                {"not_found", r.not_found},
                {"dead_letters", std::move(replayed)}};
        });
}

std::int64_t purge_dead_letters(pg::Database& db, DeadLetterStore& store, const Queue& queue,
                                std::optional<std::int64_t> before_ms) {
    return audit::run_recorded(
        db, {queue.tenant, "dead_letter.purge", "queue", queue.name, nullptr, nullptr},
        [&] { return store.purge(queue, before_ms); },
        [&](std::int64_t removed) {
            return nlohmann::json{
                {"removed", removed},
                {"before", before_ms ? nlohmann::json(format_rfc3339(*before_ms)) : nullptr}};
        });
}

}  // namespace mq
