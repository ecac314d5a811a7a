#include "mq/maintenance/service.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>

#include "mq/consume/dead_letter_archive.hpp"
#include "mq/core/log_context.hpp"
#include "mq/core/partitioner.hpp"
#include "mq/core/time.hpp"
#include "mq/error.hpp"
#include "mq/publish/scheduler.hpp"
#include "mq/queue/catalog.hpp"

namespace mq {

namespace {

// One consumer name for every archiver: only a shard's holder archives its queues, and a
// new holder reading the group's pending entries ("0") finishes a batch its crashed
// predecessor left unacked. Two holders overlapping for a moment insert the same rows
// (ON CONFLICT DO NOTHING) and XACK them twice, which is harmless.
constexpr const char* kArchiveConsumer = "maintenance";
constexpr int kGlobalSlot = kMaintenanceShards;  // index of the global lease in valid_until_

// GET key == owner ? PEXPIRE key ttl : nothing. KEYS: lease. ARGV: owner, ttl ms.
// Returns 1 when renewed, 0 when the lease is gone or someone else's.
const redis::Script kRenewScript(R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 0
)lua");

// GET key == owner ? DEL key : nothing. KEYS: lease. ARGV: owner. Never deletes another
// holder's lease.
const redis::Script kReleaseScript(R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
)lua");

// ZREMRANGEBYSCORE members -inf now; ZADD members now+ttl owner; ZCARD members.
// KEYS: members. ARGV: owner, ttl ms. Returns the live instances (this one included).
// Scores are Redis time, so hosts with skewed clocks agree on who is alive.
const redis::Script kMembersScript(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return redis.call('ZCARD', KEYS[1])
)lua");

std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::string default_instance() {
    char host[256] = "host";
    gethostname(host, sizeof host - 1);
    return std::string(host) + "-" + std::to_string(getpid());
}

std::string random_suffix() {
    std::random_device rd;
    static const char* kHex = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 8; ++i) s += kHex[rd() % 16];
    return s;
}

bool is_backend_error(const std::exception& e) {
    const auto* err = dynamic_cast<const Error*>(&e);
    return err && err->code() == ErrorCode::kBackendUnavailable;
}

redis::ConnectOptions connect_options() {
    redis::ConnectOptions o;
    o.connect_timeout = std::chrono::milliseconds(1000);
    o.command_timeout = std::chrono::milliseconds(3000);
    return o;
}

}  // namespace

int maintenance_shard(std::string_view tenant, std::string_view queue) {
    std::string key;
    key.reserve(tenant.size() + queue.size() + 1);
    key.append(tenant).append("/").append(queue);
    return static_cast<int>(fnv1a_64(key) % kMaintenanceShards);
}

/// A backend's state, shared by the threads: each outage is logged once when it starts
/// and once when it ends.
struct MaintenanceService::Outage {
    explicit Outage(std::string what) : name(std::move(what)) {}
    void failed(const std::string& message) {
        if (!down.exchange(true))
            spdlog::warn(
                "maintenance: {} unavailable ({}); retrying with backoff, logged once per outage",
                name, message);
    }
    void ok() {
        if (down.exchange(false)) spdlog::info("maintenance: {} is back; resuming", name);
    }
    std::string name;
    std::atomic<bool> down{false};
};

struct MaintenanceService::Task {
    enum class Kind { kMover, kArchive, kQueue, kGlobal };
    Kind kind = Kind::kQueue;
    std::string name;
    std::chrono::milliseconds interval{1000};
    QueueTask queue_fn;
    GlobalTask global_fn;
    std::atomic<std::int64_t> runs{0};
    std::atomic<std::int64_t> errors{0};
    std::atomic<std::int64_t> last_run_ms{0};
    // Error log throttle: only this task's thread touches these.
    std::string last_logged;
    std::int64_t last_logged_ms = 0;

    void log_error(const std::string& what, const std::string& message) {
        std::int64_t now = now_ms();
        if (message == last_logged && now - last_logged_ms < 60000) return;
        last_logged = message;
        last_logged_ms = now;
        spdlog::warn("maintenance: {} {}: {}", name, what, message);
    }
};

MaintenanceService::MaintenanceService(MaintenanceOptions options)
    : options_(std::move(options)),
      queues_(std::make_shared<const std::vector<Queue>>()),
      valid_until_(new std::atomic<std::int64_t>[kMaintenanceShards + 1]),
      redis_outage_(std::make_unique<Outage>("Redis at " + options_.redis.describe())),
      pg_outage_(
          std::make_unique<Outage>("PostgreSQL at " + pg::describe_url(options_.database_url))) {
    if (options_.instance.empty()) options_.instance = default_instance();
    owner_ = options_.instance + ":" + random_suffix();
    for (int i = 0; i <= kMaintenanceShards; ++i) valid_until_[i] = 0;
    if (options_.lease_renew >= options_.lease_ttl)
        throw ValidationError(
            "maintenance: the lease renew interval must be shorter than the lease TTL");
    auto mover = std::make_unique<Task>();
    mover->kind = Task::Kind::kMover;
    mover->name = "delayed-mover";
    mover->interval = options_.mover_interval;
    tasks_.push_back(std::move(mover));
    auto archive = std::make_unique<Task>();
    archive->kind = Task::Kind::kArchive;
    archive->name = "dead-letter-archive";
    archive->interval = options_.archive_interval;
    tasks_.push_back(std::move(archive));
}

MaintenanceService::~MaintenanceService() { stop(); }

void MaintenanceService::add_queue_task(std::string name, std::chrono::milliseconds interval,
                                        QueueTask task) {
    if (started_) throw Error(ErrorCode::kInternal, "maintenance: add tasks before start()");
    auto t = std::make_unique<Task>();
    t->kind = Task::Kind::kQueue;
    t->name = std::move(name);
    t->interval = interval;
    t->queue_fn = std::move(task);
    tasks_.push_back(std::move(t));
}

void MaintenanceService::add_global_task(std::string name, std::chrono::milliseconds interval,
                                         GlobalTask task) {
    if (started_) throw Error(ErrorCode::kInternal, "maintenance: add tasks before start()");
    auto t = std::make_unique<Task>();
    t->kind = Task::Kind::kGlobal;
    t->name = std::move(name);
    t->interval = interval;
    t->global_fn = std::move(task);
    tasks_.push_back(std::move(t));
}

void MaintenanceService::start() {
    if (started_) return;
    started_ = true;
    stopping_ = false;
    // Each thread's lines name what it does ("task": a task's name, "leases", "queue-list").
    threads_.emplace_back([this] {
        LogScope scope{{"task", "leases"}};
        lease_loop();
    });
    threads_.emplace_back([this] {
        LogScope scope{{"task", "queue-list"}};
        refresh_loop();
    });
    for (auto& t : tasks_)
        threads_.emplace_back([this, task = t.get()] {
            LogScope scope{{"task", task->name}};
            if (task->kind == Task::Kind::kMover)
                mover_loop(*task);
            else
                task_loop(*task);
        });
    spdlog::info("maintenance: started as {} ({} tasks, lease {} ms renewed every {} ms)", owner_,
                 tasks_.size(), options_.lease_ttl.count(), options_.lease_renew.count());
}

void MaintenanceService::stop() {
    if (!started_ || threads_.empty()) return;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    if (options_.release_on_stop) release_all();
    for (int i = 0; i <= kMaintenanceShards; ++i) valid_until_[i] = 0;
    spdlog::info("maintenance: stopped{}",
                 options_.release_on_stop ? " and released its leases" : "");
}

bool MaintenanceService::holds(int shard) const {
    std::int64_t until = valid_until_[shard].load();
    return until != 0 && steady_ns() < until;
}

bool MaintenanceService::sleep_for(std::chrono::milliseconds d) {
    std::unique_lock lock(mutex_);
    return !wake_.wait_for(lock, d, [this] { return stopping_.load(); });
}

void MaintenanceService::refresh_queues() {
    {
        std::lock_guard lock(mutex_);
        refresh_requested_ = true;
    }
    wake_.notify_all();
}

std::shared_ptr<const std::vector<Queue>> MaintenanceService::queues() const {
    std::lock_guard lock(mutex_);
    return queues_;
}

std::unique_ptr<redis::Connection> MaintenanceService::connect_redis() const {
    return std::make_unique<redis::Connection>(options_.redis, connect_options());
}

void MaintenanceService::backend_failed(redis::Connection* redis, const std::exception& e,
                                        const std::string& doing) {
    // The backend's own messages name it ("... PostgreSQL at host:port ...").
    if (std::string_view(e.what()).find("PostgreSQL") != std::string_view::npos) {
        pg_outage_->failed(doing + ": " + e.what());
        return;
    }
    // A connection Redis closed while it was idle (a restart) fails once and reconnects:
    // if a PING on it works now, that was no outage.
    if (redis) {
        try {
            redis->command({"PING"});
            spdlog::debug("maintenance: {}: {} (Redis answers again)", doing, e.what());
            return;
        } catch (const std::exception&) {
        }
    }
    redis_outage_->failed(doing + ": " + e.what());
}

// Only the threads that talk to a backend on every round report it back: the lease loop
// (Redis) and the queue-list refresh (PostgreSQL). A task pass that happened to need
// neither proves nothing.
void MaintenanceService::backend_ok(bool redis, bool postgres) {
    if (redis) redis_outage_->ok();
    if (postgres) pg_outage_->ok();
}

// ---------------------------------------------------------------- leases

int MaintenanceService::lease_round(redis::Connection& redis) {
    const std::int64_t started = steady_ns();
    const std::int64_t validity = started + std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                options_.lease_ttl - options_.lease_renew)
                                                .count();
    const std::string ttl = std::to_string(options_.lease_ttl.count());
    const auto& keys = options_.keys;
    auto lease_key = [&](int i) {
        return i == kGlobalSlot ? keys.maintenance_global_lease() : keys.maintenance_lease(i);
    };

    // Who is alive, and who holds what.
    redis::Pipeline look;
    look.add_script(kMembersScript, {keys.maintenance_members()}, {owner_, ttl});
    for (int i = 0; i <= kMaintenanceShards; ++i) look.add({"GET", lease_key(i)});
    auto seen = redis.execute(look);
    for (const auto& r : seen)
        if (r.is_error()) throw Error(ErrorCode::kInternal, "maintenance lease round: " + r.str);
    const int instances = std::max<int>(1, static_cast<int>(seen[0].as_integer()));
    const int fair = (kMaintenanceShards + instances - 1) / instances;

    std::vector<int> mine, vacant;
    for (int i = 0; i <= kMaintenanceShards; ++i) {
        const auto& holder = seen[static_cast<std::size_t>(i) + 1];
        if (!holder.is_nil() && holder.str == owner_) {
            mine.push_back(i);
        } else {
            if (valid_until_[i].exchange(0) != 0) {
                // Deleted or overwritten by someone else: stop at once, never touch it.
                ++lease_losses_;
                spdlog::warn("maintenance: lost the lease of {} (now {}); stopped its work",
                             i == kGlobalSlot ? std::string("the global tasks")
                                              : "shard " + std::to_string(i),
                             holder.is_nil() ? std::string("free") : "held by " + holder.str);
            }
            if (holder.is_nil()) vacant.push_back(i);
        }
    }
    int held_shards = static_cast<int>(
        std::count_if(mine.begin(), mine.end(), [](int i) { return i != kGlobalSlot; }));

    redis::Pipeline act;
    struct Action {
        int slot;
        enum { kRenew, kTake, kRelease } what;
    };
    std::vector<Action> actions;
    // Hand one shard back per round while holding more than a fair share, so a new
    // instance gets work without a stampede.
    int release = held_shards > fair ? mine[static_cast<std::size_t>(held_shards) - 1] : -1;
    for (int i : mine) {
        if (i == release) {
            valid_until_[i] = 0;  // before the DEL: never work a shard we are giving away
            act.add_script(kReleaseScript, {lease_key(i)}, {owner_});
            actions.push_back({i, Action::kRelease});
        } else {
            act.add_script(kRenewScript, {lease_key(i)}, {owner_, ttl});
            actions.push_back({i, Action::kRenew});
        }
    }
    int may_take = std::max(0, fair - held_shards);
    for (int i : vacant) {
        if (i != kGlobalSlot) {
            if (may_take == 0) continue;
            --may_take;
        }
        act.add({"SET", lease_key(i), owner_, "NX", "PX", ttl});
        actions.push_back({i, Action::kTake});
    }
    if (!act.empty()) {
        auto replies = redis.execute(act);
        for (std::size_t k = 0; k < actions.size(); ++k) {
            const auto& r = replies[k];
            const int i = actions[k].slot;
            if (r.is_error())
                throw Error(ErrorCode::kInternal, "maintenance lease round: " + r.str);
            switch (actions[k].what) {
                case Action::kRenew:
                    if (r.as_integer() == 1) {
                        valid_until_[i] = validity;
                    } else if (valid_until_[i].exchange(0) != 0) {
                        ++lease_losses_;
                        spdlog::warn("maintenance: lost lease {} at renewal; stopped its work",
                                     lease_key(i));
                    }
                    break;
                case Action::kTake:
                    if (!r.is_nil()) {
                        valid_until_[i] = validity;
                        spdlog::debug("maintenance: took lease {}", lease_key(i));
                    }
                    break;
                case Action::kRelease:
                    spdlog::debug("maintenance: handed back lease {} ({} instances)", lease_key(i),
                                  instances);
                    break;
            }
        }
    }
    return instances;
}

void MaintenanceService::lease_loop() {
    std::unique_ptr<redis::Connection> redis;
    int failures = 0;
    while (!stopping_) {
        auto wait = options_.lease_renew;
        try {
            if (!redis) redis = connect_redis();
            instances_ = lease_round(*redis);
            backend_ok(true, false);
            failures = 0;
        } catch (const std::exception& e) {
            if (is_backend_error(e)) {
                backend_failed(redis.get(), e, "lease renewal");
            } else {
                spdlog::warn("maintenance: lease round failed: {}", e.what());
            }
            // The first retry comes at the renew interval, still within the TTL, so a
            // short blip keeps the leases; then back off (the local validity runs out on
            // its own meanwhile, so nothing is worked without a lease).
            wait =
                std::min(options_.lease_renew * (1 << std::min(failures, 4)), options_.max_backoff);
            ++failures;
        }
        if (!sleep_for(wait)) break;
    }
}

void MaintenanceService::release_all() {
    try {
        redis::ConnectOptions o;
        o.connect_timeout = std::chrono::milliseconds(500);
        o.command_timeout = std::chrono::milliseconds(1000);
        redis::Connection redis(options_.redis, o);
        redis::Pipeline p;
        for (int i = 0; i < kMaintenanceShards; ++i)
            p.add_script(kReleaseScript, {options_.keys.maintenance_lease(i)}, {owner_});
        p.add_script(kReleaseScript, {options_.keys.maintenance_global_lease()}, {owner_});
        p.add({"ZREM", options_.keys.maintenance_members(), owner_});
        redis.execute(p);
    } catch (const std::exception& e) {
        spdlog::warn("maintenance: could not release leases ({}); they expire in {} ms", e.what(),
                     options_.lease_ttl.count());
    }
}

// ---------------------------------------------------------------- queue list

void MaintenanceService::refresh_loop() {
    std::unique_ptr<pg::Database> db;
    auto backoff = std::chrono::milliseconds(250);
    while (!stopping_) {
        auto wait = options_.queue_refresh;
        try {
            if (!db) db = std::make_unique<pg::Database>(options_.database_url);
            auto list = std::make_shared<const std::vector<Queue>>(Catalog(*db).all_queues());
            queue_count_ = static_cast<std::int64_t>(list->size());
            {
                std::lock_guard lock(mutex_);
                queues_ = std::move(list);
            }
            backend_ok(false, true);
            backoff = std::chrono::milliseconds(250);
        } catch (const std::exception& e) {
            // Keep the last list: the Redis-only tasks go on with it.
            if (is_backend_error(e))
                pg_outage_->failed(std::string("reading the queue list: ") + e.what());
            else
                spdlog::warn("maintenance: cannot read the queue list: {}", e.what());
            wait = std::min(backoff, options_.queue_refresh);
            backoff = std::min(backoff * 2, options_.max_backoff);
        }
        // Sleep until the next refresh, stop(), or refresh_queues().
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, wait,
                       [this] { return stopping_.load() || refresh_requested_.load(); });
        refresh_requested_ = false;
    }
}

// ---------------------------------------------------------------- the mover

std::int64_t MaintenanceService::move_held(redis::Connection& redis) {
    auto list = queues();
    struct Slot {
        const Queue* queue;
        int partition;
        int shard;
    };
    std::vector<Slot> slots;
    for (const auto& q : *list) {
        int shard = maintenance_shard(q.tenant, q.name);
        if (!holds(shard)) continue;
        for (int p = 0; p < q.partition_count; ++p) slots.push_back({&q, p, shard});
    }
    if (slots.empty()) return 0;
    // TIME; ZRANGE d 0 0 WITHSCORES per partition: the earliest due of every partition in
    // one round trip, so only partitions with something due cost a script call.
    redis::Pipeline peek;
    peek.add({"TIME"});
    for (const auto& s : slots)
        peek.add({"ZRANGE", options_.keys.delayed(s.queue->tenant, s.queue->name, s.partition), "0",
                  "0", "WITHSCORES"});
    auto replies = redis.execute(peek);
    const auto& time = replies.at(0);
    if (time.is_error() || time.elements.size() < 2)
        throw Error(ErrorCode::kInternal, "maintenance: TIME failed");
    const std::int64_t now =
        time.elements[0].as_integer() * 1000 + time.elements[1].as_integer() / 1000;
    Scheduler scheduler(redis, options_.keys);
    std::int64_t moved = 0;
    for (std::size_t i = 0; i < slots.size(); ++i) {
        const auto& r = replies[i + 1];
        if (!r.is_array() || r.elements.size() < 2) continue;
        const double due = std::strtod(r.elements[1].str.c_str(), nullptr);
        if (due > static_cast<double>(now) || !holds(slots[i].shard)) continue;
        moved += scheduler.move_due_partition(*slots[i].queue, slots[i].partition).moved;
    }
    return moved;
}

void MaintenanceService::mover_loop(Task& task) {
    std::unique_ptr<redis::Connection> redis;
    auto backoff = std::chrono::milliseconds(250);
    while (!stopping_) {
        auto wait = task.interval;
        try {
            if (!redis) redis = connect_redis();
            moved_ += move_held(*redis);
            ++task.runs;
            task.last_run_ms = now_ms();
            backoff = std::chrono::milliseconds(250);
        } catch (const std::exception& e) {
            ++task.errors;
            ++task_errors_;
            if (is_backend_error(e)) {
                backend_failed(redis.get(), e, "delayed mover");
                wait = backoff;
                backoff = std::min(backoff * 2, options_.max_backoff);
            } else {
                task.log_error("failed", e.what());
            }
        }
        if (!sleep_for(wait)) break;
    }
}

// ---------------------------------------------------------------- other tasks

void MaintenanceService::task_loop(Task& task) {
    std::unique_ptr<redis::Connection> redis;
    std::unique_ptr<pg::Database> db;
    auto backoff = std::chrono::milliseconds(250);
    auto ensure_db = [&]() -> pg::Database& {
        if (!db) db = std::make_unique<pg::Database>(options_.database_url);
        return *db;
    };
    // A first pass soon after start, once leases had a chance to be taken.
    auto wait = std::min(task.interval, options_.lease_renew);
    while (sleep_for(wait)) {
        wait = task.interval;
        try {
            if (!redis) redis = connect_redis();
            if (task.kind == Task::Kind::kGlobal) {
                if (holds(kGlobalSlot)) {
                    auto& database = ensure_db();
                    try {
                        task.global_fn(*redis, database);
                    } catch (const std::exception& e) {
                        if (is_backend_error(e)) throw;
                        ++task.errors;
                        ++task_errors_;
                        task.log_error("failed", e.what());
                    }
                }
            } else {
                auto list = queues();
                for (const auto& q : *list) {
                    if (stopping_) break;
                    if (!holds(maintenance_shard(q.tenant, q.name)))
                        continue;  // lost: stop at once
                    LogScope queue_scope{{"tenant", q.tenant}, {"queue", q.name}};
                    try {
                        if (task.kind == Task::Kind::kArchive) {
                            auto& database = ensure_db();
                            DeadLetterArchiver archiver(*redis, database, options_.keys,
                                                        kArchiveConsumer);
                            if (auto n = archiver.archive(q); n > 0) {
                                archived_ += n;
                                spdlog::info(
                                    "maintenance: {}/{}: archived {} dead letter(s) to PostgreSQL",
                                    q.tenant, q.name, n);
                            }
                        } else {
                            task.queue_fn(*redis, q);
                        }
                    } catch (const std::exception& e) {
                        if (is_backend_error(e)) throw;
                        ++task.errors;
                        ++task_errors_;
                        task.log_error("on " + q.tenant + "/" + q.name, e.what());
                    }
                }
            }
            ++task.runs;
            task.last_run_ms = now_ms();
            backoff = std::chrono::milliseconds(250);
        } catch (const std::exception& e) {
            ++task.errors;
            ++task_errors_;
            if (is_backend_error(e)) {
                backend_failed(redis.get(), e, task.name);
            } else {
                task.log_error("failed", e.what());
            }
            wait = std::min(backoff, task.interval);
            backoff = std::min(backoff * 2, options_.max_backoff);
        }
    }
}

// ---------------------------------------------------------------- one pass

MaintenancePass MaintenanceService::run_once() {
    MaintenancePass pass;
    redis::Connection redis(options_.redis);
    pg::Database db(options_.database_url);
    const auto list = Catalog(db).all_queues();
    pass.queues = static_cast<std::int64_t>(list.size());
    std::map<int, std::vector<const Queue*>> by_shard;
    for (const auto& q : list) by_shard[maintenance_shard(q.tenant, q.name)].push_back(&q);

    const std::string ttl = std::to_string(options_.lease_ttl.count());
    auto take = [&](const std::string& key) {
        return !redis.command({"SET", key, owner_, "NX", "PX", ttl}).is_nil();
    };
    auto renew = [&](const std::string& key) {
        return redis.eval(kRenewScript, {key}, {owner_, ttl}).as_integer() == 1;
    };
    auto release = [&](const std::string& key) {
        try {
            redis.eval(kReleaseScript, {key}, {owner_});
        } catch (const std::exception&) {
            // It expires within the TTL anyway; the error that matters is already thrown.
        }
    };
    auto guarded = [&](const std::string& what, auto&& call) {
        try {
            call();
        } catch (const std::exception& e) {
            if (is_backend_error(e)) throw;
            ++pass.errors;
            spdlog::warn("maintenance: {}: {}", what, e.what());
        }
    };

    Scheduler scheduler(redis, options_.keys);
    DeadLetterArchiver archiver(redis, db, options_.keys, kArchiveConsumer);
    for (const auto& [shard, queues] : by_shard) {
        const std::string key = options_.keys.maintenance_lease(shard);
        if (!take(key)) {
            pass.shards_skipped.push_back(shard);
            pass.queues_skipped += static_cast<std::int64_t>(queues.size());
            continue;
        }
        bool lost = false;
        try {
            for (const Queue* q : queues) {
                // Renewed per queue, so a long pass keeps the shard, and a lost lease
                // (deleted or taken) ends this shard's work.
                if (!renew(key)) {
                    lost = true;
                    break;
                }
                const std::string where = q->tenant + "/" + q->name;
                LogScope queue_scope{{"tenant", q->tenant}, {"queue", q->name}};
                guarded("delayed mover on " + where,
                        [&] { pass.moved += scheduler.move_due(*q).moved; });
                guarded("dead-letter archive on " + where,
                        [&] { pass.archived += archiver.archive(*q); });
                for (auto& t : tasks_)
                    if (t->kind == Task::Kind::kQueue)
                        guarded(t->name + " on " + where, [&] { t->queue_fn(redis, *q); });
            }
        } catch (...) {
            release(key);
            throw;
        }
        if (lost) {
            spdlog::warn(
                "maintenance: lost the lease of shard {} during the pass; skipped the rest of it",
                shard);
            pass.shards_skipped.push_back(shard);
            continue;
        }
        release(key);
        pass.shards_done.push_back(shard);
    }

    bool any_global = std::any_of(tasks_.begin(), tasks_.end(),
                                  [](const auto& t) { return t->kind == Task::Kind::kGlobal; });
    if (any_global) {
        const std::string key = options_.keys.maintenance_global_lease();
        if (take(key)) {
            try {
                for (auto& t : tasks_)
                    if (t->kind == Task::Kind::kGlobal)
                        guarded(t->name, [&] { t->global_fn(redis, db); });
            } catch (...) {
                release(key);
                throw;
            }
            release(key);
            pass.global_done = true;
        } else {
            pass.global_skipped = true;
        }
    }
    moved_ += pass.moved;
    archived_ += pass.archived;
    task_errors_ += pass.errors;
    return pass;
}

MaintenanceStats MaintenanceService::stats() const {
    MaintenanceStats s;
    s.moved = moved_;
    s.archived = archived_;
    s.task_errors = task_errors_;
    s.lease_losses = lease_losses_;
    for (int i = 0; i < kMaintenanceShards; ++i) s.leases_held += holds(i) ? 1 : 0;
    s.global_lease = holds(kGlobalSlot);
    s.instances = instances_;
    s.queues = queue_count_;
    s.redis_available = !redis_outage_->down;
    s.postgres_available = !pg_outage_->down;
    for (const auto& t : tasks_) s.tasks.push_back({t->name, t->runs, t->errors, t->last_run_ms});
    return s;
}

}  // namespace mq
