// mqctl token create|list|revoke and tenant update --publish-rate, run as an operator would.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "mq/auth/token.hpp"
#include "mqctl_shell.hpp"

namespace {

using nlohmann::json;

class Shell : public mqtest::MqctlShell {};

}  // namespace

TEST_CASE("token_create_prints_the_secret_once_and_list_never_shows_it", "[mqctl][token]") {
    Shell sh;
    auto created = sh.run({"token", "create", "--role", "producer", "--principal", "checkout",
                           "--description", "web shop", "--ttl", "30d"});
    REQUIRE_EXIT(created, 0);
    CHECK_THAT(created.out, Catch::Contains("will not be shown again"));
    auto at = created.out.find("mq_");
    REQUIRE(at != std::string::npos);
    std::string secret = created.out.substr(at, mq::kTokenSecretLength);

    mq::TokenStore store(sh.db().db());
    auto p = store.authenticate(secret);
    REQUIRE(p);
    CHECK(p->tenant == sh.tenant());
    CHECK(p->role == mq::Role::kProducer);
    CHECK(p->name == "checkout");

    auto list = sh.run({"token", "list"});
    REQUIRE_EXIT(list, 0);
    CHECK_THAT(list.out, Catch::Contains("PREFIX") && Catch::Contains("checkout") &&
                             Catch::Contains(secret.substr(0, 10)));
    CHECK(list.out.find(secret) == std::string::npos);

    json rows = sh.json_of({"token", "list"});
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["role"] == "producer");
    CHECK(rows[0]["description"] == "web shop");
    CHECK(rows[0]["expires_at"].is_string());
    CHECK_FALSE(rows[0].contains("token"));
    CHECK(rows.dump().find(secret) == std::string::npos);
}

TEST_CASE("token_create_json_carries_the_secret_and_revoke_disables_it", "[mqctl][token]") {
    Shell sh;
    json created = sh.json_of({"token", "create", "--role", "consumer", "--principal", "ledger"});
    std::string secret = created["token"];
    REQUIRE(secret.size() == mq::kTokenSecretLength);
    CHECK(created["role"] == "consumer");
    CHECK(created["expires_at"].is_null());
    mq::TokenStore store(sh.db().db());
    REQUIRE(store.authenticate(secret));

    json revoked = sh.json_of({"token", "revoke", created["prefix"]});
    CHECK(revoked["id"] == created["id"]);
    CHECK(revoked["revoked_at"].is_string());
    CHECK_FALSE(store.authenticate(secret));
    // Idempotent: revoking again succeeds and changes nothing.
    json again = sh.json_of({"token", "revoke", created["id"]});
    CHECK(again["revoked_at"] == revoked["revoked_at"]);

    CHECK(sh.json_of({"token", "list"}).empty());
    json all = sh.json_of({"token", "list", "--all"});
    REQUIRE(all.size() == 1);
    CHECK(all[0]["revoked_at"] == revoked["revoked_at"]);
}

TEST_CASE("token_commands_exit_with_the_documented_codes", "[mqctl][token]") {
    Shell sh;
    auto unknown = sh.run({"token", "revoke", "mq_nothing1"});
    REQUIRE_EXIT(unknown, 3);
    CHECK_THAT(unknown.err, Catch::Contains("not found"));

    auto bad_role = sh.run({"token", "create", "--role", "root", "--principal", "x"});
    REQUIRE_EXIT(bad_role, 2);
    CHECK_THAT(bad_role.err, Catch::Contains("tenant-admin"));

    REQUIRE_EXIT(sh.run({"token", "create", "--role", "producer"}), 2);  // --principal missing
    REQUIRE_EXIT(sh.run({"token", "create", "--role", "producer", "--principal", "a,b"}), 2);
    REQUIRE_EXIT(
        sh.run({"token", "create", "--role", "producer", "--principal", "x", "--ttl", "soon"}), 2);

    auto other_tenant = mqtest::mqctl({"--tenant", "no-such-tenant-zz", "token", "create", "--role",
                                       "admin", "--principal", "ops"});
    REQUIRE_EXIT(other_tenant, 3);

    // A token of another tenant is not found from this one.
    Shell other;
    json theirs = other.json_of({"token", "create", "--role", "admin", "--principal", "ops"});
    REQUIRE_EXIT(sh.run({"token", "revoke", theirs["id"]}), 3);
}

TEST_CASE("tenant_update_sets_and_clears_the_publish_rate", "[mqctl][tenant]") {
    Shell sh;
    json set = sh.json_of({"tenant", "update", sh.tenant(), "--publish-rate", "500"});
    CHECK(set["publish_rate_limit"] == 500);
    auto rate = [&] {
        return sh.db().db().transact([&](pqxx::work& tx) {
            auto r = tx.exec_params1("SELECT publish_rate_limit FROM tenants WHERE id = $1",
                                     sh.tenant());
            return r[0].is_null() ? -1 : r[0].as<int>();
        });
    };
    CHECK(rate() == 500);
    auto cleared = sh.run({"tenant", "update", sh.tenant(), "--publish-rate", "none"});
    REQUIRE_EXIT(cleared, 0);
    CHECK_THAT(cleared.out, Catch::Contains("unlimited"));
    CHECK(rate() == -1);
    REQUIRE_EXIT(sh.run({"tenant", "update", sh.tenant(), "--publish-rate", "0"}), 2);
    REQUIRE_EXIT(sh.run({"tenant", "update", sh.tenant(), "--publish-rate", "fast"}), 2);
    REQUIRE_EXIT(sh.run({"tenant", "update", "no-such-tenant-zz", "--publish-rate", "5"}), 3);
}
