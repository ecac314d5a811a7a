#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "mq/core/lru_cache.hpp"
#include "mq/pg/database.hpp"

namespace mq {

/// What a token may do; the full matrix is in mq/auth/access.hpp and docs/auth.md.
enum class Role { kAdmin, kTenantAdmin, kProducer, kConsumer };

/// "admin", "tenant-admin", "producer", "consumer": the spelling in api_tokens.role.
std::string_view role_name(Role role);
/// The role named `name`; nullopt for anything else.
std::optional<Role> parse_role(std::string_view name);

/// Who a request acts as, resolved from its bearer token.
struct Principal {
    std::string token_id;  ///< api_tokens.id (uuid)
    std::string tenant;
    Role role = Role::kConsumer;
    std::string name;  ///< api_tokens.principal, matched against allowed_producers/consumers
    std::int64_t expires_in_ms = -1;  ///< time the token had left when looked up; -1: no expiry
};

/// A token as operators see it: never the secret, never the hash.
struct TokenInfo {
    std::string id;
    std::string tenant;
    std::string prefix;  ///< first characters of the secret, to recognise it
    Role role = Role::kConsumer;
    std::string principal;
    std::string description;
    std::string created_at;  ///< RFC 3339 (UTC); the timestamps below are empty when null
    std::string last_used_at;
    std::string expires_at;
    std::string revoked_at;
};

/// {"id","tenant","prefix","role","principal","description","created_at","last_used_at",
/// "expires_at","revoked_at"}; unset timestamps are null.
nlohmann::json to_json(const TokenInfo& info);

/// A token just created: the only moment its secret exists outside its owner's hands.
struct CreatedToken {
    TokenInfo info;
    std::string secret;
};

/// Secrets look like "mq_" followed by 43 base64url characters (32 random bytes).
constexpr std::size_t kTokenSecretLength = 46;
/// Characters of the secret kept in api_tokens.token_prefix.
constexpr std::size_t kTokenPrefixLength = 10;
/// Longest principal name accepted.
constexpr std::size_t kMaxPrincipalLength = 128;

/// sha-256 of the secret, 32 raw bytes (OpenSSL EVP).
std::string hash_token(std::string_view secret);

/// Throws ValidationError unless `principal` is 1-128 printable ASCII characters without
/// ',' (allowed_producers/allowed_consumers lists are comma-joined) and without leading or
/// trailing spaces.
void validate_principal(std::string_view principal);

/// API tokens in PostgreSQL (api_tokens). Only the sha-256 of a secret is stored. Not
/// thread-safe (one pg::Database); Authenticator serialises its use.
class TokenStore {
  public:
    explicit TokenStore(pg::Database& db) : db_(db) {}

    /// Creates a token with a fresh secret from RAND_bytes. NotFound when the tenant does
    /// not exist; ValidationError for a bad principal, description (up to 1024 bytes) or a
    /// ttl below one second. `ttl` unset: the token never expires.
    CreatedToken create(const std::string& tenant, Role role, const std::string& principal,
                        const std::string& description, std::optional<std::chrono::seconds> ttl);

    /// The tenant's tokens, oldest first; revoked ones only when `include_revoked`.
    /// NotFound when the tenant does not exist.
    std::vector<TokenInfo> list(const std::string& tenant, bool include_revoked);

    /// Revokes the tenant's token named by its id, its prefix or its whole secret.
    /// kNotFound when the tenant has no such token; ValidationError when a prefix matches
    /// several tokens. Revoking a revoked token returns it unchanged.
    TokenInfo revoke(const std::string& tenant, const std::string& id_or_prefix);

    /// The principal of a valid secret; nullopt when unknown, revoked, expired or its
    /// tenant is suspended. Records last_used_at at most once a minute per token; a
    /// failure to record it never fails the call. BackendUnavailable when PG is down.
    std::optional<Principal> authenticate(std::string_view secret);

  private:
    pg::Database& db_;
};

/// True when `secret` has the shape of a token secret ("mq_" + 43 base64url characters);
/// anything else cannot match a stored hash and needs no lookup.
bool looks_like_token_secret(std::string_view secret);

/// The API's in-memory cache in front of TokenStore: a positive LRU of valid tokens, a
/// negative LRU of unknown or refused ones (short ttl), and at most one PostgreSQL lookup
/// per token at a time (single flight). Thread-safe.
class Authenticator {
  public:
    /// Most valid tokens remembered; beyond it the least recently used one is dropped.
    static constexpr std::size_t kMaxEntries = 10000;
    /// Most unknown tokens remembered (a flood of random tokens only churns this one).
    static constexpr std::size_t kMaxNegativeEntries = 16384;
    /// How long a remembered *positive* answer may still be served while PostgreSQL is
    /// unreachable (publishing needs no PostgreSQL, so a PG outage should not stop it).
    static constexpr std::chrono::minutes kStaleGrace{5};
    /// How long past its ttl a positive answer (for a token without an expiry) is served
    /// while a background thread asks PostgreSQL again: a busy token's requests never
    /// wait for PostgreSQL, and a revocation missed by NOTIFY still lands within about a
    /// ttl plus one query.
    static constexpr std::chrono::seconds kRefreshWindow{60};

    /// `negative_ttl` zero: the same as `ttl`. A new token notifies (api_tokens trigger)
    /// and invalidate() then drops the negative answers too, so the ttl only matters
    /// when a NOTIFY is missed.
    explicit Authenticator(TokenStore& store,
                           std::chrono::milliseconds ttl = std::chrono::seconds(5),
                           std::chrono::milliseconds refresh_window = kRefreshWindow,
                           std::chrono::milliseconds negative_ttl = std::chrono::milliseconds(0));
    ~Authenticator();
    Authenticator(const Authenticator&) = delete;
    Authenticator& operator=(const Authenticator&) = delete;

    /// An answer known without asking PostgreSQL.
    struct Cached {
        std::optional<Principal> principal;  ///< nullopt: the token is not valid
    };
    /// The remembered answer for `secret`, never waiting for PostgreSQL (safe on an I/O
    /// thread); nullopt when a lookup is needed. A malformed secret is answered invalid.
    std::optional<Cached> cached(std::string_view secret);

    /// Called once with the answer, or with the exception (BackendUnavailable, or what
    /// `spawn` threw), from whichever thread finished the lookup.
    using Done = std::function<void(std::optional<Principal>, std::exception_ptr)>;
    /// Runs a task somewhere (a thread pool); may throw to refuse it (queue full).
    using Spawn = std::function<void(std::function<void()>)>;
    /// Answers from memory when it can (calling `done` at once), otherwise joins the
    /// lookup already running for this token or starts one through `spawn`.
    void authenticate_async(std::string_view secret, Done done, const Spawn& spawn);

    /// Blocking form: caches positive and negative answers by hash. Throws
    /// BackendUnavailable when PostgreSQL is down and no answer for this hash is remembered.
    std::optional<Principal> authenticate(std::string_view secret);

    /// Forgets everything (positive and negative); call on every api_tokens NOTIFY so a
    /// revocation, or a new token, takes effect at once.
    void invalidate();

    /// Remembered hashes, positive and negative (for tests and metrics).
    std::size_t size() const;
    /// Lookups sent to PostgreSQL so far (not counting background refreshes).
    std::uint64_t lookups() const { return lookups_.load(); }

  private:
    using Clock = std::chrono::steady_clock;
    struct Entry {
        Principal principal;
        Clock::time_point fresh_until;
        bool refreshing = false;       // queued for the background refresh
        Clock::time_point retry_at{};  // a failed refresh is not retried before this
    };

    /// The cached answer for `hash`. Caller holds mutex_.
    std::optional<Cached> cached_locked(const std::string& hash, std::string_view secret);
    /// The lookup of one flight: asks PostgreSQL, remembers, answers every waiter.
    void run_lookup(const std::string& hash, const std::string& secret, std::uint64_t generation);
    /// Stores an answer fetched under `generation` (not if invalidate() ran since).
    /// Caller holds mutex_.
    void remember(const std::string& hash, const std::optional<Principal>& principal,
                  std::uint64_t generation);
    void refresh_loop();

    TokenStore& store_;
    std::chrono::milliseconds ttl_;
    std::chrono::milliseconds refresh_window_;
    std::chrono::milliseconds negative_ttl_;
    mutable std::mutex mutex_;  // guards everything below but store_mutex_
    std::mutex store_mutex_;    // TokenStore holds one connection
    LruCache<std::string, Entry> positive_{kMaxEntries};
    LruCache<std::string, Clock::time_point> negative_{kMaxNegativeEntries};  // fresh until
    std::unordered_map<std::string, std::vector<Done>> flights_;              // hash -> waiters
    std::uint64_t generation_ = 0;  // bumped by invalidate(); stale lookups are not stored
    std::atomic<std::uint64_t> lookups_{0};
    std::deque<std::pair<std::string, std::string>> refresh_queue_;  // hash, secret
    std::condition_variable refresh_cv_;
    bool stopping_ = false;
    std::thread refresher_;  // started at the first refresh
};

}  // namespace mq
