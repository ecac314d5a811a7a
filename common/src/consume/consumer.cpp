#include "mq/consume/consumer.hpp"

#include "mq/core/partitioner.hpp"
#include "mq/core/time.hpp"
#include "mq/redis/stream_commands.hpp"

namespace mq {

namespace {

std::string retry_after_key(const KeyLayout& keys, const Queue& q, int p) {
    return keys.retry_after(q.tenant, q.name, p);
}

// KEYS: stream, retry-after hash[, history stream].
// ARGV: group, id, retry consumer, not-before ms (0 none)[, history event fields...].
// XCLAIM s g mq-retry 0 id JUSTID (idle restarts, delivery count unchanged); HSET ra; when
// the entry moved and an event is given, XADD h * <event> (docs/history.md).
const redis::Script kRetryLater(R"lua(
local moved = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
if #moved > 0 and tonumber(ARGV[4]) > 0 then
  redis.call('HSET', KEYS[2], ARGV[1] .. ' ' .. ARGV[2], ARGV[4])
end
if #moved > 0 and #ARGV > 4 then redis.call('XADD', KEYS[3], '*', unpack(ARGV, 5)) end
return #moved
)lua");

// KEYS: stream, dead-letter stream, retry-after hash[, history stream].
// ARGV: group, id, reason, error, attempts, subscription[, history event fields...].
// A given event is appended (XADD h * <event> m <message id>) when the entry is
// dead-lettered, so the history says so exactly once too.
// XACK s g id; HDEL ra; only when that XACK removed the entry from the pending list:
// XRANGE s id id -> XADD dlq * <fields> + dead-letter fields. Checking the XACK first means
// two reclaimers (or a reclaimer and a handler) racing for one entry dead-letter it once.
// Returns 1 when dead-lettered, 0 when the entry was no longer pending (someone else
// settled it) or its stream entry was gone (then only acked).
const redis::Script kDeadLetter(R"lua(
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[1] .. ' ' .. ARGV[2])
if acked == 0 then return 0 end
local found = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #found == 0 then return 0 end
local fields = found[1][2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
table.insert(fields, 'dlr'); table.insert(fields, ARGV[3])
table.insert(fields, 'dle'); table.insert(fields, ARGV[4])
table.insert(fields, 'dla'); table.insert(fields, ARGV[5])
table.insert(fields, 'dls'); table.insert(fields, ARGV[6])
table.insert(fields, 'dlo'); table.insert(fields, ARGV[2])
table.insert(fields, 'dlt'); table.insert(fields, tostring(now))
redis.call('XADD', KEYS[2], '*', unpack(fields))
if #ARGV > 6 then
  local ev = {unpack(ARGV, 7)}
  for i = 1, #fields, 2 do
    if fields[i] == 'id' then ev[#ev + 1] = 'm'; ev[#ev + 1] = fields[i + 1] end
  end
  redis.call('XADD', KEYS[4], '*', unpack(ev))
end
return 1
)lua");

// KEYS: stream, retry-after hash, expired-count hash. ARGV: group, consumer, min idle, id.
// XRANGE s id id: when the entry is gone (expired by retention, or XDELed) XACK it and, if
// that removed it from the PEL, HINCRBY x group 1 and HDEL its :ra note: returns {0, 1|0}.
// Otherwise XCLAIM s g consumer <min idle> id (only if nobody touched it since): {1, [entry]}.
const redis::Script kClaimOrExpire(R"lua(
if #redis.call('XRANGE', KEYS[1], ARGV[4], ARGV[4]) == 0 then
  local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[4])
  if n > 0 then
    redis.call('HINCRBY', KEYS[3], ARGV[1], n)
    redis.call('HDEL', KEYS[2], ARGV[1] .. ' ' .. ARGV[4])
  end
  return {0, n}
end
return {1, redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])}
)lua");

// A jitter draw that stays the same for one entry and delivery count, so every reclaim
// pass (and every reclaimer) computes the same backoff for it.
double stable_unit_random(const std::string& id, int count) {
    return static_cast<double>(fnv1a_64(id + "#" + std::to_string(count)) % 1000000) / 1000000.0;
}

// One row of XPENDING's extended form: [id, consumer, idle ms, delivery count].
PendingEntry pending_entry(int partition, const redis::Reply& e) {
    PendingEntry p;
    p.partition = partition;
    p.stream_id = e.elements.at(0).str;
    p.consumer = e.elements.at(1).str;
    p.idle_ms = e.elements.at(2).as_integer();
    p.delivery_count = static_cast<int>(e.elements.at(3).as_integer());
    return p;
}

}  // namespace

bool parse_entry(const redis::Reply& entry, std::string& id, Message& message) {
    if (!entry.is_array() || entry.elements.size() < 2) return false;
    id = entry.elements[0].str;
    const auto& kv = entry.elements[1];
    if (!kv.is_array()) return false;
    FieldList fields;
    for (std::size_t i = 0; i + 1 < kv.elements.size(); i += 2)
        fields.emplace_back(kv.elements[i].str, kv.elements[i + 1].str);
    message = decode_fields(fields);
    return true;
}

namespace {

// XGROUP CREATE s g <start> MKSTREAM; false when the group existed (BUSYGROUP).
bool create_group(redis::Connection& redis, const std::string& stream, const std::string& group,
                  const char* start) {
    auto r = redis.command_raw({"XGROUP", "CREATE", stream, group, start, "MKSTREAM"});
    if (!r.is_error()) return true;
    if (r.error_code() == "BUSYGROUP") return false;
    throw Error(ErrorCode::kInternal,
                "cannot create consumer group " + group + " on " + stream + ": " + r.str);
}

}  // namespace

int ConsumerGroups::ensure(const Queue& q, const Subscription& sub) {
    const std::string group = consumer_group(sub);
    // The start-id rule (docs/live-subscriptions.md): start_from applies only when the
    // subscription has no group yet on any partition (it is being created). A group missing
    // on some partitions while others have one belongs to partitions added later: it starts
    // at 0, since everything in them was published after the subscription existed.
    std::vector<int> missing;
    for (int p = 0; p < q.partition_count; ++p) {
        // XINFO GROUPS s: an error means no stream yet (so no group either).
        auto r = redis_.command_raw({"XINFO", "GROUPS", keys_.stream(q.tenant, q.name, p)});
        bool found = false;
        if (!r.is_error())
            for (const auto& g : r.elements)
                for (std::size_t i = 0; i + 1 < g.elements.size(); i += 2)
                    if (g.elements[i].str == "name" && g.elements[i + 1].str == group) found = true;
        if (!found) missing.push_back(p);
    }
    const bool is_new = static_cast<int>(missing.size()) == q.partition_count;
    const char* start = !is_new || sub.start_from == "earliest" ? "0" : "$";
    int created = 0;
    for (int p : missing)
        if (create_group(redis_, keys_.stream(q.tenant, q.name, p), group, start)) ++created;
    return created;
}

int ConsumerGroups::ensure_partitions(const Queue& q, const Subscription& sub,
                                      int first_partition) {
    int created = 0;
    for (int p = std::max(0, first_partition); p < q.partition_count; ++p)
        if (create_group(redis_, keys_.stream(q.tenant, q.name, p), consumer_group(sub), "0"))
            ++created;
    return created;
}

void ConsumerGroups::destroy(const Queue& q, const std::string& subscription) {
    for (int p = 0; p < q.partition_count; ++p) {
        redis_.command({"XGROUP", "DESTROY", keys_.stream(q.tenant, q.name, p), subscription});
        redis_.command({"HDEL", keys_.expired(q.tenant, q.name, p), subscription});
        // Forget the group's Retry-After notes (HSCAN MATCH "<group> *" + HDEL).
        const std::string ra = retry_after_key(keys_, q, p);
        std::string cursor = "0";
        do {
            auto r =
                redis_.command({"HSCAN", ra, cursor, "MATCH", subscription + " *", "COUNT", "500"});
            cursor = r.elements.at(0).str;
            std::vector<std::string> argv{"HDEL", ra};
            const auto& kv = r.elements.at(1).elements;
            for (std::size_t i = 0; i < kv.size(); i += 2) argv.push_back(kv[i].str);
            if (argv.size() > 2) redis_.command(argv);
        } while (cursor != "0");
    }
}

std::vector<Fetched> ConsumerGroups::read_new(const Queue& q, const Subscription& sub,
                                              const std::string& consumer, int partition, int count,
                                              std::chrono::milliseconds block) {
    const std::string group = consumer_group(sub);
    redis::Reply r = redis_.command_raw(redis::xreadgroup_command(
        group, consumer, keys_.stream(q.tenant, q.name, partition), count, block));
    if (r.is_error()) {
        if (r.error_code() == "NOGROUP")
            throw Error(ErrorCode::kSubscriptionNotFound,
                        "consumer group '" + group + "' does not exist on queue '" + q.name + "'");
        throw Error(ErrorCode::kInternal, "XREADGROUP failed: " + r.str);
    }
    std::vector<Fetched> out;
    for (auto& entry : redis::parse_xreadgroup(std::move(r))) {
        if (entry.deleted) continue;
        Fetched& f = out.emplace_back();
        f.partition = partition;
        f.stream_id = std::move(entry.id);
        f.message = decode_fields(entry.fields);
    }
    return out;
}

std::int64_t ConsumerGroups::ack(const Queue& q, const std::string& subscription, int partition,
                                 const std::vector<std::string>& ids,
                                 const std::vector<HistoryEvent>& events) {
    if (ids.empty()) return 0;
    std::vector<std::string> argv{"XACK", keys_.stream(q.tenant, q.name, partition), subscription};
    argv.insert(argv.end(), ids.begin(), ids.end());
    if (events.empty() || !q.record_messages) return redis_.command(argv).as_integer();
    // XACK and the attempts' events in one round trip (same slot).
    redis::Pipeline pipe;
    pipe.add(std::move(argv));
    const std::string h = keys_.history(q.tenant, q.name, partition);
    pipe.add(history_xadd(h, events));
    auto replies = redis_.execute(pipe);
    for (const auto& r : replies)
        if (r.is_error()) throw redis::reply_error(r, "ack");
    return replies.front().as_integer();
}

void ConsumerGroups::retry_later(const Queue& q, const std::string& subscription, int partition,
                                 const std::string& stream_id,
                                 std::optional<std::int64_t> not_before_ms,
                                 const HistoryEvent* event) {
    std::vector<std::string> keys{keys_.stream(q.tenant, q.name, partition),
                                  retry_after_key(keys_, q, partition)};
    std::vector<std::string> args{subscription, stream_id, kRetryConsumer,
                                  std::to_string(not_before_ms.value_or(0))};
    if (event && q.record_messages) {
        keys.push_back(keys_.history(q.tenant, q.name, partition));
        encode_history_fields(*event, args);
    }
    redis_.eval(kRetryLater, keys, args);
}

void ConsumerGroups::release(const Queue& q, const std::string& subscription, int partition,
                             const std::string& stream_id, int delivery_count) {
    // XCLAIM s g mq-retry 0 id IDLE <a day> RETRYCOUNT <count-1> JUSTID: due at once.
    redis_.command({"XCLAIM", keys_.stream(q.tenant, q.name, partition), subscription,
                    kRetryConsumer, "0", stream_id, "IDLE", "86400000", "RETRYCOUNT",
                    std::to_string(std::max(0, delivery_count - 1)), "JUSTID"});
}

bool ConsumerGroups::dead_letter(const Queue& q, const std::string& subscription, int partition,
                                 const std::string& stream_id, const std::string& reason,
                                 const std::string& error, int attempts,
                                 const HistoryEvent* event) {
    std::vector<std::string> keys{keys_.stream(q.tenant, q.name, partition),
                                  keys_.dead_letters(q.tenant, q.name, partition),
                                  retry_after_key(keys_, q, partition)};
    std::vector<std::string> args{
        subscription, stream_id, reason, error.substr(0, 2000), std::to_string(attempts),
        subscription};
    if (q.record_messages && !is_cross_tenant_group(subscription)) {
        // The script adds the message id (m) from the entry it dead-letters.
        HistoryEvent e = event ? *event : HistoryEvent{};
        e.kind = history::kDeadLettered;
        e.message_id.clear();
        e.subscription = subscription;
        e.outcome = history::kDeadLettered;
        if (e.attempt == 0) e.attempt = attempts;
        if (e.error.empty()) e.error = error;
        e.detail = reason;
        e.stream_id = stream_id;
        keys.push_back(keys_.history(q.tenant, q.name, partition));
        encode_history_fields(e, args);
    }
    auto r = redis_.eval(kDeadLetter, keys, args);
    return r.as_integer() == 1;
}

void ConsumerGroups::extend(const Queue& q, const std::string& subscription,
                            const std::string& consumer, int partition,
                            const std::vector<std::string>& ids) {
    if (ids.empty()) return;
    // XCLAIM s g consumer 0 id... JUSTID: same owner, idle back to zero, count unchanged.
    std::vector<std::string> argv{"XCLAIM", keys_.stream(q.tenant, q.name, partition), subscription,
                                  consumer, "0"};
    argv.insert(argv.end(), ids.begin(), ids.end());
    argv.emplace_back("JUSTID");
    redis_.command(argv);
}

std::vector<PendingEntry> ConsumerGroups::pending(const Queue& q, const std::string& subscription,
                                                  int partition, int count,
                                                  const std::string& consumer) {
    std::vector<std::string> argv{"XPENDING",   keys_.stream(q.tenant, q.name, partition),
                                  subscription, "-",
                                  "+",          std::to_string(count)};
    if (!consumer.empty()) argv.push_back(consumer);
    redis::Reply r = redis_.command_raw(argv);
    if (r.is_error()) {
        if (r.error_code() == "NOGROUP") return {};
        throw Error(ErrorCode::kInternal, "XPENDING failed: " + r.str);
    }
    std::vector<PendingEntry> out;
    for (const auto& e : r.elements) out.push_back(pending_entry(partition, e));
    return out;
}

Reclaimed ConsumerGroups::reclaim(const Queue& q, const Subscription& sub,
                                  const std::string& consumer, int partition, int count) {
    Reclaimed out;
    const std::string stream = keys_.stream(q.tenant, q.name, partition);
    const std::string group = consumer_group(sub);
    // Nothing younger than the shortest possible wait can be due.
    auto shortest = std::min<std::int64_t>(
        sub.visibility_timeout.count(),
        static_cast<std::int64_t>(static_cast<double>(sub.retry.initial_backoff.count()) *
                                  (1.0 - sub.retry.jitter)));
    redis::Reply r = redis_.command_raw({"XPENDING", stream, group, "IDLE",
                                         std::to_string(std::max<std::int64_t>(0, shortest)), "-",
                                         "+", std::to_string(count)});
    if (r.is_error()) {
        if (r.error_code() == "NOGROUP") return out;
        throw Error(ErrorCode::kInternal, "XPENDING failed: " + r.str);
    }
    if (r.elements.empty()) return out;

    // Retry-After notes of the candidates waiting for a retry.
    std::vector<PendingEntry> due;
    const std::int64_t now = now_ms();
    for (const auto& e : r.elements) {
        PendingEntry p = pending_entry(partition, e);
        std::int64_t wait = p.consumer == kRetryConsumer
                                ? backoff_for(sub.retry, p.delivery_count,
                                              stable_unit_random(p.stream_id, p.delivery_count))
                                      .count()
                                : sub.visibility_timeout.count();
        if (p.idle_ms < wait) continue;
        if (p.consumer == kRetryConsumer) {
            auto nb = redis_.command(
                {"HGET", retry_after_key(keys_, q, partition), group + " " + p.stream_id});
            if (!nb.is_nil() && nb.as_integer() > now) continue;
        }
        due.push_back(std::move(p));
    }

    for (const auto& p : due) {
        if (p.delivery_count >= sub.retry.max_attempts) {
            std::string reason =
                p.consumer == kRetryConsumer ? "max_attempts" : "visibility_timeout";
            std::string error =
                p.consumer == kRetryConsumer
                    ? "failed " + std::to_string(p.delivery_count) + " deliveries"
                    : "consumer " + p.consumer +
                          " held it past the visibility timeout on the last attempt";
            if (sub.dead_letter) {
                // Another reclaimer may have settled it since XPENDING: count only ours.
                HistoryEvent e;
                e.consumer = p.consumer;
                if (dead_letter(q, group, partition, p.stream_id, reason, error, p.delivery_count,
                                &e))
                    ++out.dead_lettered;
            } else {
                ack(q, group, partition, {p.stream_id});
                ++out.dropped;
            }
            continue;
        }
        // XCLAIM <idle seen>: only if nobody touched it since we looked; an entry whose
        // stream entry is gone is acked away and counted as expired instead.
        redis::Reply r2 = redis_.eval(kClaimOrExpire,
                                      {stream, retry_after_key(keys_, q, partition),
                                       keys_.expired(q.tenant, q.name, partition)},
                                      {group, consumer, std::to_string(p.idle_ms), p.stream_id});
        if (r2.elements.at(0).as_integer() == 0) {
            out.expired += static_cast<int>(r2.elements.at(1).as_integer());
            continue;
        }
        const redis::Reply& c = r2.elements.at(1);
        if (!c.is_array() || c.elements.empty()) continue;
        Fetched f;
        f.partition = partition;
        f.delivery_count = p.delivery_count + 1;
        if (!parse_entry(c.elements[0], f.stream_id, f.message)) {
            ack(q, group, partition, {p.stream_id});  // deleted while pending: nothing to deliver
            continue;
        }
        redis_.command({"HDEL", retry_after_key(keys_, q, partition), group + " " + p.stream_id});
        out.claimed.push_back(std::move(f));
    }
    return out;
}

}  // namespace mq
