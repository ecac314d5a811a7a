#include "mq/worker/supervisor.hpp"

#include <spdlog/spdlog.h>

#include "mq/consume/control.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/core/log_context.hpp"
#include "mq/error.hpp"
#include "mq/pg/database.hpp"
#include "mq/queue/catalog.hpp"
#include "mq/worker/worker_config.hpp"

namespace mq {

using namespace std::chrono_literals;

namespace {

std::string key_of(const std::string& tenant, const std::string& queue_tenant,
                   const std::string& queue, const std::string& name) {
    return tenant + '\n' + (queue_tenant.empty() ? tenant : queue_tenant) + '\n' + queue + '\n' +
           name;
}

std::string describe(const Subscription& s) { return s.tenant + "/" + s.queue + "/" + s.name; }

// The subscription a log line is about, as fields.
LogScope subscription_log_scope(const Subscription& s) {
    return LogScope{{"tenant", s.tenant}, {"queue", s.queue}, {"subscription", s.name}};
}

// What a running runner was built from, minus what it follows without a restart (the
// pause state) and what does not change delivery (description, owner, timestamps).
std::string fingerprint(const Subscription& s, const Queue& q) {
    nlohmann::json j = to_json(s);
    for (const char* k : {"status", "description", "managed_by", "created_at", "updated_at"})
        j.erase(k);
    return j.dump() + '\n' + q.id + '\n' + std::to_string(q.partition_count) + '\n' + q.encryption;
}

bool runs_in_worker(const Subscription& s) {
    return s.type == "webhook" || s.type == "exec" || s.type == "log";
}

}  // namespace

std::string control_client_name(const std::string& consumer) {
    std::string name = "mq-control:" + consumer;
    for (char& c : name)
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            c = '_';  // CLIENT SETNAME refuses spaces
    return name;
}

std::string subscription_key(const Subscription& s) {
    return key_of(s.tenant, queue_owner(s), s.queue, s.name);
}

WorkerSupervisor::WorkerSupervisor(SupervisorOptions options) : options_(std::move(options)) {
    if (!options_.make_handler)
        options_.make_handler = [policy = options_.webhook_policy](const Subscription& s) {
            return mq::make_handler(s, policy);
        };
}

WorkerSupervisor::~WorkerSupervisor() { stop(std::chrono::steady_clock::now() + 5s); }

void WorkerSupervisor::start() {
    if (!reconcile())
        throw Error(ErrorCode::kBackendUnavailable,
                    "cannot read the subscriptions to run from PostgreSQL at " +
                        pg::describe_url(options_.database_url) +
                        (last_error_.empty() ? "" : ": " + last_error_));
    control_ = std::thread([this] { control_loop(); });
    reconciler_ = std::thread([this] { reconcile_loop(); });
}

bool WorkerSupervisor::stop(std::chrono::steady_clock::time_point deadline) {
    {
        std::lock_guard lock(
            wake_mu_);  // the reconcile thread may be between its check and its wait
        stopping_ = true;
    }
    wake_cv_.notify_all();
    if (control_.joinable()) control_.join();
    if (reconciler_.joinable()) reconciler_.join();
    std::map<std::string, Running> all;
    {
        std::lock_guard lock(mu_);
        all.swap(running_);
    }
    // Runners stop one after the other but share the deadline: stop fetching everywhere
    // first would be nicer, yet each stop() returns as soon as its deliveries finished.
    bool clean = true;
    for (auto& [key, r] : all) clean = r.runner->stop(deadline) && clean;
    return clean;
}

std::vector<SkippedSubscription> WorkerSupervisor::skipped() const {
    std::lock_guard lock(mu_);
    return skipped_now_;
}

std::vector<std::shared_ptr<SubscriptionRunner>> WorkerSupervisor::runners() const {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<SubscriptionRunner>> out;
    out.reserve(running_.size());
    for (const auto& [key, r] : running_) out.push_back(r.runner);
    return out;
}

void WorkerSupervisor::set_fixed(std::vector<Subscription> fixed) {
    {
        std::lock_guard lock(fixed_mu_);
        options_.fixed = std::move(fixed);
    }
    request_reconcile();
}

void WorkerSupervisor::request_reconcile() {
    {
        std::lock_guard lock(wake_mu_);
        wake_ = true;
    }
    wake_cv_.notify_all();
}

void WorkerSupervisor::stop_runner(const std::string& key, const char* why) {
    std::shared_ptr<SubscriptionRunner> runner;
    {
        std::lock_guard lock(mu_);
        auto it = running_.find(key);
        if (it == running_.end()) return;
        runner = std::move(it->second.runner);
        running_.erase(it);
    }
    const auto& s = runner->options().subscription;
    auto log_scope = subscription_log_scope(s);
    spdlog::info("{}: {}; stopping its runner", describe(s), why);
    if (!runner->stop(std::chrono::steady_clock::now() + options_.restart_timeout))
        spdlog::warn("{}: deliveries still running after {} ms were abandoned; they stay pending",
                     describe(s), options_.restart_timeout.count());
}

bool WorkerSupervisor::reconcile() {
    std::lock_guard serial(reconcile_mu_);
    struct Wanted {
        Subscription sub;
        Queue queue;
        std::string fingerprint;
    };
    std::map<std::string, Wanted> want;
    std::vector<SkippedSubscription> skipped_now;
    try {
        if (!db_) db_ = std::make_unique<pg::Database>(options_.database_url);
        SubscriptionCatalog subs(*db_);
        Catalog catalog(*db_);
        std::vector<Subscription> desired;
        std::set<std::string> fixed_keys;
        std::vector<Subscription> fixed;
        {
            std::lock_guard lock(fixed_mu_);
            fixed = options_.fixed;
        }
        for (auto s : fixed) {
            auto row = subs.find(s.tenant, s.queue, s.name, queue_owner(s));
            if (!row)
                continue;  // deleted in the database: the file registers it again at the next start
            s.status = row->status;
            fixed_keys.insert(subscription_key(s));
            desired.push_back(std::move(s));
        }
        if (options_.from_db)
            for (auto& s : subs.list_all(options_.tenants))
                if (runs_in_worker(s) && !fixed_keys.count(subscription_key(s)))
                    desired.push_back(std::move(s));
        std::map<std::string, std::optional<Queue>> queues;
        for (auto& s : desired) {
            auto log_scope = subscription_log_scope(s);
            const std::string key = subscription_key(s);
            if (is_cross_tenant(s)) {
                // Only mq-api delivers from another tenant's queue (it checks is_public on every
                // pull); such rows are pull-only, so one here was written around the API.
                if (skipped_.insert(key + "\ncross-tenant").second)
                    spdlog::warn(
                        "{}: on tenant {}'s queue: not run by mq-worker (pull it through mq-api)",
                        describe(s), queue_owner(s));
                continue;
            }
            auto qk = queue_owner(s) + '\n' + s.queue;
            auto qit = queues.find(qk);
            if (qit == queues.end())
                qit = queues.emplace(qk, catalog.find_queue(queue_owner(s), s.queue)).first;
            if (!qit->second) {
                if (skipped_.insert(key + "\nno-queue").second)
                    spdlog::warn("{}: its queue does not exist; not running it", describe(s));
                continue;
            }
            Wanted w{s, *qit->second, fingerprint(s, *qit->second)};
            // The trust boundary: rows of the database that would run code or write files
            // here run only when an operator set them and this worker allows it. The file's
            // own subscriptions are the operator's and always run.
            if (!fixed_keys.count(key) && is_operator_only(s)) {
                const bool by_operator = s.origin == kOriginOperator;
                if (!by_operator || !options_.allow_operator_handlers) {
                    const char* reason =
                        by_operator ? "operator_handlers_not_allowed" : "api_origin";
                    skipped_now.push_back({s.tenant, s.queue, s.name, reason});
                    if (skipped_.insert(key + '\n' + w.fingerprint + '\n' + reason).second) {
                        if (by_operator)
                            spdlog::warn(
                                "{}: skipped: its {} handler runs on this host and the worker "
                                "was not started with --allow-operator-handlers",
                                describe(s), s.type);
                        else
                            spdlog::warn(
                                "{}: skipped: its {} handler was set through the API ({}), not "
                                "by an operator; it never runs (docs/security.md; an operator "
                                "may confirm it: mqctl sub update {} {} --confirm-handler)",
                                describe(s), s.type, s.created_by, s.queue, s.name);
                    }
                    continue;
                }
            }
            want.emplace(key, std::move(w));
        }
    } catch (const std::exception& e) {
        db_.reset();
        last_error_ = e.what();
        if (!pg_down_logged_)
            spdlog::warn(
                "reconcile: cannot read subscriptions from PostgreSQL ({}); running subscriptions "
                "keep "
                "delivering, retrying every {} ms",
                e.what(), options_.retry_interval.count());
        pg_down_logged_ = true;
        return false;
    }
    if (pg_down_logged_) spdlog::info("reconcile: PostgreSQL is reachable again");
    pg_down_logged_ = false;
    last_error_.clear();

    // Gone or changed: stop (a changed one starts again below with its new settings).
    std::vector<std::pair<std::string, const char*>> to_stop;
    {
        std::lock_guard lock(mu_);
        for (const auto& [key, r] : running_) {
            auto it = want.find(key);
            if (it == want.end())
                to_stop.emplace_back(key, "deleted or no longer to be run here");
            else if (it->second.fingerprint != r.fingerprint)
                to_stop.emplace_back(key, "settings or queue changed");
        }
    }
    for (const auto& [key, why] : to_stop) stop_runner(key, why);

    std::size_t unstarted = 0;
    for (auto& [key, w] : want) {
        auto log_scope = subscription_log_scope(w.sub);
        {
            std::lock_guard lock(mu_);
            if (auto it = running_.find(key); it != running_.end()) {
                it->second.runner->set_paused(w.sub.status == "paused");
                continue;
            }
        }
        RunnerOptions ro;
        ro.endpoint = options_.endpoint;
        ro.keys = options_.keys;
        ro.queue = w.queue;
        ro.subscription = w.sub;
        ro.consumer = options_.consumer;
        ro.keyring = options_.keyring;
        ro.fetch_block = options_.fetch_block;
        ro.reclaim_interval = options_.reclaim_interval;
        try {
            ro.handler = options_.make_handler(w.sub);
        } catch (const std::exception& e) {
            // Logged once per version of the row; an update that fixes it starts it.
            if (skipped_.insert(key + '\n' + w.fingerprint).second)
                spdlog::error("{}: skipped: its handler configuration is invalid: {}",
                              describe(w.sub), e.what());
            skipped_now.push_back({w.sub.tenant, w.sub.queue, w.sub.name, "invalid_handler"});
            continue;
        }
        auto runner = std::make_shared<SubscriptionRunner>(ro, std::make_shared<RunnerMetrics>());
        try {
            runner->start();
        } catch (const std::exception& e) {
            spdlog::warn("{}: cannot start ({}); retrying at the next reconcile", describe(w.sub),
                         e.what());
            ++unstarted;
            continue;
        }
        std::lock_guard lock(mu_);
        running_[key] = Running{std::move(runner), w.fingerprint};
    }
    {
        std::lock_guard lock(mu_);
        skipped_now_ = std::move(skipped_now);
    }
    unstarted_ = unstarted;
    ++reconciles_;
    return true;
}

void WorkerSupervisor::on_event(const std::string& text) {
    ControlEvent e = parse_control_event(text);
    if (!e.valid) {
        spdlog::debug("control: ignoring a malformed event");
        return;
    }
    const std::string key = key_of(e.tenant, e.queue_tenant, e.queue, e.subscription);
    if (e.event == "pause" || e.event == "resume") {
        // At once, without PostgreSQL: pause must hold within a second even when it is down.
        std::lock_guard lock(mu_);
        if (auto it = running_.find(key); it != running_.end())
            it->second.runner->set_paused(e.event == "pause");
    } else if (e.event == "deleted") {
        std::lock_guard lock(wake_mu_);
        deleted_.insert(key);
    }
    request_reconcile();
}

// Subscriber mode with a PING before every read, so a quiet channel never looks like a
// dead connection. Every (re)subscription is followed by a full reconcile: events sent
// while the connection was down are lost.
void WorkerSupervisor::control_loop() {
    const std::string channel = control_channel(options_.keys);
    while (!stopping_) {
        try {
            redis::Connection conn(options_.endpoint);
            // Named, so an operator (or a test) can find this worker's listener in CLIENT LIST.
            conn.command({"CLIENT", "SETNAME", control_client_name(options_.consumer)});
            conn.write({"SUBSCRIBE", channel});
            conn.read();
            listening_ = true;
            request_reconcile();
            while (!stopping_) {
                conn.write({"PING"});
                for (;;) {
                    redis::Reply r = conn.read();
                    if (r.elements.size() >= 3 && r.elements[0].str == "message") {
                        on_event(r.elements[2].str);
                        continue;
                    }
                    break;  // the pong
                }
                std::this_thread::sleep_for(100ms);
            }
        } catch (const std::exception& e) {
            if (listening_) spdlog::warn("control channel: {}; reconnecting", e.what());
            listening_ = false;
            for (int i = 0; i < 10 && !stopping_; ++i) std::this_thread::sleep_for(100ms);
        }
    }
    listening_ = false;
}

void WorkerSupervisor::reconcile_loop() {
    auto next_full = std::chrono::steady_clock::now() + options_.full_reconcile_interval;
    while (!stopping_) {
        std::set<std::string> deleted;
        {
            std::unique_lock lock(wake_mu_);
            wake_cv_.wait_until(lock, next_full, [&] { return wake_ || stopping_.load(); });
            wake_ = false;
            deleted.swap(deleted_);
        }
        if (stopping_) break;
        // Applied even while PostgreSQL is down: the groups are gone, fetching would fail.
        for (const auto& key : deleted) stop_runner(key, "deleted");
        bool ok = reconcile();
        next_full = std::chrono::steady_clock::now() +
                    (ok ? options_.full_reconcile_interval : options_.retry_interval);
    }
}

}  // namespace mq
