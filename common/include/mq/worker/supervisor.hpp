#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mq/consume/subscription.hpp"
#include "mq/core/keys.hpp"
#include "mq/crypto/keyring.hpp"
#include "mq/deliver/destination_policy.hpp"
#include "mq/deliver/handler.hpp"
#include "mq/pg/database.hpp"
#include "mq/redis/client.hpp"
#include "mq/worker/runner.hpp"

namespace mq {

/// What a WorkerSupervisor runs and how it follows changes.
struct SupervisorOptions {
    redis::Endpoint endpoint;
    KeyLayout keys;
    std::string database_url;
    std::string consumer;  ///< this process's consumer name
    std::shared_ptr<const Keyring> keyring;
    /// Subscriptions of the worker's YAML file, already registered in PostgreSQL: run while
    /// their row exists, with the row's pause state.
    std::vector<Subscription> fixed;
    /// Also run every webhook, exec and log subscription in PostgreSQL (of `tenants`, all
    /// when empty). Subscriptions on another tenant's queue are pull-only and never run.
    bool from_db = false;
    std::vector<std::string> tenants;
    /// With from_db: also run exec and log-to-file subscriptions (is_operator_only) whose
    /// handler an operator set. Those set through the API never run; neither do an
    /// operator's when this is false (docs/security.md, "Handler trust boundary").
    bool allow_operator_handlers = false;
    /// Checks every connection of a webhook set through the API; null: public addresses
    /// only (no allowed ranges). Used by the default make_handler.
    std::shared_ptr<const DestinationPolicy> webhook_policy;
    /// The safety net under the control channel: a full reconcile from PostgreSQL this
    /// often (and after every control-channel reconnect). While PostgreSQL is down, retried
    /// every `retry_interval`; running subscriptions keep delivering meanwhile.
    std::chrono::milliseconds full_reconcile_interval{15000};
    std::chrono::milliseconds retry_interval{1000};
    /// How long a runner being restarted (updated subscription, queue grown) or stopped
    /// (deleted) may take to finish its running deliveries.
    std::chrono::milliseconds restart_timeout{30000};
    /// Builds a subscription's handler; default make_handler(). Throws for a broken config.
    std::function<std::shared_ptr<Handler>(const Subscription&)> make_handler;
    /// Runner settings used for every runner (tests shorten them).
    std::chrono::milliseconds fetch_block{500};
    std::chrono::milliseconds reclaim_interval{100};
};

/// A subscription of the database this worker does not run, and why: "api_origin" (an
/// operator-only handler set through the API), "operator_handlers_not_allowed" (an
/// operator's exec/log-to-file handler, worker without --allow-operator-handlers),
/// "invalid_handler".
struct SkippedSubscription {
    std::string tenant;
    std::string queue;
    std::string name;
    std::string reason;
};

/// Runs a worker's subscriptions and keeps them in step with PostgreSQL without a
/// restart: a SubscriptionRunner per subscription, started, restarted (handler,
/// concurrency, retry, filter... or its queue's partitions changed), paused, resumed and
/// stopped as the control channel (announce()) reports changes, with a periodic full
/// reconcile from PostgreSQL as the safety net for a missed event. A subscription whose
/// handler cannot be built is skipped with one log line per version of its row; the
/// others keep running. PostgreSQL or Redis down never stops what runs.
class WorkerSupervisor {
  public:
    explicit WorkerSupervisor(SupervisorOptions options);
    ~WorkerSupervisor();
    WorkerSupervisor(const WorkerSupervisor&) = delete;
    WorkerSupervisor& operator=(const WorkerSupervisor&) = delete;

    /// First reconcile (throws when PostgreSQL cannot be read: nothing would be known to
    /// run), then starts the control listener and the reconcile thread.
    void start();
    /// Stops following changes, then stops every runner with `deadline` (see
    /// SubscriptionRunner::stop). Joins every thread. Returns false when a delivery was
    /// abandoned at the deadline.
    bool stop(std::chrono::steady_clock::time_point deadline);

    /// The runners now (shared: a runner stays alive while a caller holds it).
    std::vector<std::shared_ptr<SubscriptionRunner>> runners() const;
    /// Reconciles from PostgreSQL now (also what the periodic pass does). Returns false
    /// when PostgreSQL could not be read (nothing changed then).
    bool reconcile();
    /// How many full reconciles have completed (for tests and logs).
    std::uint64_t reconciles() const { return reconciles_; }
    /// What the last reconcile found and did not run (for /metrics and tests).
    std::vector<SkippedSubscription> skipped() const;
    /// True while the control channel is subscribed.
    bool listening() const { return listening_; }
    /// Replaces the worker file's subscriptions (already declared in PostgreSQL, as for
    /// `fixed`) and asks for a reconcile: what is new starts, what is gone stops after its
    /// running deliveries finish, what changed drains and starts again with its new
    /// settings, the rest keeps running untouched. Returns at once (SIGHUP's reload).
    void set_fixed(std::vector<Subscription> fixed);
    /// True once a reconcile has completed and every subscription it wanted to run has a
    /// running runner (none waiting for a retry after a failed start): half of a worker's
    /// readiness, Redis being the other.
    bool subscriptions_started() const { return reconciles_ > 0 && unstarted_ == 0; }

  private:
    struct Running {
        std::shared_ptr<SubscriptionRunner> runner;
        std::string fingerprint;  ///< settings that need a restart when they change
    };
    void control_loop();
    void reconcile_loop();
    void on_event(const std::string& text);
    void request_reconcile();
    /// Stops and forgets the runner of `key` (no-op when none).
    void stop_runner(const std::string& key, const char* why);

    SupervisorOptions options_;
    std::mutex fixed_mu_;    ///< guards options_.fixed (set_fixed runs on another thread)
    mutable std::mutex mu_;  ///< guards running_
    std::map<std::string, Running> running_;
    std::mutex reconcile_mu_;                       ///< one reconcile at a time
    std::set<std::string> skipped_;                 ///< key + fingerprint already logged as skipped
    std::vector<SkippedSubscription> skipped_now_;  ///< guarded by mu_
    bool pg_down_logged_ = false;
    std::string last_error_;            ///< why the last reconcile could not read PostgreSQL
    std::unique_ptr<pg::Database> db_;  ///< used under reconcile_mu_; reconnects when reset

    std::mutex wake_mu_;
    std::condition_variable wake_cv_;
    bool wake_ = false;
    std::set<std::string>
        deleted_;  ///< keys a "deleted" event named, stopped even without PostgreSQL
    std::atomic<bool> stopping_{false};
    std::atomic<bool> listening_{false};
    std::atomic<std::uint64_t> reconciles_{0};
    std::atomic<std::size_t> unstarted_{0};  ///< wanted by the last reconcile, not running
    std::thread control_;
    std::thread reconciler_;
};

/// The key a supervisor tracks a subscription by: subscriber tenant, queue owner, queue
/// and name.
std::string subscription_key(const Subscription& s);
/// The CLIENT SETNAME of a supervisor's control-channel connection: "mq-control:<consumer>".
std::string control_client_name(const std::string& consumer);

}  // namespace mq
