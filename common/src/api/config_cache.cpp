#include "mq/api/config_cache.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <tuple>
#include <utility>

#include "mq/consume/subscription_catalog.hpp"
#include "mq/pg/listener.hpp"
#include "mq/queue/catalog.hpp"

namespace mq {

namespace {

constexpr const char* kChannel = "mq_config";
// How long one wait for notifications lasts: bounds how long stopping takes.
constexpr std::chrono::microseconds kAwait{200000};

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

/// LISTEN mq_config; a notification only records what to reload (handle_payload).
struct ConfigCache::Listener {
    Listener(const std::string& url, ConfigCache& cache)
        : pg(
              url, kChannel,
              [&cache](const std::string& payload) { cache.handle_payload(payload); },
              "is it running? set DATABASE_URL") {}
    pg::Listener pg;
};

ConfigCache::ConfigCache(pg::Database& db, std::string database_url)
    : db_(db), database_url_(std::move(database_url)) {}

ConfigCache::~ConfigCache() {
    {
        std::lock_guard lock(stop_mu_);
        stop_ = true;
    }
    stop_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void ConfigCache::start() {
    if (thread_.joinable()) throw Error(ErrorCode::kInternal, "ConfigCache::start called twice");
    // LISTEN before loading, so a change committed in between is not missed.
    first_listener_ = std::make_unique<Listener>(database_url_, *this);
    listening_ = true;
    try {
        load_all();
    } catch (...) {
        first_listener_.reset();
        listening_ = false;
        throw;
    }
    thread_ = std::thread([this] { listen_loop(); });
}

// ---- reads ------------------------------------------------------------------------------

std::shared_ptr<const Queue> ConfigCache::queue(const std::string& tenant,
                                                const std::string& name) const {
    std::shared_lock lock(mu_);
    auto t = tenants_.find(tenant);
    if (t == tenants_.end()) return nullptr;
    auto q = t->second->queues.find(name);
    return q == t->second->queues.end() ? nullptr : q->second;
}

std::vector<std::shared_ptr<const Queue>> ConfigCache::queues(const std::string& tenant) const {
    std::vector<std::shared_ptr<const Queue>> out;
    std::shared_lock lock(mu_);
    auto t = tenants_.find(tenant);
    if (t == tenants_.end()) return out;
    for (const auto& [name, q] : t->second->queues) out.push_back(q);
    return out;
}

std::vector<std::shared_ptr<const Queue>> ConfigCache::all_queues() const {
    std::vector<std::shared_ptr<const Queue>> out;
    {
        std::shared_lock lock(mu_);
        for (const auto& [tenant, config] : tenants_)
            for (const auto& [name, q] : config->queues) out.push_back(q);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
        return std::tie(a->tenant, a->name) < std::tie(b->tenant, b->name);
    });
    return out;
}

std::shared_ptr<const Subscription> ConfigCache::subscription(const std::string& tenant,
                                                              const std::string& id) const {
    std::shared_lock lock(mu_);
    auto t = tenants_.find(tenant);
    if (t == tenants_.end()) return nullptr;
    auto s = t->second->subscriptions.find(lower(id));
    return s == t->second->subscriptions.end() ? nullptr : s->second;
}

std::vector<std::shared_ptr<const Subscription>> ConfigCache::subscriptions(
    const std::string& tenant) const {
    std::vector<std::shared_ptr<const Subscription>> out;
    {
        std::shared_lock lock(mu_);
        auto t = tenants_.find(tenant);
        if (t == tenants_.end()) return out;
        for (const auto& [id, s] : t->second->subscriptions) out.push_back(s);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
        return std::tie(a->queue, a->name) < std::tie(b->queue, b->name);
    });
    return out;
}

// ---- loads ------------------------------------------------------------------------------

void ConfigCache::reload_tenant(const std::string& tenant) {
    {
        std::lock_guard load(load_mu_);
        Catalog catalog(db_);
        SubscriptionCatalog subs(db_);
        auto config = std::make_shared<TenantConfig>();
        for (auto& q : catalog.list_queues(tenant)) {
            std::string name = q.name;
            config->queues.emplace(std::move(name), std::make_shared<const Queue>(std::move(q)));
        }
        for (auto& s : subs.list_all({tenant})) {
            std::string id = lower(s.id);
            config->subscriptions.emplace(std::move(id),
                                          std::make_shared<const Subscription>(std::move(s)));
        }
        std::unique_lock lock(mu_);
        if (config->queues.empty() && config->subscriptions.empty())
            tenants_.erase(tenant);
        else
            tenants_[tenant] = std::move(config);
    }
    notify_changed({tenant});
}

void ConfigCache::reload_all() { notify_changed(load_all()); }

std::vector<std::string> ConfigCache::load_all() {
    std::lock_guard load(load_mu_);
    Catalog catalog(db_);
    SubscriptionCatalog subs(db_);
    std::unordered_map<std::string, std::shared_ptr<TenantConfig>> fresh;
    for (auto& q : catalog.all_queues()) {
        auto& config = fresh[q.tenant];
        if (!config) config = std::make_shared<TenantConfig>();
        std::string name = q.name;
        config->queues.emplace(std::move(name), std::make_shared<const Queue>(std::move(q)));
    }
    for (auto& s : subs.list_all({})) {
        auto& config = fresh[s.tenant];
        if (!config) config = std::make_shared<TenantConfig>();
        std::string id = lower(s.id);
        config->subscriptions.emplace(std::move(id),
                                      std::make_shared<const Subscription>(std::move(s)));
    }
    std::set<std::string> touched;
    std::unique_lock lock(mu_);
    for (const auto& [tenant, config] : tenants_) touched.insert(tenant);
    tenants_.clear();
    for (auto& [tenant, config] : fresh) {
        touched.insert(tenant);
        tenants_.emplace(tenant, std::move(config));
    }
    return {touched.begin(), touched.end()};
}

// ---- callbacks --------------------------------------------------------------------------

void ConfigCache::on_tokens_changed(std::function<void()> callback) {
    std::lock_guard lock(callbacks_mu_);
    on_tokens_ = std::move(callback);
}

void ConfigCache::on_changed(std::function<void(const std::string&)> callback) {
    std::lock_guard lock(callbacks_mu_);
    on_changed_ = std::move(callback);
}

void ConfigCache::notify_changed(const std::vector<std::string>& tenants) {
    std::function<void(const std::string&)> cb;
    {
        std::lock_guard lock(callbacks_mu_);
        cb = on_changed_;
    }
    if (!cb) return;
    for (const auto& t : tenants) {
        try {
            cb(t);
        } catch (const std::exception& e) {
            spdlog::error("config cache: on_changed callback for tenant {} failed: {}", t,
                          e.what());
        }
    }
}

void ConfigCache::notify_tokens() {
    std::function<void()> cb;
    {
        std::lock_guard lock(callbacks_mu_);
        cb = on_tokens_;
    }
    if (!cb) return;
    try {
        cb();
    } catch (const std::exception& e) {
        spdlog::error("config cache: on_tokens_changed callback failed: {}", e.what());
    }
}

// ---- listener thread --------------------------------------------------------------------

// Runs inside await_notification on the listener thread: only records what to reload.
void ConfigCache::handle_payload(const std::string& payload) {
    try {
        auto j = nlohmann::json::parse(payload);
        std::string table = j.at("table").get<std::string>();
        if (table == "api_tokens") {
            pending_tokens_ = true;
        } else if (table == "message_topics" || table == "message_subscriptions") {
            std::string tenant = j.at("tenant").get<std::string>();
            if (std::find(pending_tenants_.begin(), pending_tenants_.end(), tenant) ==
                pending_tenants_.end())
                pending_tenants_.push_back(tenant);
        }
    } catch (const std::exception&) {
        spdlog::warn("config cache: ignoring malformed notification on {}: {}", kChannel,
                     printable(payload));
    }
}

void ConfigCache::listen_loop() {
    std::unique_ptr<Listener> listener = std::move(first_listener_);
    auto backoff = std::chrono::milliseconds(50);
    bool reconnected = false;
    while (!stop_) {
        try {
            if (!listener) {
                listener = std::make_unique<Listener>(database_url_, *this);
                listening_ = true;
                spdlog::info("config cache: listening on {} again", kChannel);
            }
            backoff = std::chrono::milliseconds(50);
            run_listener(*listener,
                         reconnected);  // returns when stopping; throws when the connection drops
        } catch (const std::exception& e) {
            if (listening_) spdlog::warn("config cache: LISTEN connection lost: {}", e.what());
        }
        listener.reset();
        listening_ = false;
        reconnected = true;
        if (stop_) break;
        std::unique_lock lock(stop_mu_);
        stop_cv_.wait_for(lock, backoff, [this] { return stop_.load(); });
        backoff =
            std::min(backoff * 2,
                     std::chrono::duration_cast<std::chrono::milliseconds>(kMaxReconnectBackoff));
    }
    listening_ = false;
}

void ConfigCache::run_listener(Listener& listener, bool after_reconnect) {
    // After a reconnect notifications may have been missed: reload everything (retried on
    // every pass until it works), and tell the token cache too.
    bool need_full = after_reconnect;
    bool tokens_after_full = after_reconnect;
    bool load_failing = false;
    auto last_full = std::chrono::steady_clock::now();
    while (!stop_) {
        if (std::chrono::steady_clock::now() - last_full >= kFullReloadEvery) need_full = true;
        if (need_full) {
            try {
                reload_all();
                need_full = false;
                last_full = std::chrono::steady_clock::now();
                if (load_failing) spdlog::info("config cache: reloaded after PostgreSQL errors");
                load_failing = false;
                if (tokens_after_full) notify_tokens();
                tokens_after_full = false;
            } catch (const std::exception& e) {
                if (!load_failing)
                    spdlog::error("config cache: full reload failed (will retry): {}", e.what());
                load_failing = true;
            }
        }

        listener.pg.wait(kAwait);  // throws when the connection dropped

        std::vector<std::string> tenants;
        tenants.swap(pending_tenants_);
        bool tokens = std::exchange(pending_tokens_, false);
        if (!need_full) {
            for (const auto& t : tenants) {
                try {
                    reload_tenant(t);
                } catch (const std::exception& e) {
                    spdlog::error("config cache: reloading tenant {} failed (full reload next): {}",
                                  t, e.what());
                    need_full = true;
                }
            }
        }
        if (tokens) notify_tokens();
    }
}

}  // namespace mq
