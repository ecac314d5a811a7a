#include <spdlog/spdlog.h>

#include <algorithm>

#include "mq/auth/token.hpp"

namespace mq {

Authenticator::Authenticator(TokenStore& store, std::chrono::milliseconds ttl,
                             std::chrono::milliseconds refresh_window)
    : store_(store), ttl_(ttl), refresh_window_(refresh_window) {}

Authenticator::~Authenticator() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    refresh_cv_.notify_all();
    if (refresher_.joinable()) refresher_.join();
}

std::optional<Principal> Authenticator::authenticate(std::string_view secret) {
    std::string hash = hash_token(secret);
    std::optional<Entry> remembered;
    std::uint64_t generation = 0;
    {
        std::lock_guard lock(mutex_);
        if (auto it = entries_.find(hash); it != entries_.end()) {
            Entry& e = it->second;
            auto now = Clock::now();
            if (now < e.fresh_until) return e.principal;
            // Past its ttl, a positive answer for a token that cannot expire is served
            // while the background thread asks PostgreSQL (once per hash at a time).
            if (e.principal && e.principal->expires_in_ms < 0 &&
                now < e.fresh_until + refresh_window_) {
                if (!e.refreshing && now >= e.retry_at) {
                    e.refreshing = true;
                    refresh_queue_.emplace_back(hash, std::string(secret));
                    if (!refresher_.joinable())
                        refresher_ = std::thread([this] { refresh_loop(); });
                    refresh_cv_.notify_one();
                }
                return e.principal;
            }
            remembered = e;
        }
        generation = generation_;
    }

    std::optional<Principal> principal;
    try {
        std::lock_guard store_lock(store_mutex_);
        principal = store_.authenticate(secret);
    } catch (const BackendUnavailable&) {
        // Only an answer that invalidate() has not dropped, and only a positive one: a
        // token revoked during the outage stays usable for at most kStaleGrace.
        // A token that can expire gets no grace: its expiry is not to be stretched.
        if (remembered && remembered->principal && remembered->principal->expires_in_ms < 0 &&
            Clock::now() < remembered->fresh_until + kStaleGrace) {
            spdlog::warn("PostgreSQL unreachable; using the remembered answer for token {}",
                         remembered->principal->token_id);
            return remembered->principal;
        }
        throw;
    }

    std::lock_guard lock(mutex_);
    remember(hash, principal, generation);
    return principal;
}

void Authenticator::remember(const std::string& hash, const std::optional<Principal>& principal,
                             std::uint64_t generation) {
    // An invalidate() while we were asking PostgreSQL may concern this very token: the
    // answer may predate the change, so it is not remembered.
    if (generation != generation_) return;
    if (entries_.size() >= kMaxEntries && !entries_.count(hash)) {
        auto now = Clock::now();
        for (auto it = entries_.begin(); it != entries_.end();)
            it = now >= it->second.fresh_until ? entries_.erase(it) : std::next(it);
        if (entries_.size() >= kMaxEntries) entries_.clear();
    }
    // A positive answer is remembered no longer than the token has left to live.
    auto fresh_until = Clock::now() + ttl_;
    if (principal && principal->expires_in_ms >= 0)
        fresh_until = std::min(fresh_until,
                               Clock::now() + std::chrono::milliseconds(principal->expires_in_ms));
    entries_[hash] = Entry{principal, fresh_until};
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
        if (answered) {
            remember(hash, principal, generation);
        }
        // Still the entry that was queued (not replaced by remember or dropped by
        // invalidate): let a later request queue it again, after a pause if this failed.
        if (auto it = entries_.find(hash); it != entries_.end() && it->second.refreshing) {
            it->second.refreshing = false;
            it->second.retry_at = Clock::now() + std::chrono::seconds(1);
        }
    }
}

void Authenticator::invalidate() {
    std::lock_guard lock(mutex_);
    entries_.clear();
    ++generation_;
}

std::size_t Authenticator::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace mq
