#include "mq/worker/runner.hpp"

#include <spdlog/spdlog.h>

#include "mq/core/log_context.hpp"
#include "mq/core/time.hpp"
#include "mq/publish/scheduler.hpp"
#include "mq/redis/stream_commands.hpp"

namespace mq {

using namespace std::chrono_literals;

namespace {

// What every log line of a runner's threads is about.
LogScope subscription_log_scope(const RunnerOptions& o) {
    return LogScope{
        {"tenant", o.queue.tenant}, {"queue", o.queue.name}, {"subscription", o.subscription.name}};
}

}  // namespace

void RunnerMetrics::observe(std::chrono::microseconds d) {
    duration.Observe(static_cast<double>(d.count()) / 1e6);
}

// A token bucket for rate_limit_per_s, shared by the handler threads of one runner.
class RateLimiter {
  public:
    explicit RateLimiter(double per_s) : per_s_(per_s), tokens_(per_s) {}
    // Blocks until a token is free or `stop` is set.
    void acquire(const std::atomic<bool>& stop) {
        for (;;) {
            std::chrono::microseconds wait;
            {
                std::lock_guard lock(mu_);
                auto now = std::chrono::steady_clock::now();
                double elapsed = std::chrono::duration<double>(now - last_).count();
                last_ = now;
                tokens_ = std::min(per_s_, tokens_ + elapsed * per_s_);
                if (tokens_ >= 1.0) {
                    tokens_ -= 1.0;
                    return;
                }
                wait = std::chrono::microseconds(
                    static_cast<std::int64_t>((1.0 - tokens_) / per_s_ * 1e6));
            }
            if (stop) return;
            std::this_thread::sleep_for(std::min<std::chrono::microseconds>(wait, 100ms));
        }
    }

  private:
    std::mutex mu_;
    double per_s_;
    double tokens_;
    std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

SubscriptionRunner::SubscriptionRunner(RunnerOptions options,
                                       std::shared_ptr<RunnerMetrics> metrics)
    : options_(std::move(options)),
      metrics_(std::move(metrics)),
      // Room for a full fetch batch, and a second batch's worth so handlers never wait
      // for a fetch round trip; leases of everything held are extended.
      capacity_(static_cast<std::size_t>(
          std::max(options_.subscription.concurrency * 2, options_.subscription.batch_size * 2))) {
    paused_ = options_.subscription.status == "paused";
    inline_ = options_.handler && options_.handler->in_process() &&
              options_.subscription.concurrency == 1;
    if (options_.subscription.rate_limit_per_s)
        limiter_ = std::make_unique<RateLimiter>(*options_.subscription.rate_limit_per_s);
}

SubscriptionRunner::~SubscriptionRunner() { stop(std::chrono::steady_clock::now() + 5s); }

void SubscriptionRunner::backend_error(const char* where, const std::exception& e) {
    metrics_->backend_errors++;
    // A destroyed group (the subscription was deleted and the worker has not stopped this
    // runner yet): said once, not twice a second per partition.
    if (auto* err = dynamic_cast<const Error*>(&e);
        err && err->code() == ErrorCode::kSubscriptionNotFound) {
        if (!group_gone_logged_.exchange(true))
            spdlog::warn(
                "{}/{}: its consumer group is gone (subscription deleted?): {}; waiting to be "
                "stopped",
                options_.queue.name, options_.subscription.name, e.what());
        return;
    }
    healthy_ = false;
    spdlog::warn("{}/{}: {} failed: {}; retrying in 1s", options_.queue.name,
                 options_.subscription.name, where, e.what());
}

void SubscriptionRunner::start() {
    auto log_scope = subscription_log_scope(options_);
    {
        redis::Connection conn(options_.endpoint);
        ConsumerGroups(conn, options_.keys).ensure(options_.queue, options_.subscription);
    }
    for (int p = 0; p < options_.queue.partition_count; ++p)
        fetchers_.emplace_back([this, p] {
            auto thread_scope = subscription_log_scope(options_);
            inline_ ? inline_fetch_loop(p) : fetch_loop(p);
        });
    if (!inline_)
        for (int i = 0; i < options_.subscription.concurrency; ++i)
            handlers_.emplace_back([this] {
                auto thread_scope = subscription_log_scope(options_);
                handle_loop();
            });
    maintenance_ = std::thread([this] {
        auto thread_scope = subscription_log_scope(options_);
        maintenance_loop();
    });
    spdlog::info("{}/{}: delivering with {} over {} partition(s) as consumer {}",
                 options_.queue.name, options_.subscription.name,
                 inline_ ? std::string("an in-process handler on the fetcher thread(s)")
                         : std::to_string(options_.subscription.concurrency) + " handler thread(s)",
                 options_.queue.partition_count, options_.consumer);
}

void SubscriptionRunner::set_paused(bool paused) {
    bool was;
    {
        // Under the mutex the condition variables wait with: a handler that just saw
        // "paused" is then either waiting already (and gets the notify) or sees the new
        // value; changed without it, a resume could fall between its check and its wait.
        std::lock_guard lock(mu_);
        was = paused_.exchange(paused);
    }
    auto log_scope = subscription_log_scope(options_);
    if (was != paused)
        spdlog::info("{}/{}: {}", options_.queue.name, options_.subscription.name,
                     paused ? "paused" : "resumed");
    cv_.notify_all();
    space_cv_.notify_all();
}

void SubscriptionRunner::fetch_loop(int partition) {
    std::unique_ptr<redis::Connection> conn;
    while (fetching_) {
        try {
            if (!conn) conn = std::make_unique<redis::Connection>(options_.endpoint);
            ConsumerGroups groups(*conn, options_.keys);
            std::size_t room;
            {
                std::unique_lock lock(mu_);
                space_cv_.wait_for(lock, 200ms, [&] {
                    return !fetching_ ||
                           (!paused_ &&
                            queue_.size() + static_cast<std::size_t>(busy_handlers_) < capacity_);
                });
                if (!fetching_) break;
                if (paused_) continue;
                std::size_t used = queue_.size() + static_cast<std::size_t>(busy_handlers_);
                if (used >= capacity_) continue;
                room = std::min<std::size_t>(
                    capacity_ - used, static_cast<std::size_t>(options_.subscription.batch_size));
            }
            auto got = groups.read_new(options_.queue, options_.subscription, options_.consumer,
                                       partition, static_cast<int>(room), options_.fetch_block);
            healthy_ = true;
            if (got.empty()) continue;
            {
                std::lock_guard lock(mu_);
                for (auto& f : got) queue_.push_back(std::move(f));
            }
            // One entry wakes one handler: waking all of them costs context switches
            // (latency) on a small machine.
            if (got.size() == 1)
                cv_.notify_one();
            else
                cv_.notify_all();
        } catch (const std::exception& e) {
            conn.reset();
            backend_error("fetch", e);
            for (int i = 0; i < 10 && fetching_; ++i) std::this_thread::sleep_for(100ms);
        }
    }
}

void SubscriptionRunner::inline_fetch_loop(int partition) {
    std::unique_ptr<redis::Connection> conn;
    std::vector<Fetched> batch;
    // Acks of the last batch, sent with the next read; kept across a reconnect (an XACK
    // sent twice is harmless).
    std::vector<PendingAck> acks;
    while (fetching_) {
        try {
            if (!conn) conn = std::make_unique<redis::Connection>(options_.endpoint);
            ConsumerGroups groups(*conn, options_.keys);
            batch.clear();
            bool paused;
            {
                std::lock_guard lock(mu_);
                paused = paused_;
                // What a pause left undelivered comes first.
                if (!paused)
                    for (; !queue_.empty(); queue_.pop_front())
                        batch.push_back(std::move(queue_.front()));
            }
            if (paused) {
                send_acks(groups, acks);  // delivered before the pause: acked now
                acks.clear();
                std::unique_lock lock(mu_);
                space_cv_.wait_for(lock, 200ms, [&] { return !fetching_ || !paused_; });
                continue;
            }
            if (batch.empty()) {
                batch = ack_and_read(*conn, partition, acks);
                healthy_ = true;
            }
            if (!batch.empty()) deliver_inline(groups, batch, false, acks);
        } catch (const std::exception& e) {
            // Entries of the batch not acked stay pending: redelivered after the visibility
            // timeout.
            conn.reset();
            backend_error("fetch", e);
            for (int i = 0; i < 10 && fetching_; ++i) std::this_thread::sleep_for(100ms);
        }
    }
    if (acks.empty()) return;
    try {
        if (!conn) conn = std::make_unique<redis::Connection>(options_.endpoint);
        ConsumerGroups groups(*conn, options_.keys);
        send_acks(groups, acks);
    } catch (const std::exception& e) {
        spdlog::warn(
            "{}/{}: could not ack {} delivered entries ({}); they are redelivered after the "
            "visibility timeout",
            options_.queue.name, options_.subscription.name, acks.size(), e.what());
    }
}

std::vector<Fetched> SubscriptionRunner::ack_and_read(redis::Connection& conn, int partition,
                                                      std::vector<PendingAck>& acks) {
    const auto& q = options_.queue;
    const auto& sub = options_.subscription;
    redis::Pipeline pipeline;
    std::map<int, std::vector<std::string>> ids;
    std::uint64_t filtered = 0;
    for (const auto& a : acks) {
        ids[a.partition].push_back(a.stream_id);
        if (a.filtered) ++filtered;
    }
    for (auto& [p, list] : ids) {
        std::vector<std::string> argv{"XACK", options_.keys.stream(q.tenant, q.name, p),
                                      consumer_group(sub)};
        argv.insert(argv.end(), std::make_move_iterator(list.begin()),
                    std::make_move_iterator(list.end()));
        pipeline.add(std::move(argv));
        // The attempts' history events ride in the same round trip, one buffer entry for
        // the partition's whole batch (docs/history.md).
        auto events = ack_events(acks, p);
        if (!events.empty())
            pipeline.add(history_xadd(options_.keys.history(q.tenant, q.name, p), events));
    }
    pipeline.add(redis::xreadgroup_command(consumer_group(sub), options_.consumer,
                                           options_.keys.stream(q.tenant, q.name, partition),
                                           sub.batch_size, options_.fetch_block));

    std::vector<redis::Reply> replies = conn.execute(pipeline);
    for (std::size_t i = 0; i + 1 < replies.size(); ++i)
        if (replies[i].is_error())
            throw Error(ErrorCode::kInternal, "XACK failed: " + replies[i].str);
    metrics_->filtered += filtered;
    metrics_->acked += acks.size() - filtered;
    acks.clear();

    redis::Reply& r = replies.back();
    if (r.is_error()) {
        if (r.error_code() == "NOGROUP")
            throw Error(ErrorCode::kSubscriptionNotFound, "consumer group '" + consumer_group(sub) +
                                                              "' does not exist on queue '" +
                                                              q.name + "'");
        throw Error(ErrorCode::kInternal, "XREADGROUP failed: " + r.str);
    }
    std::vector<Fetched> out;
    std::vector<redis::StreamEntry> entries = redis::parse_xreadgroup(std::move(r));
    out.reserve(entries.size());
    for (auto& entry : entries) {
        if (entry.deleted) continue;
        Fetched& f = out.emplace_back();
        f.partition = partition;
        f.stream_id = std::move(entry.id);
        f.message = decode_fields(entry.fields);
    }
    return out;
}

void SubscriptionRunner::deliver_inline(ConsumerGroups& groups, std::vector<Fetched>& batch,
                                        bool all, std::vector<PendingAck>& acks) {
    std::lock_guard serial(inline_mu_);
    {
        std::lock_guard lock(mu_);
        inline_batch_ = &batch;
    }
    std::size_t done = 0;
    auto settle = [&] {
        std::lock_guard lock(mu_);
        inline_batch_ = nullptr;
        for (std::size_t i = done; i < batch.size(); ++i) queue_.push_back(std::move(batch[i]));
    };
    // Delivered (kAck) within the handler's batch: acked once end_batch() succeeded.
    std::vector<std::size_t> staged;
    staged.reserve(batch.size());
    options_.handler->begin_batch();
    try {
        for (; done < batch.size(); ++done) {
            if (!all && (!fetching_ || paused_)) break;
            if (limiter_) limiter_->acquire(stopping_);
            if (!all && (!fetching_ || paused_)) break;
            Fetched& f = batch[done];
            Settled s = deliver_one(groups, f);
            if (s == Settled::kAck)
                staged.push_back(done);
            else if (s == Settled::kFiltered)
                acks.push_back(
                    {f.partition, f.stream_id, true, f.message.id, f.delivery_count, -1});
        }
        std::string failed = options_.handler->end_batch();
        if (failed.empty()) {
            for (std::size_t i : staged)
                acks.push_back({batch[i].partition, batch[i].stream_id, false, batch[i].message.id,
                                batch[i].delivery_count, batch[i].duration_ms});
        } else {
            DeliveryResult result;
            result.error = failed;
            for (std::size_t i : staged) {
                LogScope message_scope{{"message_id", batch[i].message.id},
                                       {"attempt", batch[i].delivery_count}};
                if (record(groups, batch[i], result) == Settled::kAck)
                    acks.push_back({batch[i].partition, batch[i].stream_id, false,
                                    batch[i].message.id, batch[i].delivery_count,
                                    batch[i].duration_ms});
            }
        }
    } catch (...) {
        // Staged work is completed or dropped, but not acked; with the connection failed,
        // everything not acked stays pending in Redis.
        options_.handler->end_batch();
        done = batch.size();
        settle();
        throw;
    }
    settle();
}

void SubscriptionRunner::send_acks(ConsumerGroups& groups, const std::vector<PendingAck>& acks) {
    if (acks.empty()) return;
    // XACK s g id... once per partition; XACK of an id already acked is a no-op.
    std::map<int, std::vector<std::string>> ids;
    std::uint64_t filtered = 0;
    for (const auto& a : acks) {
        ids[a.partition].push_back(a.stream_id);
        if (a.filtered) ++filtered;
    }
    for (const auto& [p, list] : ids)
        groups.ack(options_.queue, consumer_group(options_.subscription), p, list,
                   ack_events(acks, p));
    metrics_->filtered += filtered;
    metrics_->acked += acks.size() - filtered;
}

void SubscriptionRunner::ack_soon(ConsumerGroups& groups, const Fetched& f, Settled settled) {
    {
        std::lock_guard lock(ack_mu_);
        acks_.push_back({f.partition, f.stream_id, settled == Settled::kFiltered, f.message.id,
                         f.delivery_count, f.duration_ms});
        if (acking_) return;  // the thread sending acks now takes this one too
        acking_ = true;
    }
    std::vector<PendingAck> batch;
    for (;;) {
        {
            std::lock_guard lock(ack_mu_);
            if (acks_.empty()) {
                acking_ = false;
                return;
            }
            batch.swap(acks_);
        }
        try {
            send_acks(groups, batch);
        } catch (...) {
            // Put them back (still pending in Redis): the next thread to finish sends them.
            std::lock_guard lock(ack_mu_);
            acks_.insert(acks_.end(), batch.begin(), batch.end());
            acking_ = false;
            throw;
        }
        batch.clear();
    }
}

void SubscriptionRunner::handle_loop() {
    std::unique_ptr<redis::Connection> conn;
    for (;;) {
        Fetched f;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return stopping_ || (!paused_ && !queue_.empty()); });
            if (stopping_) break;
            f = std::move(queue_.front());
            queue_.pop_front();
            ++busy_handlers_;
            in_progress_[{f.partition, f.stream_id}] = f.delivery_count;
        }
        space_cv_.notify_one();
        if (limiter_) limiter_->acquire(stopping_);
        try {
            if (!conn) conn = std::make_unique<redis::Connection>(options_.endpoint);
            ConsumerGroups groups(*conn, options_.keys);
            if (Settled s = deliver_one(groups, f); s != Settled::kRecorded) ack_soon(groups, f, s);
        } catch (const std::exception& e) {
            // The outcome could not be recorded: the entry stays pending and is
            // redelivered after the visibility timeout (at-least-once).
            conn.reset();
            backend_error("recording a delivery", e);
        }
        {
            std::lock_guard lock(mu_);
            --busy_handlers_;
            in_progress_.erase({f.partition, f.stream_id});
        }
        space_cv_.notify_one();
        idle_cv_.notify_all();
    }
}

namespace {

// Replaces a sealed payload of `m` by its plaintext; returns why it could not (empty: ok).
std::string open_sealed(Message& m, const Keyring* keyring, const Queue& q) {
    if (m.encryption_key_id.empty()) return {};
    if (!keyring || keyring->empty())
        return "cannot decrypt: the entry is encrypted (key id " + m.encryption_key_id +
               ") but mq-worker has no keyring (MQ_KEYRING_FILE)";
    try {
        m.payload = open_payload(m, *keyring, q);
        m.encryption_key_id.clear();
        return {};
    } catch (const Error& e) {
        return e.what();
    }
}

}  // namespace

SubscriptionRunner::Settled SubscriptionRunner::deliver_one(ConsumerGroups& groups, Fetched& f) {
    const auto& q = options_.queue;
    const auto& sub = options_.subscription;
    // Lines of the handler and of the outcome name the message.
    LogScope message_scope{{"message_id", f.message.id}, {"attempt", f.delivery_count}};
    if (!filter_matches(sub.filter, f.message.headers_json)) return Settled::kFiltered;
    // The message moves into the delivery and back (no copy per message).
    Delivery d{std::move(f.message), q.tenant,    q.name,           sub.name,
               f.partition,          f.stream_id, f.delivery_count, &abandoned_};
    metrics_->in_flight++;
    auto t0 = std::chrono::steady_clock::now();
    DeliveryResult result;
    // Sealed at rest, plaintext to the handler. A missing key is retried like any
    // failure: an operator may add it to the keyring and restart before max_attempts.
    std::string unopened = open_sealed(d.message, options_.keyring.get(), q);
    if (!unopened.empty()) {
        result.error = unopened;
    } else
        try {
            result = options_.handler->deliver(d);
        } catch (const std::exception& e) {
            result.outcome = DeliveryOutcome::kRetry;
            result.error = std::string("handler threw: ") + e.what();
        }
    f.message = std::move(d.message);
    metrics_->in_flight--;
    const auto took = std::chrono::steady_clock::now() - t0;
    f.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
    metrics_->observe(std::chrono::duration_cast<std::chrono::microseconds>(took));
    // Given up at the shutdown deadline: not an attempt that failed. The entry stays
    // pending under this consumer and is redelivered after the visibility timeout.
    if (abandoned_ && result.outcome != DeliveryOutcome::kAck) return Settled::kRecorded;
    return record(groups, f, result);
}

SubscriptionRunner::Settled SubscriptionRunner::record(ConsumerGroups& groups, const Fetched& f,
                                                       const DeliveryResult& result) {
    const auto& q = options_.queue;
    const auto& sub = options_.subscription;
    switch (result.outcome) {
        case DeliveryOutcome::kAck:
            return Settled::kAck;  // the caller acks, batched with others
        case DeliveryOutcome::kRetry:
            if (f.delivery_count < sub.retry.max_attempts) {
                std::optional<std::int64_t> not_before;
                if (result.retry_after) not_before = now_ms() + result.retry_after->count();
                const HistoryEvent e = attempt_event(f, "failed", result.error);
                groups.retry_later(q, consumer_group(sub), f.partition, f.stream_id, not_before,
                                   &e);
                metrics_->failed++;
                spdlog::debug("{}/{}: attempt {} of message {} failed: {}", q.name, sub.name,
                              f.delivery_count, f.message.id, result.error);
                return Settled::kRecorded;
            }
            break;
        case DeliveryOutcome::kDead:
            break;
    }
    const std::string reason =
        result.outcome == DeliveryOutcome::kDead ? "handler_rejected" : "max_attempts";
    if (sub.dead_letter) {
        const HistoryEvent e = attempt_event(f, history::kDeadLettered, result.error);
        groups.dead_letter(q, consumer_group(sub), f.partition, f.stream_id, reason, result.error,
                           f.delivery_count, &e);
        metrics_->dead_lettered++;
    } else {
        std::vector<HistoryEvent> events;
        if (q.record_messages) events.push_back(attempt_event(f, "dropped", result.error));
        groups.ack(q, consumer_group(sub), f.partition, {f.stream_id}, events);
        metrics_->dropped++;
    }
    spdlog::warn("{}/{}: message {} {} after {} attempt(s): {}", q.name, sub.name, f.message.id,
                 sub.dead_letter ? "dead-lettered" : "dropped (dead letters are off)",
                 f.delivery_count, result.error);
    return Settled::kRecorded;
}

HistoryEvent SubscriptionRunner::attempt_event(const Fetched& f, const std::string& outcome,
                                               const std::string& error) const {
    HistoryEvent e;
    e.kind = history::kAttempt;
    e.message_id = f.message.id;
    e.subscription = consumer_group(options_.subscription);
    e.consumer = options_.consumer;
    e.attempt = f.delivery_count;
    e.outcome = outcome;
    e.duration_ms = f.duration_ms;
    e.error = error;
    e.stream_id = f.stream_id;
    return e;
}

std::vector<HistoryEvent> SubscriptionRunner::ack_events(const std::vector<PendingAck>& acks,
                                                         int partition) const {
    std::vector<HistoryEvent> out;
    if (!options_.queue.record_messages) return out;
    for (const auto& a : acks) {
        if (a.partition != partition || a.message_id.empty()) continue;
        HistoryEvent& e = out.emplace_back();
        e.kind = history::kAttempt;
        e.message_id = a.message_id;
        e.subscription = consumer_group(options_.subscription);
        e.consumer = options_.consumer;
        e.attempt = a.attempt;
        e.outcome = a.filtered ? "filtered" : "acked";
        e.duration_ms = a.duration_ms;  // no stream id: the published event has it
    }
    return out;
}

void SubscriptionRunner::maintenance_loop() {
    std::unique_ptr<redis::Connection> conn;
    auto next_reclaim = std::chrono::steady_clock::now();
    auto next_extend = next_reclaim + options_.subscription.visibility_timeout / 3;
    while (!stopping_) {
        try {
            if (!conn) conn = std::make_unique<redis::Connection>(options_.endpoint);
            ConsumerGroups groups(*conn, options_.keys);
            auto now = std::chrono::steady_clock::now();
            if (options_.move_delayed)
                metrics_->moved_delayed += static_cast<std::uint64_t>(
                    Scheduler(*conn, options_.keys).move_due(options_.queue).moved);
            if (now >= next_reclaim && fetching_ && !paused_) {
                next_reclaim = now + options_.reclaim_interval;
                for (int p = 0; p < options_.queue.partition_count; ++p) {
                    auto r =
                        groups.reclaim(options_.queue, options_.subscription, options_.consumer, p);
                    metrics_->dead_lettered += static_cast<std::uint64_t>(r.dead_lettered);
                    metrics_->dropped += static_cast<std::uint64_t>(r.dropped);
                    if (r.claimed.empty()) continue;
                    metrics_->reclaimed += r.claimed.size();
                    if (inline_) {
                        std::vector<PendingAck> acks;
                        deliver_inline(groups, r.claimed, true, acks);
                        send_acks(groups, acks);
                        continue;
                    }
                    {
                        std::lock_guard lock(mu_);
                        for (auto& f : r.claimed) queue_.push_back(std::move(f));
                    }
                    cv_.notify_all();
                }
            }
            if (now >= next_extend) {
                // Keep the lease of everything this worker holds: running or queued.
                next_extend = now + options_.subscription.visibility_timeout / 3;
                std::map<int, std::vector<std::string>> held;
                {
                    std::lock_guard lock(mu_);
                    for (const auto& [key, count] : in_progress_)
                        held[key.first].push_back(key.second);
                    if (inline_batch_)
                        for (const auto& f : *inline_batch_)
                            held[f.partition].push_back(f.stream_id);
                    for (const auto& f : queue_) held[f.partition].push_back(f.stream_id);
                }
                for (const auto& [p, ids] : held)
                    groups.extend(options_.queue, consumer_group(options_.subscription),
                                  options_.consumer, p, ids);
            }
            healthy_ = true;
        } catch (const std::exception& e) {
            conn.reset();
            backend_error("maintenance", e);
            for (int i = 0; i < 10 && !stopping_; ++i) std::this_thread::sleep_for(100ms);
        }
        std::this_thread::sleep_for(20ms);
    }
}

bool SubscriptionRunner::stop(std::chrono::steady_clock::time_point deadline) {
    if (fetchers_.empty() && handlers_.empty() && !maintenance_.joinable()) return true;
    auto log_scope = subscription_log_scope(options_);
    fetching_ = false;
    space_cv_.notify_all();
    for (auto& t : fetchers_) t.join();
    fetchers_.clear();

    // Entries fetched but not started go back at once, so another worker takes them.
    std::deque<Fetched> unstarted;
    {
        std::lock_guard lock(mu_);
        unstarted.swap(queue_);
    }
    if (!unstarted.empty()) {
        try {
            redis::Connection conn(options_.endpoint);
            ConsumerGroups groups(conn, options_.keys);
            for (const auto& f : unstarted)
                groups.release(options_.queue, consumer_group(options_.subscription), f.partition,
                               f.stream_id, f.delivery_count);
        } catch (const std::exception& e) {
            spdlog::warn(
                "{}/{}: could not hand back {} unstarted entries ({}); they are redelivered after "
                "the visibility timeout",
                options_.queue.name, options_.subscription.name, unstarted.size(), e.what());
        }
    }
    // Running deliveries finish until the deadline; then they are abandoned (an exec
    // command is terminated, a webhook request aborted) and every thread is joined: no
    // thread outlives the runner.
    bool finished = true;
    {
        std::unique_lock lock(mu_);
        finished = idle_cv_.wait_until(lock, deadline, [&] { return busy_handlers_ == 0; });
        stopping_ = true;
    }
    if (!finished) {
        spdlog::warn(
            "{}/{}: {} deliveries still running at the shutdown deadline; abandoning them (they "
            "stay "
            "pending and are redelivered after the visibility timeout)",
            options_.queue.name, options_.subscription.name, busy_handlers_);
        abandoned_ = true;
    }
    cv_.notify_all();
    for (auto& t : handlers_) t.join();
    // Acks left queued by a handler whose Redis connection failed.
    std::vector<PendingAck> left;
    {
        std::lock_guard lock(ack_mu_);
        left.swap(acks_);
    }
    if (!left.empty()) {
        try {
            redis::Connection conn(options_.endpoint);
            ConsumerGroups groups(conn, options_.keys);
            send_acks(groups, left);
        } catch (const std::exception& e) {
            spdlog::warn(
                "{}/{}: could not ack {} delivered entries ({}); they are redelivered after "
                "the visibility timeout",
                options_.queue.name, options_.subscription.name, left.size(), e.what());
        }
    }
    handlers_.clear();
    if (maintenance_.joinable()) maintenance_.join();
    return finished;
}

}  // namespace mq
