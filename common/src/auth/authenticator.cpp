#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>

#include "mq/auth/token.hpp"
#include "mq/core/throttled_log.hpp"

namespace mq {

namespace {
// During a PostgreSQL outage every request of a remembered token would log this.
ThrottledLog stale_answers;
}  // namespace

Authenticator::Authenticator(TokenStore& store, std::chrono::milliseconds ttl,
                             std::chrono::milliseconds refresh_window,
                             std::chrono::milliseconds negative_ttl)
    : store_(store),
      ttl_(ttl),
      refresh_window_(refresh_window),
      negative_ttl_(negative_ttl.count() > 0 ? negative_ttl : ttl) {}

Authenticator::~Authenticator() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    refresh_cv_.notify_all();
    if (refresher_.joinable()) refresher_.join();
}

std::optional<Authenticator::Cached> Authenticator::cached(std::string_view secret) {
    // Anything not shaped like a secret cannot match a stored hash: no hashing, no entry.
    if (!looks_like_token_secret(secret)) return Cached{};
    std::string hash = hash_token(secret);
    std::lock_guard lock(mutex_);
    return cached_locked(hash, secret);
}

std::optional<Authenticator::Cached> Authenticator::cached_locked(const std::string& hash,
                                                                  std::string_view secret) {
    auto now = Clock::now();
    if (Entry* e = positive_.find(hash)) {
        if (now < e->fresh_until) return Cached{e->principal};
        // Past its ttl, a positive answer for a token that cannot expire is served while
        // the background thread asks PostgreSQL (once per hash at a time).
        if (e->principal.expires_in_ms < 0 && now < e->fresh_until + refresh_window_) {
            if (!e->refreshing && now >= e->retry_at) {
                e->refreshing = true;
                refresh_queue_.emplace_back(hash, std::string(secret));
                if (!refresher_.joinable()) refresher_ = std::thread([this] { refresh_loop(); });
                refresh_cv_.notify_one();
            }
            return Cached{e->principal};
        }
        // Stale: kept (not erased) so that a PostgreSQL outage can still fall back on it.
        return std::nullopt;
    }
    if (const auto* until = negative_.find(hash)) {
        if (now < *until) return Cached{};
        negative_.erase(hash);
    }
    return std::nullopt;
}

void Authenticator::authenticate_async(std::string_view secret, Done done, const Spawn& spawn) {
    if (!looks_like_token_secret(secret)) return done(std::nullopt, nullptr);
    std::string hash = hash_token(secret);
    std::uint64_t generation = 0;
    {
        std::unique_lock lock(mutex_);
        if (auto hit = cached_locked(hash, secret)) {
            lock.unlock();
            return done(std::move(hit->principal), nullptr);
        }
        // Single flight: a thousand requests with one unknown token make one query.
        if (auto it = flights_.find(hash); it != flights_.end()) {
            it->second.push_back(std::move(done));
            return;
        }
        flights_[hash].push_back(std::move(done));
        generation = generation_;
    }
    try {
        spawn(
            [this, hash, s = std::string(secret), generation] { run_lookup(hash, s, generation); });
    } catch (...) {
        // Refused (the pool is full): every waiter of this flight hears so.
        auto error = std::current_exception();
        std::vector<Done> waiters;
        {
            std::lock_guard lock(mutex_);
            if (auto it = flights_.find(hash); it != flights_.end()) {
                waiters = std::move(it->second);
                flights_.erase(it);
            }
        }
        for (auto& w : waiters) w(std::nullopt, error);
    }
}

void Authenticator::run_lookup(const std::string& hash, const std::string& secret,
                               std::uint64_t generation) {
    std::optional<Principal> principal;
    std::exception_ptr error;
    bool backend_down = false;
    try {
        lookups_.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard store_lock(store_mutex_);
        principal = store_.authenticate(secret);
    } catch (const BackendUnavailable&) {
        error = std::current_exception();
        backend_down = true;
    } catch (...) {
        error = std::current_exception();
    }
    std::vector<Done> waiters;
    {
        std::lock_guard lock(mutex_);
        if (!error) {
            remember(hash, principal, generation);
        } else if (backend_down) {
            // Only an answer that invalidate() has not dropped, and only a positive one: a
            // token revoked during the outage stays usable for at most kStaleGrace. A
            // token that can expire gets no grace: its expiry is not to be stretched.
            const Entry* e = positive_.peek(hash);
            if (e && e->principal.expires_in_ms < 0 &&
                Clock::now() < e->fresh_until + kStaleGrace) {
                stale_answers.warn(
                    "PostgreSQL unreachable; using the remembered answer for token {}",
                    e->principal.token_id);
                principal = e->principal;
                error = nullptr;
            }
        }
        if (auto it = flights_.find(hash); it != flights_.end()) {
            waiters = std::move(it->second);
            flights_.erase(it);
        }
    }
    for (auto& w : waiters) w(principal, error);
}

std::optional<Principal> Authenticator::authenticate(std::string_view secret) {
    std::promise<std::optional<Principal>> answer;
    auto future = answer.get_future();
    authenticate_async(
        secret,
        [&answer](std::optional<Principal> p, std::exception_ptr e) {
            if (e)
                answer.set_exception(e);
            else
                answer.set_value(std::move(p));
        },
        [](std::function<void()> task) { task(); });
    return future.get();
}

void Authenticator::remember(const std::string& hash, const std::optional<Principal>& principal,
                             std::uint64_t generation) {
    // An invalidate() while we were asking PostgreSQL may concern this very token: the
    // answer may predate the change, so it is not remembered.
    if (generation != generation_) return;
    auto now = Clock::now();
    if (!principal) {
        positive_.erase(hash);
        negative_.put(hash, now + negative_ttl_);
        return;
    }
    negative_.erase(hash);
    // A positive answer is remembered no longer than the token has left to live.
    auto fresh_until = now + ttl_;
    if (principal->expires_in_ms >= 0)
        fresh_until =
            std::min(fresh_until, now + std::chrono::milliseconds(principal->expires_in_ms));
    positive_.put(hash, Entry{*principal, fresh_until});
}

void Authenticator::refresh_loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
        refresh_cv_.wait(lock, [this] { return stopping_ || !refresh_queue_.empty(); });
        if (stopping_) return;
        auto [hash, secret] = std::move(refresh_queue_.front());
        refresh_queue_.pop_front();
        const std::uint64_t generation = generation_;
        lock.unlock();
        std::optional<Principal> principal;
        bool answered = false;
        try {
            std::lock_guard store_lock(store_mutex_);
            principal = store_.authenticate(secret);
            answered = true;
        } catch (const std::exception& e) {
            spdlog::debug(
                "token cache: refreshing a token failed (the remembered answer stays): {}",
                e.what());
        }
        lock.lock();
        if (answered) remember(hash, principal, generation);
        // Still the entry that was queued (not replaced by remember or dropped by
        // invalidate): let a later request queue it again, after a pause if this failed.
        if (Entry* e = positive_.find(hash); e && e->refreshing) {
            e->refreshing = false;
            e->retry_at = Clock::now() + std::chrono::seconds(1);
        }
    }
}

void Authenticator::invalidate() {
    std::lock_guard lock(mutex_);
    positive_.clear();
    negative_.clear();
    ++generation_;
}

std::size_t Authenticator::size() const {
    std::lock_guard lock(mutex_);
    return positive_.size() + negative_.size();
}

}  // namespace mq
