#include "mq/schedule/ticker.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "mq/core/log_context.hpp"
#include "mq/core/time.hpp"
#include "mq/crypto/keyring.hpp"
#include "mq/publish/publish_use_case.hpp"
#include "mq/queue/payload_schema.hpp"
#include "mq/schedule/cron.hpp"

namespace mq {

namespace {

using Clock = std::chrono::system_clock;

Clock::time_point at_ms(std::int64_t ms) {
    return Clock::time_point(std::chrono::milliseconds(ms));
}
std::int64_t ms_of(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Counting due ticks one by one stops here; a longer outage jumps to the last month.
constexpr std::int64_t kMaxCount = 10000;

/// A tick that published nothing for a reason that retrying will not fix.
struct TickFailed {
    std::string reason;
};

/// Redis failed while publishing a tick (PostgreSQL failures stay mq::Error).
struct RedisDown {
    Error error;
};

}  // namespace

std::string schedule_tick_key(const std::string& name, std::int64_t tick_ms) {
    return "schedule:" + name + ":" + std::to_string(tick_ms);
}

ScheduleTicker::ScheduleTicker(pg::Database& db, redis::Connection& redis, KeyLayout keys,
                               TickerOptions options)
    : schedules_(db),
      queues_(db),
      publisher_(redis, std::move(keys), options.limits),
      options_(options) {}

void ScheduleTicker::backend_down(const char* which, bool& flag, const Error& e) {
    if (!flag)
        spdlog::warn("cron schedules: no ticks while {} is unavailable ({}); catching up when back",
                     which, e.what());
    flag = true;
}

std::int64_t ScheduleTicker::run_due(Clock::time_point now) {
    const std::int64_t now_ms = ms_of(now);
    std::vector<Schedule> due;
    try {
        due = schedules_.due(now_ms, options_.batch, options_.only_tenant);
    } catch (const Error& e) {
        if (e.code() == ErrorCode::kBackendUnavailable)
            backend_down("PostgreSQL", pg_down_, e);
        else
            spdlog::error("cron schedules: cannot read due schedules: {}", e.what());
        return 0;
    }
    if (pg_down_) spdlog::info("cron schedules: PostgreSQL is back; catching up");
    pg_down_ = false;
    std::int64_t published = 0;
    for (const auto& s : due) {
        LogScope scope{{"tenant", s.tenant}, {"schedule", s.name}};
        try {
            if (tick(s, now_ms)) ++published;
        } catch (const RedisDown& down) {
            // The tick stays due: the next call publishes it and records it.
            backend_down("Redis", redis_down_, down.error);
            return published;
        } catch (const Error& e) {
            if (e.code() != ErrorCode::kBackendUnavailable) {
                spdlog::error("cron schedule {}/{}: {}", s.tenant, s.name, e.what());
                continue;
            }
            // Published but not recorded, or not published: the tick stays due, and a
            // repeat is a duplicate thanks to its idempotency key.
            backend_down("PostgreSQL", pg_down_, e);
            return published;
        }
    }
    if (redis_down_ && !due.empty()) spdlog::info("cron schedules: Redis is back");
    if (!due.empty()) redis_down_ = false;
    return published;
}

// The tick(s) due for `s`: T = next_tick_at, L = the last tick <= now. With one tick on
// time, publish it. Otherwise ticks were missed: `once` publishes one message for L (header
// mq-schedule-missed: how many earlier ticks it stands for), `skip` publishes L only when L
// itself is on time. Then next_tick_at moves from T to the tick after L, compare-and-set.
bool ScheduleTicker::tick(const Schedule& s, std::int64_t now_ms) {
    const std::int64_t expected = *s.next_tick_ms;
    std::optional<CronSchedule> cron;
    try {
        cron.emplace(s.cron, s.tz);
    } catch (const ValidationError& e) {
        // A zone removed from the tz database: stop ticking (next tick NULL), say why.
        spdlog::error("cron schedule {}/{} stopped: {}", s.tenant, s.name, e.what());
        schedules_.record_tick(s.id, expected, expected, std::nullopt, "", e.what());
        return false;
    }
    std::int64_t last = expected, count = 1;
    while (true) {
        auto n = cron->next_after(at_ms(last));
        if (!n || ms_of(*n) > now_ms) break;
        last = ms_of(*n);
        if (++count >= kMaxCount) {
            for (auto m = cron->next_after(at_ms(now_ms) - std::chrono::hours(24 * 31));
                 m && ms_of(*m) <= now_ms; m = cron->next_after(*m))
                last = std::max(last, ms_of(*m));
            break;
        }
    }
    auto next = cron->next_after(at_ms(last));
    const std::optional<std::int64_t> next_ms = next ? std::optional(ms_of(*next)) : std::nullopt;
    const bool on_time = now_ms - last <= options_.misfire_grace.count();

    if (!on_time && s.misfire == "skip") {
        spdlog::info("cron schedule {}/{}: skipped {} missed tick(s) up to {} (misfire: skip)",
                     s.tenant, s.name, count, format_rfc3339(last));
        schedules_.record_tick(s.id, expected, last, next_ms, "", "");
        return false;
    }
    const std::int64_t missed = count - 1;
    std::string id, error;
    bool fresh = false;
    try {
        auto out = publish(s, last, s.misfire == "once" ? missed : 0);
        id = out.message_id;
        fresh = out.status == PublishStatus::kAccepted;
    } catch (const TickFailed& f) {
        error = f.reason;
    } catch (const RedisDown&) {
        throw;
    } catch (const Error& e) {
        if (e.code() == ErrorCode::kBackendUnavailable) throw;
        error = e.what();
    }
    if (!error.empty())
        spdlog::warn("cron schedule {}/{}: tick {} published nothing: {}", s.tenant, s.name,
                     format_rfc3339(last), error);
    // Lost the compare-and-set: another instance recorded this tick (or an update moved
    // it); the message, if this call stored it, is the tick's one message all the same.
    schedules_.record_tick(s.id, expected, last, next_ms, id, error);
    return fresh;
}

PublishOutcome ScheduleTicker::publish(const Schedule& s, std::int64_t tick_ms,
                                       std::int64_t missed) {
    auto queue = queues_.find_queue(s.tenant, s.queue);
    if (!queue)
        throw TickFailed{"queue '" + s.queue +
                         "' does not exist (deleted?); update or delete the schedule"};
    PublishRequest r;
    r.payload = s.payload;
    r.key = s.key;
    r.content_type = s.content_type;
    r.headers = s.headers;
    r.headers[kScheduleHeader] = s.name;
    r.headers[kScheduleTickHeader] = format_rfc3339(tick_ms);
    if (missed > 0) r.headers[kScheduleMissedHeader] = std::to_string(missed);
    r.idempotency_key = schedule_tick_key(s.name, tick_ms);
    if (queue->encryption != "none" && !options_.keyring)
        throw TickFailed{"queue '" + s.queue + "' is encrypted and no keyring is loaded"};
    // The publish use case admits a tick like any publish: limits, the queue's current
    // schema, sealing. No quota: a schedule is the tenant's own configuration.
    const PublishUseCase admission(
        options_.limits,
        options_.keyring ? std::shared_ptr<const Keyring>(std::shared_ptr<void>(), options_.keyring)
                         : std::make_shared<const Keyring>(),
        schemas_);
    admission.admit(*queue, r);
    Queue q = *queue;
    q.dedup_window = std::max(q.dedup_window, options_.min_dedup_window);
    PublishOutcome out;
    try {
        out = publisher_.publish(q, r);
    } catch (const Error& e) {
        if (e.code() == ErrorCode::kBackendUnavailable) throw RedisDown{e};
        throw;
    }
    if (out.status == PublishStatus::kRejected)
        throw TickFailed{out.error ? out.error->what() : std::string("rejected")};
    // A duplicate means this tick was published before (a crash before the record, or
    // another instance): nothing new, but the tick is done.
    return out;
}

}  // namespace mq
