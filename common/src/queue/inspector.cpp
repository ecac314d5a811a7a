#include "mq/queue/inspector.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "mq/core/time.hpp"
#include "mq/redis/stream_commands.hpp"

namespace mq {

namespace {

// KEYS: stream, delayed set, dead-letter stream, expired counts, history buffer, history
// cursor. ARGV[1]: "1" to list consumers; ARGV[2]: "1" when the queue records messages.
// The last figure is what the history writer has yet to read: buffer entries, plus on a
// recording queue the stream entries after its cursor.
// XLEN s; ZCARD d; XLEN dlq; XRANGE s - + COUNT 1; ZRANGE d 0 0 WITHSCORES; XINFO GROUPS s;
// per group XPENDING s g (summary) and, when asked, XINFO CONSUMERS s g. Read-only; one
// script per partition so every figure of a partition comes from the same instant.
const redis::Script kInspectScript(R"lua(
local s = KEYS[1]
local out = {redis.call('XLEN', s), redis.call('ZCARD', KEYS[2]), redis.call('XLEN', KEYS[3]),
             redis.call('XRANGE', s, '-', '+', 'COUNT', 1),
             redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES'), {}, {}, {},
             redis.call('HGETALL', KEYS[4]), redis.call('XLEN', KEYS[5])}
if ARGV[2] == '1' and redis.call('EXISTS', s) == 1 then
  -- A recording queue: stream entries the history writer has not read yet are buffered
  -- published events (entries added to the stream since its cursor).
  local unread = out[1]
  local n = tonumber(redis.call('HGET', KEYS[6], 'n') or '')
  if n then
    local info = redis.call('XINFO', 'STREAM', s)
    for i = 1, #info, 2 do
      if info[i] == 'entries-added' then unread = math.min(out[1], math.max(0, info[i + 1] - n)) end
    end
  end
  out[10] = out[10] + unread
end
if redis.call('EXISTS', s) == 1 then
  local groups = redis.call('XINFO', 'GROUPS', s)
  out[6] = groups
  for i, g in ipairs(groups) do
    local name
    for j = 1, #g, 2 do
      if g[j] == 'name' then name = g[j + 1] end
    end
    out[7][i] = redis.call('XPENDING', s, name)
    if ARGV[1] == '1' then out[8][i] = redis.call('XINFO', 'CONSUMERS', s, name) else out[8][i] = {} end
  end
end
return out
)lua");

[[noreturn]] void bad_reply(const std::string& what) {
    throw redis::ReplyShapeError("unexpected queue inspection reply from Redis: " + what);
}

void merge_consumers(std::vector<ConsumerFigures>& into, const std::vector<ConsumerFigures>& from) {
    for (const auto& c : from) {
        auto it =
            std::find_if(into.begin(), into.end(), [&](const auto& x) { return x.name == c.name; });
        if (it == into.end()) {
            into.push_back(c);
        } else {
            it->pending += c.pending;
            it->idle_ms = std::min(it->idle_ms, c.idle_ms);
        }
    }
}

std::optional<std::int64_t> earliest(std::optional<std::int64_t> a, std::optional<std::int64_t> b) {
    if (!a) return b;
    if (!b) return a;
    return std::min(*a, *b);
}

PartitionFigures partition_from_reply(int partition, const redis::Reply& r, bool with_consumers) {
    if (r.is_error()) throw redis::reply_error(r, "queue inspection");
    if (!r.is_array() || r.elements.size() != 10) bad_reply("not an array of 10 figures");
    const auto& e = r.elements;
    PartitionFigures p;
    p.partition = partition;
    p.length = e[0].as_integer();
    p.delayed = e[1].as_integer();
    p.dead_letters = e[2].as_integer();
    p.history_buffered = e[9].as_integer();
    if (!e[3].is_array()) bad_reply("the first entry is not an array");
    if (!e[3].elements.empty()) {
        const auto& first = e[3].elements[0];
        if (!first.is_array() || first.elements.empty()) bad_reply("the first entry has no id");
        p.oldest_ms = redis::stream_id_millis(first.elements[0].str);
    }
    if (e[4].is_array() && e[4].elements.size() >= 2) p.next_due_ms = e[4].elements[1].as_integer();
    auto groups = redis::parse_xinfo_groups(e[5]);
    if (!e[6].is_array() || e[6].elements.size() != groups.size() || !e[7].is_array() ||
        e[7].elements.size() != groups.size())
        bad_reply("pending summaries do not match the groups");
    for (std::size_t i = 0; i < groups.size(); ++i) {
        auto& g = groups[i];
        GroupFigures f;
        f.name = std::move(g.name);
        f.consumers = g.consumers;
        f.pending = g.pending;
        f.lag = g.lag;
        f.last_delivered_id = std::move(g.last_delivered_id);
        // {t:q:p}:x: group -> entries retention removed before the group finished them.
        if (e[8].is_array())
            for (std::size_t k = 0; k + 1 < e[8].elements.size(); k += 2)
                if (e[8].elements[k].str == f.name) f.expired = e[8].elements[k + 1].as_integer();
        // Unknown lag: every stream entry may still be undelivered, so the stream length bounds it.
        f.backlog = f.lag ? f.pending + *f.lag : std::max(p.length, f.pending);
        auto summary = redis::parse_xpending_summary(e[6].elements[i]);
        if (!summary.smallest_id.empty())
            f.oldest_pending_ms = redis::stream_id_millis(summary.smallest_id);
        if (with_consumers)
            for (auto& c : redis::parse_xinfo_consumers(e[7].elements[i]))
                f.consumer_list.push_back(ConsumerFigures{std::move(c.name), c.pending, c.idle_ms});
        p.groups.push_back(std::move(f));
    }
    return p;
}

// The slowest group has the most to finish; on a tie, the one that delivered least.
bool is_slower(const GroupFigures& g, const GroupFigures* than) {
    if (!than) return true;
    if (g.backlog != than->backlog) return g.backlog > than->backlog;
    return g.pending < than->pending;
}

void add_up(QueueFigures& q) {
    for (const auto& p : q.partitions) {
        q.length += p.length;
        q.delayed += p.delayed;
        q.dead_letters += p.dead_letters;
        q.history_buffered += p.history_buffered;
        q.oldest_ms = earliest(q.oldest_ms, p.oldest_ms);
        q.next_due_ms = earliest(q.next_due_ms, p.next_due_ms);
        const GroupFigures* slowest = nullptr;
        for (const auto& g : p.groups) {
            q.pending += g.pending;
            q.lag += g.lag.value_or(0);
            q.consumers += g.consumers;
            ++q.groups;
            q.oldest_pending_ms = earliest(q.oldest_pending_ms, g.oldest_pending_ms);
            if (is_slower(g, slowest)) slowest = &g;

            auto it = std::find_if(q.subscriptions.begin(), q.subscriptions.end(),
                                   [&](const auto& s) { return s.name == g.name; });
            if (it == q.subscriptions.end()) {
                it = q.subscriptions.insert(q.subscriptions.end(), SubscriptionFigures{});
                it->name = g.name;
            }
            ++it->partitions;
            it->consumers += g.consumers;
            it->pending += g.pending;
            it->lag += g.lag.value_or(0);
            it->lag_known = it->lag_known && g.lag.has_value();
            it->backlog += g.backlog;
            it->expired += g.expired;
            it->oldest_pending_ms = earliest(it->oldest_pending_ms, g.oldest_pending_ms);
            merge_consumers(it->consumer_list, g.consumer_list);
        }
        std::int64_t backlog = p.backlog();
        q.backlog += backlog;
        q.in_flight += slowest ? slowest->pending : 0;
        q.ready += backlog - (slowest ? slowest->pending : 0);
    }
    std::sort(q.subscriptions.begin(), q.subscriptions.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    for (auto& s : q.subscriptions)
        std::sort(s.consumer_list.begin(), s.consumer_list.end(),
                  [](const auto& a, const auto& b) { return a.name < b.name; });
}

}  // namespace

std::int64_t PartitionFigures::backlog() const {
    if (groups.empty()) return length;
    std::int64_t most = 0;
    for (const auto& g : groups) most = std::max(most, g.backlog);
    return most;
}

std::optional<std::int64_t> QueueFigures::age_ms(std::optional<std::int64_t> unix_ms) const {
    if (!unix_ms) return std::nullopt;
    return std::max<std::int64_t>(0, measured_ms - *unix_ms);
}

const SubscriptionFigures* QueueFigures::subscription(const std::string& group) const {
    for (const auto& s : subscriptions)
        if (s.name == group) return &s;
    return nullptr;
}

QueueFigures QueueInspector::inspect(const Queue& queue, InspectOptions options) {
    return std::move(inspect(std::vector<const Queue*>{&queue}, options).front());
}

std::vector<QueueFigures> QueueInspector::inspect(const std::vector<const Queue*>& queues,
                                                  InspectOptions options) {
    redis::Pipeline p;
    for (const Queue* q : queues)
        for (int i = 0; i < q->partition_count; ++i)
            p.add_script(
                kInspectScript,
                {keys_.stream(q->tenant, q->name, i), keys_.delayed(q->tenant, q->name, i),
                 keys_.dead_letters(q->tenant, q->name, i), keys_.expired(q->tenant, q->name, i),
                 keys_.history(q->tenant, q->name, i), keys_.history_cursor(q->tenant, q->name, i)},
                {options.consumers ? "1" : "0", q->record_messages ? "1" : "0"});
    std::vector<redis::Reply> replies;
    if (!p.empty()) replies = redis_.execute(p);
    const std::int64_t now = now_ms();
    std::vector<QueueFigures> out;
    out.reserve(queues.size());
    std::size_t next = 0;
    for (const Queue* q : queues) {
        QueueFigures f;
        f.tenant = q->tenant;
        f.name = q->name;
        f.measured_ms = now;
        for (int i = 0; i < q->partition_count; ++i)
            f.partitions.push_back(partition_from_reply(i, replies.at(next++), options.consumers));
        add_up(f);
        out.push_back(std::move(f));
    }
    return out;
}

QueueFiguresCache::QueueFiguresCache(redis::Endpoint endpoint, KeyLayout keys, QueueList queues,
                                     std::chrono::milliseconds every, redis::ConnectOptions options)
    : endpoint_(std::move(endpoint)),
      options_(options),
      keys_(std::move(keys)),
      queues_(std::move(queues)),
      every_(std::max(every, std::chrono::milliseconds(0))) {
    thread_ = std::thread([this] { run(); });
}

QueueFiguresCache::~QueueFiguresCache() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

std::shared_ptr<const QueueFiguresCache::Snapshot> QueueFiguresCache::latest(
    std::chrono::milliseconds wait) {
    std::unique_lock lock(mu_);
    if (finished_ > 0 && std::chrono::steady_clock::now() - refreshed_at_ < every_)
        return snapshot_;
    // Too old: wait for the next refresh to start and finish (shared by every scrape that
    // asks meanwhile), or give up after `wait` and show the last one.
    const std::uint64_t want = started_ + 1;
    asked_ = true;
    cv_.notify_all();
    cv_.wait_for(lock, wait, [&] { return finished_ >= want || stop_; });
    return snapshot_;
}

// Waits for a scrape to ask, refreshes, then sleeps out the rest of `every_` so a flood of
// scrapes costs at most one walk of the queues per period.
void QueueFiguresCache::run() {
    std::unique_ptr<redis::Connection> redis;
    std::unique_lock lock(mu_);
    while (!stop_) {
        cv_.wait(lock, [&] { return asked_ || stop_; });
        if (stop_) break;
        asked_ = false;
        ++started_;
        auto previous = snapshot_;
        lock.unlock();
        auto next = std::make_shared<Snapshot>();
        try {
            if (!redis) redis = std::make_unique<redis::Connection>(endpoint_, options_);
            auto all = queues_();
            QueueInspector inspector(*redis, keys_);
            for (std::size_t from = 0; from < all.size(); from += kQueuesPerRoundTrip) {
                std::vector<const Queue*> chunk;
                for (std::size_t i = from; i < std::min(all.size(), from + kQueuesPerRoundTrip);
                     ++i)
                    chunk.push_back(all[i].get());
                for (auto& f : inspector.inspect(chunk)) next->figures.push_back(std::move(f));
            }
            next->measured_ms = now_ms();
            next->up = true;
            next->refreshes = previous->refreshes + 1;
        } catch (const std::exception& e) {
            spdlog::warn("queue figures for /metrics: {}", printable(e.what()));
            redis.reset();
            next = std::make_shared<Snapshot>();  // no stale figures: the families go empty
            next->refreshes = previous->refreshes;
        }
        lock.lock();
        snapshot_ = std::move(next);
        ++finished_;
        refreshed_at_ = std::chrono::steady_clock::now();
        cv_.notify_all();
        if (every_.count() > 0) cv_.wait_for(lock, every_, [&] { return stop_; });
    }
}

}  // namespace mq
