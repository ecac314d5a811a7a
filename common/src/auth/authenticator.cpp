#include <spdlog/spdlog.h>

#include <algorithm>

#include "mq/auth/token.hpp"

namespace mq {

Authenticator::Authenticator(TokenStore& store, std::chrono::milliseconds ttl)
    : store_(store), ttl_(ttl) {}

std::optional<Principal> Authenticator::authenticate(std::string_view secret) {
    using Clock = std::chrono::steady_clock;
    std::string hash = hash_token(secret);
    std::optional<Entry> remembered;
    std::uint64_t generation = 0;
    {
        std::lock_guard lock(mutex_);
        if (auto it = entries_.find(hash); it != entries_.end()) {
            if (Clock::now() < it->second.fresh_until) return it->second.principal;
            remembered = it->second;
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
    // An invalidate() while we were asking PostgreSQL may concern this very token: the
    // answer may predate the change, so it is returned but not remembered.
    if (generation != generation_) return principal;
    if (entries_.size() >= kMaxEntries && !entries_.count(hash)) {
        auto now = Clock::now();
        for (auto it = entries_.begin(); it != entries_.end();)
            it = now >= it->second.fresh_until ? entries_.erase(it) : std::next(it);
        if (entries_.size() >= kMaxEntries) entries_.clear();
    }
    // A positive answer is remembered no longer than the token has left to live.
    auto fresh_until = Clock::now() + ttl_;
    if (principal && principal->expires_in_ms >= 0)
        fresh_until = std::min(fresh_until, Clock::now() + std::chrono::milliseconds(principal->expires_in_ms));
    entries_[hash] = Entry{principal, fresh_until};
    return principal;
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
