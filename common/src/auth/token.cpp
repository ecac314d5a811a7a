#include "mq/auth/token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <array>

#include "mq/audit/audit_log.hpp"
#include "mq/core/codec.hpp"
#include "mq/core/names.hpp"
#include "mq/core/throttled_log.hpp"

namespace mq {

namespace {

#define MQ_TOKEN_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define MQ_TOKEN_COLUMNS \
    "id::text, tenant_id, token_prefix, role, principal, description, " MQ_TOKEN_TS(         \
        "created_at") ", " MQ_TOKEN_TS("last_used_at") ", " MQ_TOKEN_TS("expires_at") ", " \
        MQ_TOKEN_TS("revoked_at")

constexpr std::size_t kMaxDescriptionLength = 1024;

const pg::Statement kTenantStatus{"mq_token_tenant_status",
                                  "SELECT status FROM tenants WHERE id = $1"};
// Hashes travel as hex and are decoded in SQL: plain text parameters, no bytea escaping.
const pg::Statement kInsertToken{
    "mq_token_insert",
    "INSERT INTO api_tokens (tenant_id, token_hash, token_prefix, role, principal, description, "
    "expires_at) VALUES ($1, decode($2, 'hex'), $3, $4, $5, $6, "
    "CASE WHEN $7::bigint IS NULL THEN NULL ELSE now() + $7::bigint * interval '1 second' END) "
    "RETURNING " MQ_TOKEN_COLUMNS};
const pg::Statement kListTokens{
    "mq_token_list", "SELECT " MQ_TOKEN_COLUMNS
                     " FROM api_tokens WHERE tenant_id = $1 AND ($2 OR revoked_at IS NULL) "
                     "ORDER BY created_at, id"};
const pg::Statement kFindTokens{
    "mq_token_find",
    "SELECT id::text FROM api_tokens WHERE tenant_id = $1 AND "
    "(id::text = lower($2) OR token_prefix = $2 OR token_hash = decode($3, 'hex')) LIMIT 2"};
const pg::Statement kRevokeToken{
    "mq_token_revoke",
    "UPDATE api_tokens SET revoked_at = now() WHERE id = $1::uuid AND revoked_at IS NULL"};
const pg::Statement kGetToken{"mq_token_get",
                              "SELECT " MQ_TOKEN_COLUMNS " FROM api_tokens WHERE id = $1::uuid"};
const pg::Statement kAuthenticate{
    "mq_token_authenticate",
    "SELECT t.id::text, t.tenant_id, t.role, t.principal, encode(t.token_hash, 'hex'), "
    "t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) "
    "AND n.status = 'active', "
    "t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute', "
    "CASE WHEN t.expires_at IS NULL THEN -1 "
    "ELSE GREATEST(0, (extract(epoch FROM t.expires_at - now()) * 1000)::bigint) END "
    "FROM api_tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.token_hash = decode($1, "
    "'hex')"};
// Conditional so concurrent API processes write it at most once a minute per token.
const pg::Statement kTouchToken{
    "mq_token_touch",
    "UPDATE api_tokens SET last_used_at = now() WHERE id = $1::uuid AND "
    "(last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"};

bool looks_like_secret(std::string_view secret) {
    if (secret.size() != kTokenSecretLength || secret.substr(0, 3) != "mq_") return false;
    for (char c : secret.substr(3))
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    return true;
}

std::string nullable(const pqxx::field& f) {
    return f.is_null() ? std::string() : f.as<std::string>();
}

TokenInfo info_from_row(const pqxx::row& r) {
    TokenInfo t;
    t.id = r[0].as<std::string>();
    t.tenant = r[1].as<std::string>();
    t.prefix = r[2].as<std::string>();
    t.role = parse_role(r[3].as<std::string>()).value_or(Role::kConsumer);
    t.principal = r[4].as<std::string>();
    t.description = r[5].as<std::string>();
    t.created_at = nullable(r[6]);
    t.last_used_at = nullable(r[7]);
    t.expires_at = nullable(r[8]);
    t.revoked_at = nullable(r[9]);
    return t;
}

Error tenant_not_found(const std::string& tenant) {
    return Error(
        ErrorCode::kNotFound,
        "tenant '" + tenant + "' does not exist; create it with: mqctl tenant create " + tenant,
        {{"tenant", tenant}});
}

void require_tenant(pg::Database& db, pqxx::work& tx, const std::string& tenant) {
    if (db.exec(tx, kTenantStatus, tenant).empty()) throw tenant_not_found(tenant);
}

}  // namespace

std::string_view role_name(Role role) {
    switch (role) {
        case Role::kAdmin:
            return "admin";
        case Role::kTenantAdmin:
            return "tenant-admin";
        case Role::kProducer:
            return "producer";
        case Role::kConsumer:
            return "consumer";
    }
    return "consumer";
}

std::optional<Role> parse_role(std::string_view name) {
    for (Role r : {Role::kAdmin, Role::kTenantAdmin, Role::kProducer, Role::kConsumer})
        if (role_name(r) == name) return r;
    return std::nullopt;
}

nlohmann::json to_json(const TokenInfo& info) {
    auto ts = [](const std::string& s) {
        return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
    };
    return {{"id", info.id},
            {"tenant", info.tenant},
            {"prefix", info.prefix},
            {"role", std::string(role_name(info.role))},
            {"principal", info.principal},
            {"description", info.description},
            {"created_at", ts(info.created_at)},
            {"last_used_at", ts(info.last_used_at)},
            {"expires_at", ts(info.expires_at)},
            {"revoked_at", ts(info.revoked_at)}};
}

std::string hash_token(std::string_view secret) { return codec::sha256(secret); }

bool looks_like_token_secret(std::string_view secret) { return looks_like_secret(secret); }

void validate_principal(std::string_view principal) {
    if (principal.empty() || principal.size() > kMaxPrincipalLength)
        throw ValidationError("principal must be 1-" + std::to_string(kMaxPrincipalLength) +
                                  " characters, got " + std::to_string(principal.size()),
                              {{"field", "principal"}});
    for (char c : principal)
        if (c < 0x20 || c > 0x7e || c == ',')
            throw ValidationError("principal '" + printable(principal) +
                                      "' may hold printable ASCII characters except ','",
                                  {{"field", "principal"}});
    if (principal.front() == ' ' || principal.back() == ' ')
        throw ValidationError(
            "principal '" + printable(principal) + "' must not start or end with a space",
            {{"field", "principal"}});
}

CreatedToken TokenStore::create(const std::string& tenant, Role role, const std::string& principal,
                                const std::string& description,
                                std::optional<std::chrono::seconds> ttl) {
    validate_name("tenant", tenant);
    validate_principal(principal);
    if (description.size() > kMaxDescriptionLength)
        throw ValidationError(
            "description is longer than " + std::to_string(kMaxDescriptionLength) + " bytes",
            {{"field", "description"}});
    if (ttl && ttl->count() < 1)
        throw ValidationError("token ttl must be at least one second", {{"field", "ttl"}});

    std::array<unsigned char, 32> random{};
    if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1)
        throw Error(ErrorCode::kInternal,
                    "cannot draw random bytes for a token (OpenSSL RAND_bytes)");
    CreatedToken out;
    out.secret = "mq_" + codec::base64url_encode(std::string_view(
                             reinterpret_cast<const char*>(random.data()), random.size()));
    OPENSSL_cleanse(random.data(), random.size());
    std::string hash_hex = codec::hex_encode(hash_token(out.secret));
    std::optional<std::int64_t> ttl_s;
    if (ttl) ttl_s = static_cast<std::int64_t>(ttl->count());

    out.info = db_.transact([&](pqxx::work& tx) {
        require_tenant(db_, tx, tenant);
        auto rows =
            db_.exec(tx, kInsertToken, tenant, hash_hex, out.secret.substr(0, kTokenPrefixLength),
                     std::string(role_name(role)), principal, description, ttl_s);
        TokenInfo info = info_from_row(rows[0]);
        // The secret never reaches the audit log: the row shows what `token list` shows.
        audit::record(db_, tx, {tenant, "token.create", "token", info.id, nullptr, to_json(info)});
        return info;
    });
    return out;
}

std::vector<TokenInfo> TokenStore::list(const std::string& tenant, bool include_revoked) {
    validate_name("tenant", tenant);
    return db_.transact([&](pqxx::work& tx) {
        require_tenant(db_, tx, tenant);
        std::vector<TokenInfo> out;
        for (const auto& r : db_.exec(tx, kListTokens, tenant, include_revoked))
            out.push_back(info_from_row(r));
        return out;
    });
}

TokenInfo TokenStore::revoke(const std::string& tenant, const std::string& id_or_prefix) {
    validate_name("tenant", tenant);
    if (id_or_prefix.empty()) throw ValidationError("give a token id or prefix to revoke");
    // A whole secret matches by hash; anything else by id or prefix only.
    std::string hash_hex = looks_like_secret(id_or_prefix)
                               ? codec::hex_encode(hash_token(id_or_prefix))
                               : std::string();
    return db_.transact([&](pqxx::work& tx) {
        require_tenant(db_, tx, tenant);
        auto found = db_.exec(tx, kFindTokens, tenant, id_or_prefix, hash_hex);
        std::string shown = looks_like_secret(id_or_prefix)
                                ? id_or_prefix.substr(0, kTokenPrefixLength) + "..."
                                : printable(id_or_prefix);
        if (found.empty())
            throw Error(ErrorCode::kNotFound,
                        "token '" + shown + "' not found in tenant '" + tenant +
                            "'; list tokens with: mqctl token list --all",
                        {{"token", shown}});
        if (found.size() > 1)
            throw ValidationError(
                "prefix '" + shown + "' matches several tokens; give the token id",
                {{"token", shown}});
        std::string id = found[0][0].as<std::string>();
        TokenInfo before = info_from_row(db_.exec(tx, kGetToken, id)[0]);
        db_.exec(tx, kRevokeToken, id);
        TokenInfo after = info_from_row(db_.exec(tx, kGetToken, id)[0]);
        audit::record(
            db_, tx,
            audit::updated(tenant, "token.revoke", "token", id, to_json(before), to_json(after)));
        return after;
    });
}

std::optional<Principal> TokenStore::authenticate(std::string_view secret) {
    // Anything not shaped like a secret cannot match a stored hash: no round trip.
    if (!looks_like_secret(secret)) return std::nullopt;
    std::string hash = hash_token(secret);
    std::string hash_hex = codec::hex_encode(hash);
    struct Found {
        Principal principal;
        bool valid = false;
        bool stale = false;
    };
    auto found = db_.transact([&](pqxx::work& tx) -> std::optional<Found> {
        auto rows = db_.exec(tx, kAuthenticate, hash_hex);
        if (rows.empty()) return std::nullopt;
        const auto& r = rows[0];
        // The index lookup already matched; compare again in constant time so a
        // collation or encoding surprise can never let a different hash through.
        std::string stored = r[4].as<std::string>();
        if (!codec::constant_time_equal(stored, hash_hex)) return std::nullopt;
        Found f;
        f.principal.token_id = r[0].as<std::string>();
        f.principal.tenant = r[1].as<std::string>();
        auto role = parse_role(r[2].as<std::string>());
        if (!role) return std::nullopt;
        f.principal.role = *role;
        f.principal.name = r[3].as<std::string>();
        f.valid = r[5].as<bool>();
        f.stale = r[6].as<bool>();
        f.principal.expires_in_ms = r[7].as<std::int64_t>();
        return f;
    });
    if (!found || !found->valid) return std::nullopt;
    if (found->stale) {
        try {
            db_.transact(
                [&](pqxx::work& tx) { db_.exec(tx, kTouchToken, found->principal.token_id); });
        } catch (const std::exception& e) {
            // Once per interval: with PostgreSQL failing this would repeat on every lookup.
            static ThrottledLog touch_failures;
            touch_failures.warn("could not record last use of token {}: {}",
                                found->principal.token_id, e.what());
        }
    }
    return found->principal;
}

}  // namespace mq
