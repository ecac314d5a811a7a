// API tokens in a real PostgreSQL: create, authenticate, revoke, expiry, suspended
// tenants, hash-only storage and the API's cache in front of them.
#include <catch2/catch.hpp>
#include <thread>

#include "harness.hpp"
#include "mq/auth/quota.hpp"
#include "mq/auth/token.hpp"
#include "mq/pg/migrations.hpp"

namespace {

using mq::Role;

std::string hex(const std::string& bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += kDigits[c >> 4];
        out += kDigits[c & 0x0f];
    }
    return out;
}

/// One column of one row, as text.
std::string query1(mqtest::TenantScope& ts, const std::string& sql, const std::string& param) {
    return ts.db().transact([&](pqxx::work& tx) {
        auto r = tx.exec_params1(sql, param);
        return r[0].is_null() ? std::string() : r[0].as<std::string>();
    });
}

std::pair<mq::ErrorCode, std::string> thrown_by(const std::function<void()>& f) {
    try {
        f();
    } catch (const mq::Error& e) {
        return {e.code(), e.what()};
    }
    FAIL("expected an mq::Error");
    return {};
}

}  // namespace

TEST_CASE("a_created_token_authenticates_as_its_principal_and_records_last_use", "[token]") {
    mqtest::TenantScope ts;
    mq::TokenStore store(ts.db());
    auto created = store.create(ts.tenant(), Role::kProducer, "checkout", "web shop", std::nullopt);

    REQUIRE(created.secret.size() == mq::kTokenSecretLength);
    CHECK(created.secret.rfind("mq_", 0) == 0);
    CHECK(created.secret.find_first_not_of(
              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 3) ==
          std::string::npos);
    CHECK(created.info.prefix == created.secret.substr(0, 10));
    CHECK(created.info.tenant == ts.tenant());
    CHECK(created.info.role == Role::kProducer);
    CHECK(created.info.principal == "checkout");
    CHECK(created.info.description == "web shop");
    CHECK(created.info.id.size() == 36);
    CHECK_FALSE(created.info.created_at.empty());
    CHECK(created.info.last_used_at.empty());
    CHECK(created.info.expires_at.empty());
    CHECK(created.info.revoked_at.empty());

    auto p = store.authenticate(created.secret);
    REQUIRE(p);
    CHECK(p->token_id == created.info.id);
    CHECK(p->tenant == ts.tenant());
    CHECK(p->role == Role::kProducer);
    CHECK(p->name == "checkout");

    auto listed = store.list(ts.tenant(), false);
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].id == created.info.id);
    CHECK_FALSE(listed[0].last_used_at.empty());

    auto json = mq::to_json(listed[0]);
    CHECK(json["role"] == "producer");
    CHECK(json["expires_at"].is_null());
    CHECK(json.dump().find(created.secret) == std::string::npos);

    // Two tokens never share a secret.
    auto other = store.create(ts.tenant(), Role::kProducer, "checkout", "", std::nullopt);
    CHECK(other.secret != created.secret);
}

TEST_CASE("only_the_sha256_of_the_secret_is_stored", "[token]") {
    mqtest::TenantScope ts;
    mq::TokenStore store(ts.db());
    auto created = store.create(ts.tenant(), Role::kConsumer, "ledger", "", std::nullopt);

    std::string row = query1(
        ts, "SELECT row_to_json(t)::text FROM api_tokens t WHERE id = $1::uuid", created.info.id);
    REQUIRE_FALSE(row.empty());
    std::string body = created.secret.substr(3);
    CHECK(row.find(created.secret) == std::string::npos);
    CHECK(row.find(body) == std::string::npos);
    CHECK(row.find(body.substr(10, 20)) == std::string::npos);
    CHECK(row.find(hex(created.secret)) == std::string::npos);
    CHECK(query1(ts, "SELECT encode(token_hash, 'hex') FROM api_tokens WHERE id = $1::uuid",
                 created.info.id) == hex(mq::hash_token(created.secret)));
}

TEST_CASE("a_revoked_token_no_longer_authenticates_and_revoking_again_changes_nothing", "[token]") {
    mqtest::TenantScope ts;
    mq::TokenStore store(ts.db());
    auto keep = store.create(ts.tenant(), Role::kConsumer, "ledger", "", std::nullopt);
    auto created = store.create(ts.tenant(), Role::kTenantAdmin, "ops", "", std::nullopt);

    auto revoked = store.revoke(ts.tenant(), created.info.id);
    CHECK(revoked.id == created.info.id);
    CHECK_FALSE(revoked.revoked_at.empty());
    CHECK_FALSE(store.authenticate(created.secret));
    CHECK(store.authenticate(keep.secret));

    auto again = store.revoke(ts.tenant(), created.info.prefix);
    CHECK(again.id == created.info.id);
    CHECK(again.revoked_at == revoked.revoked_at);

    auto active = store.list(ts.tenant(), false);
    REQUIRE(active.size() == 1);
    CHECK(active[0].id == keep.info.id);
    CHECK(store.list(ts.tenant(), true).size() == 2);

    // The whole secret names the token too (an operator revoking a leaked token).
    CHECK(store.revoke(ts.tenant(), keep.secret).id == keep.info.id);
    CHECK_FALSE(store.authenticate(keep.secret));
}

TEST_CASE("revoke_answers_not_found_for_unknown_tokens_and_other_tenants_tokens", "[token]") {
    mqtest::TenantScope ts;
    mqtest::TenantScope other;
    mq::TokenStore store(ts.db());
    auto theirs = store.create(other.tenant(), Role::kProducer, "x", "", std::nullopt);

    auto [code, message] = thrown_by([&] { store.revoke(ts.tenant(), "mq_nothing"); });
    CHECK(code == mq::ErrorCode::kNotFound);
    CHECK_THAT(message, Catch::Contains("mq_nothing"));
    CHECK(thrown_by([&] { store.revoke(ts.tenant(), theirs.info.id); }).first ==
          mq::ErrorCode::kNotFound);
    CHECK(thrown_by([&] { store.revoke(ts.tenant(), theirs.info.prefix); }).first ==
          mq::ErrorCode::kNotFound);
    CHECK(thrown_by([&] { store.revoke(ts.tenant(), theirs.secret); }).first ==
          mq::ErrorCode::kNotFound);
    CHECK(store.authenticate(theirs.secret));
}

TEST_CASE("tokens_of_missing_tenants_and_bad_principals_are_refused", "[token]") {
    mqtest::TenantScope ts;
    mq::TokenStore store(ts.db());
    CHECK(thrown_by([&] {
              store.create("no-such-tenant-x", Role::kAdmin, "ops", "", std::nullopt);
          }).first == mq::ErrorCode::kNotFound);
    CHECK(thrown_by([&] { store.list("no-such-tenant-x", true); }).first ==
          mq::ErrorCode::kNotFound);
    CHECK_THROWS_AS(store.create(ts.tenant(), Role::kAdmin, "", "", std::nullopt),
                    mq::ValidationError);
    CHECK_THROWS_AS(store.create(ts.tenant(), Role::kAdmin, "a\tb", "", std::nullopt),
                    mq::ValidationError);
    CHECK_THROWS_AS(store.create(ts.tenant(), Role::kAdmin, "ops", "", std::chrono::seconds(0)),
                    mq::ValidationError);
    CHECK(store.list(ts.tenant(), true).empty());
}

TEST_CASE("an_expired_token_does_not_authenticate", "[token]") {
    mqtest::TenantScope ts;
    mq::TokenStore store(ts.db());
    auto created = store.create(ts.tenant(), Role::kProducer, "batch", "", std::chrono::hours(1));
    REQUIRE_FALSE(created.info.expires_at.empty());
    CHECK(created.info.expires_at > created.info.created_at);
    CHECK(store.authenticate(created.secret));

    ts.exec("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = '" +
            created.info.id + "'");
    CHECK_FALSE(store.authenticate(created.secret));
}

TEST_CASE("tokens_of_a_suspended_tenant_do_not_authenticate", "[token]") {
    mqtest::TenantScope ts;
    mq::TokenStore store(ts.db());
    auto created = store.create(ts.tenant(), Role::kAdmin, "ops", "", std::nullopt);
    CHECK(store.authenticate(created.secret));
    ts.exec("UPDATE tenants SET status = 'suspended' WHERE id = '" + ts.tenant() + "'");
    CHECK_FALSE(store.authenticate(created.secret));
    ts.exec("UPDATE tenants SET status = 'active' WHERE id = '" + ts.tenant() + "'");
    CHECK(store.authenticate(created.secret));
}

TEST_CASE("unknown_and_malformed_secrets_do_not_authenticate", "[token]") {
    mqtest::TenantScope ts;
    mq::TokenStore store(ts.db());
    auto created = store.create(ts.tenant(), Role::kAdmin, "ops", "", std::nullopt);
    std::string tampered = created.secret;
    tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
    CHECK_FALSE(store.authenticate(tampered));
    CHECK_FALSE(store.authenticate(""));
    CHECK_FALSE(store.authenticate(created.info.prefix));
    CHECK_FALSE(store.authenticate(created.secret + "x"));
    CHECK_FALSE(store.authenticate(std::string("mq_") + std::string(43, '\0')));
    CHECK(store.authenticate(created.secret));
}

TEST_CASE("authenticator_caches_answers_until_invalidate_makes_a_revocation_effective", "[token]") {
    mqtest::TenantScope ts;
    mq::TokenStore store(ts.db());
    mq::Authenticator auth(store, std::chrono::minutes(1));
    auto created = store.create(ts.tenant(), Role::kConsumer, "ledger", "", std::nullopt);

    auto p = auth.authenticate(created.secret);
    REQUIRE(p);
    CHECK(p->name == "ledger");
    store.revoke(ts.tenant(), created.info.id);
    CHECK(auth.authenticate(created.secret));  // still the remembered answer
    auth.invalidate();
    CHECK(auth.size() == 0);
    CHECK_FALSE(auth.authenticate(created.secret));

    // Negative answers are remembered too.
    ts.exec("UPDATE api_tokens SET revoked_at = NULL WHERE id = '" + created.info.id + "'");
    CHECK_FALSE(auth.authenticate(created.secret));
    auth.invalidate();
    CHECK(auth.authenticate(created.secret));
    CHECK(auth.size() == 1);
}

TEST_CASE("authenticator_never_remembers_a_token_past_its_expiry", "[token]") {
    mqtest::TenantScope ts;
    mq::TokenStore store(ts.db());
    mq::Authenticator auth(store, std::chrono::seconds(60));
    auto created = store.create(ts.tenant(), Role::kProducer, "short", "", std::chrono::hours(1));
    ts.exec("UPDATE api_tokens SET expires_at = now() + interval '700 milliseconds' WHERE id = '" +
            created.info.id + "'");
    auto first = auth.authenticate(created.secret);
    REQUIRE(first);
    CHECK(first->expires_in_ms > 0);
    CHECK(first->expires_in_ms <= 700);
    std::this_thread::sleep_for(std::chrono::milliseconds(900));
    CHECK_FALSE(auth.authenticate(created.secret));  // the 60 s cache did not outlive the token
}

TEST_CASE("authenticator_entries_expire_after_the_ttl", "[token]") {
    mqtest::TenantScope ts;
    mq::TokenStore store(ts.db());
    // No refresh window: past the ttl the answer is fetched again before answering.
    mq::Authenticator auth(store, std::chrono::milliseconds(100), std::chrono::milliseconds(0));
    auto created = store.create(ts.tenant(), Role::kConsumer, "ledger", "", std::nullopt);
    REQUIRE(auth.authenticate(created.secret));
    store.revoke(ts.tenant(), created.info.id);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    CHECK_FALSE(auth.authenticate(created.secret));
}

TEST_CASE("authenticator_refreshes_a_stale_positive_answer_in_the_background", "[token]") {
    mqtest::TenantScope ts;
    mq::TokenStore store(ts.db());
    mq::Authenticator auth(store, std::chrono::milliseconds(100));
    auto created = store.create(ts.tenant(), Role::kConsumer, "ledger", "", std::nullopt);
    REQUIRE(auth.authenticate(created.secret));
    // Revoked behind the cache's back (no invalidate(), as when a NOTIFY was missed).
    store.revoke(ts.tenant(), created.info.id);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    // Past the ttl: the remembered answer is served without waiting for PostgreSQL ...
    CHECK(auth.authenticate(created.secret));
    // ... and the background refresh replaces it with the revocation shortly after.
    bool refused = false;
    for (int i = 0; i < 100 && !refused; ++i) {
        refused = !auth.authenticate(created.secret);
        if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(refused);
    // A token that can expire is never served past its ttl: it is asked for again at once.
    auto expiring = store.create(ts.tenant(), Role::kConsumer, "short", "", std::chrono::hours(1));
    REQUIRE(auth.authenticate(expiring.secret));
    store.revoke(ts.tenant(), expiring.info.id);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    CHECK_FALSE(auth.authenticate(expiring.secret));
}

TEST_CASE("authenticator_throws_backend_unavailable_for_unremembered_tokens_when_postgres_is_gone",
          "[token]") {
    // A database of its own that the test can take away.
    std::string dbname = "mqtest_" + mqtest::unique_name("auth");
    for (char& c : dbname)
        if (c == '-') c = '_';
    mqtest::exec_admin("CREATE DATABASE " + dbname);
    std::string known;
    {
        mq::pg::Database db(mqtest::database_url_for(dbname));
        mq::pg::migrate(db, mq::pg::embedded_migrations());
        mq::Catalog(db).create_tenant("acme", "", false);
        mq::TokenStore store(db);
        known = store.create("acme", Role::kProducer, "svc", "", std::nullopt).secret;

        // No refresh window, so the outage path itself answers past the ttl; and one
        // with a window, whose failing background refresh keeps the remembered answer.
        mq::Authenticator auth(store, std::chrono::milliseconds(50), std::chrono::milliseconds(0));
        mq::Authenticator windowed(store, std::chrono::milliseconds(50));
        REQUIRE(auth.authenticate(known));
        REQUIRE(windowed.authenticate(known));
        mqtest::exec_admin("DROP DATABASE " + dbname + " WITH (FORCE)");

        std::string unknown = "mq_" + std::string(43, 'Z');
        CHECK_THROWS_AS(auth.authenticate(unknown), mq::BackendUnavailable);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        // Past its ttl, a remembered positive answer still serves during the outage.
        auto p = auth.authenticate(known);
        REQUIRE(p);
        CHECK(p->tenant == "acme");
        for (int i = 0; i < 5; ++i) {
            CHECK(windowed.authenticate(known));
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        auth.invalidate();
        CHECK_THROWS_AS(auth.authenticate(known), mq::BackendUnavailable);
    }
}

TEST_CASE("tenant_publish_rates_are_read_and_written_in_postgres", "[quota]") {
    mqtest::TenantScope ts;
    CHECK(mq::load_tenant_rates(ts.db()).at(ts.tenant()) == std::nullopt);
    mq::set_tenant_publish_rate(ts.db(), ts.tenant(), 250);
    CHECK(mq::load_tenant_rates(ts.db()).at(ts.tenant()) == 250.0);
    mq::set_tenant_publish_rate(ts.db(), ts.tenant(), std::nullopt);
    CHECK(mq::load_tenant_rates(ts.db()).at(ts.tenant()) == std::nullopt);
    CHECK(thrown_by([&] { mq::set_tenant_publish_rate(ts.db(), "no-such-tenant-x", 5); }).first ==
          mq::ErrorCode::kNotFound);
    CHECK_THROWS_AS(mq::set_tenant_publish_rate(ts.db(), ts.tenant(), 0), mq::ValidationError);
}

namespace {

/// Every payload on channel mq_config, read from a connection of its own.
struct ConfigChannel : pqxx::notification_receiver {
    explicit ConfigChannel(pqxx::connection_base& cx)
        : pqxx::notification_receiver(cx, "mq_config") {}
    void operator()(const std::string& payload, int) override { payloads.push_back(payload); }
    /// Payloads of api_tokens changes of `tenant` that arrived within `wait` (other tests
    /// change tokens of their own tenants at the same time).
    std::vector<std::string> token_changes(pqxx::connection& cx, std::chrono::milliseconds wait,
                                           const std::string& tenant) {
        payloads.clear();
        auto until = std::chrono::steady_clock::now() + wait;
        while (std::chrono::steady_clock::now() < until) cx.await_notification(0, 50000);
        std::vector<std::string> out;
        for (const auto& p : payloads)
            if (p.find("\"api_tokens\"") != std::string::npos &&
                p.find("\"" + tenant + "\"") != std::string::npos)
                out.push_back(p);
        return out;
    }
    std::vector<std::string> payloads;
};

}  // namespace

TEST_CASE("recording_last_use_sends_no_notify_but_revocation_does", "[token]") {
    mqtest::TenantScope ts;
    mq::TokenStore store(ts.db());
    pqxx::connection listener(mqtest::services().database_url);
    ConfigChannel channel(listener);

    auto created = store.create(ts.tenant(), Role::kProducer, "svc", "", std::nullopt);
    CHECK(channel.token_changes(listener, std::chrono::milliseconds(300), ts.tenant()).size() == 1);

    REQUIRE(store.authenticate(created.secret));  // writes last_used_at
    CHECK(query1(ts, "SELECT last_used_at::text FROM api_tokens WHERE id = $1::uuid",
                 created.info.id) != "");
    CHECK(channel.token_changes(listener, std::chrono::milliseconds(300), ts.tenant()).empty());

    store.revoke(ts.tenant(), created.info.id);
    auto changes = channel.token_changes(listener, std::chrono::milliseconds(300), ts.tenant());
    REQUIRE(changes.size() == 1);
    CHECK_THAT(changes[0], Catch::Contains(ts.tenant()));
}
