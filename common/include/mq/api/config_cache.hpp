#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "mq/consume/subscription.hpp"
#include "mq/pg/database.hpp"
#include "mq/queue/queue.hpp"

namespace mq {

/// Queues and subscriptions of every tenant, held in memory and kept fresh by PostgreSQL
/// LISTEN/NOTIFY on channel `mq_config` (DESIGN §2), so a publish needs no PostgreSQL
/// round trip. Reads are thread-safe and return immutable snapshots.
///
/// `db` is used for loads only, by start(), reload_tenant() and the listener thread, under
/// one mutex of the cache: give the cache a Database of its own (a pg::Database is one
/// connection, not thread-safe). The LISTEN connection is opened from `database_url`.
class ConfigCache {
  public:
    /// How often everything is reloaded even without notifications (a safety net).
    static constexpr std::chrono::seconds kFullReloadEvery{30};
    /// Longest pause between attempts to reopen a dropped LISTEN connection.
    static constexpr std::chrono::milliseconds kMaxReconnectBackoff{1000};

    ConfigCache(pg::Database& db, std::string database_url);
    /// Stops the listener thread (within about 200 ms).
    ~ConfigCache();
    ConfigCache(const ConfigCache&) = delete;
    ConfigCache& operator=(const ConfigCache&) = delete;

    /// LISTENs, loads everything, then starts the listener thread. Throws
    /// BackendUnavailable when PostgreSQL cannot be reached. Call once.
    void start();

    /// nullptr when unknown; queues being deleted count as unknown.
    std::shared_ptr<const Queue> queue(const std::string& tenant, const std::string& name) const;
    /// The tenant's queues ordered by name.
    std::vector<std::shared_ptr<const Queue>> queues(const std::string& tenant) const;
    std::vector<std::shared_ptr<const Queue>> all_queues() const;
    /// By uuid (any case); nullptr when unknown or another tenant's.
    std::shared_ptr<const Subscription> subscription(const std::string& tenant,
                                                     const std::string& id) const;
    /// The tenant's subscriptions ordered by queue, then name.
    std::vector<std::shared_ptr<const Subscription>> subscriptions(const std::string& tenant) const;

    /// Synchronous reload of one tenant, for read-your-writes right after the API itself
    /// changed something. Throws like the Catalog does when PostgreSQL fails.
    void reload_tenant(const std::string& tenant);
    /// Synchronous reload of every tenant.
    void reload_all();

    /// Called from the listener thread when api_tokens changed (and after a reconnect,
    /// since notifications may have been missed). Set before start().
    void on_tokens_changed(std::function<void()> callback);
    /// Called after a tenant's config was reloaded (from whichever thread reloaded it;
    /// after a full reload, once per tenant seen before or after). Set before start().
    void on_changed(std::function<void(const std::string& tenant)> callback);

    /// True while the LISTEN connection is up (for health checks).
    bool listening() const { return listening_.load(); }

  private:
    struct TenantConfig {
        std::map<std::string, std::shared_ptr<const Queue>> queues;                // by name
        std::map<std::string, std::shared_ptr<const Subscription>> subscriptions;  // by id
    };
    struct Listener;

    void listen_loop();
    void run_listener(Listener& listener, bool after_reconnect);
    void handle_payload(const std::string& payload);
    void notify_changed(const std::vector<std::string>& tenants);
    void notify_tokens();
    /// Loads every tenant under load_mu_ and swaps it in; returns the tenants touched
    /// (present before or after).
    std::vector<std::string> load_all();

    pg::Database& db_;
    std::string database_url_;

    mutable std::shared_mutex mu_;  // guards tenants_
    std::unordered_map<std::string, std::shared_ptr<const TenantConfig>> tenants_;

    std::mutex load_mu_;  // serialises uses of db_ and the swaps that follow
    std::mutex callbacks_mu_;
    std::function<void()> on_tokens_;
    std::function<void(const std::string&)> on_changed_;

    std::unique_ptr<Listener> first_listener_;  // opened by start(), handed to the thread
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> listening_{false};
    std::mutex stop_mu_;
    std::condition_variable stop_cv_;

    // Filled by notifications during one await, processed right after it.
    std::vector<std::string> pending_tenants_;
    bool pending_tokens_ = false;
};

}  // namespace mq
