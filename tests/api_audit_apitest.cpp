// GET /api/v1/mq/audit and the rows mq-api's admin routes leave: the token's principal and
// id, the request id, source api; a tenant-admin reads only its own tenant (no filter widens
// it), producer and consumer tokens get 403, an admin reads every tenant with scope=all,
// malformed filters are 400 naming the field, pages follow next_cursor, and with PostgreSQL
// down an admin route answers 503 having changed nothing (docs/audit.md).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"
#include "private_services.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

const std::string kBase = "/api/v1/mq";

json audit(const ApiProcess& api, const std::string& token, const std::string& query = "") {
    auto r = api.call("GET", kBase + "/audit?limit=500" + query, "", token);
    INFO(r.body);
    REQUIRE(r.status == 200);
    return r.json();
}

json rows_of(const ApiProcess& api, const std::string& token, const std::string& action) {
    return audit(api, token, "&action=" + action)["records"];
}

}  // namespace

TEST_CASE("api_admin_routes_leave_one_row_with_token_principal_and_request_id", "[api][audit]") {
    ApiSession s;
    auto r = s.api.call_json("POST", kBase + "/queues", {{"name", "orders"}}, s.token,
                             {{"X-Request-Id", "req-create-1"}});
    REQUIRE(r.status == 201);
    REQUIRE(s.api.call_json("PUT", kBase + "/queues/orders", {{"description", "paid"}}, s.token)
                .status == 200);
    auto sub = s.api.call_json("POST", kBase + "/subscriptions",
                               {{"queue", "orders"},
                                {"name", "hook"},
                                {"type", "webhook"},
                                {"handler",
                                 {{"url", "http://127.0.0.1:9/x"},
                                  {"signing_secret", "plain-signing-secret"},
                                  {"headers", {{"Authorization", "Bearer very-secret"}}}}}},
                               s.token);
    REQUIRE(sub.status == 201);
    const std::string id = sub.json()["id"];
    REQUIRE(s.api.call("POST", kBase + "/subscriptions/" + id + "/pause", "", s.token).status ==
            200);
    REQUIRE(s.api.call("POST", kBase + "/subscriptions/" + id + "/resume", "", s.token).status ==
            200);
    REQUIRE(s.api.call("POST", kBase + "/queues/orders/purge", "", s.token).status == 200);
    REQUIRE(
        s.api
            .call_json("POST", kBase + "/queues/orders/dead-letters/purge", json::object(), s.token)
            .status == 200);
    REQUIRE(s.api.call("DELETE", kBase + "/subscriptions/" + id, "", s.token).status == 204);
    REQUIRE(s.api.call("DELETE", kBase + "/queues/orders", "", s.token).status == 204);

    std::string token_id;
    for (const char* action : {"queue.create", "queue.update", "subscription.create",
                               "subscription.pause", "subscription.resume", "queue.purge",
                               "dead_letter.purge", "subscription.delete", "queue.delete"}) {
        INFO(action);
        auto rows = rows_of(s.api, s.token, action);
        REQUIRE(rows.size() == 1);
        CHECK(rows[0]["principal"] == "ops");
        CHECK(rows[0]["source"] == "api");
        CHECK(rows[0]["tenant"] == s.tenant.tenant());
        REQUIRE(rows[0]["token_id"].is_string());
        if (token_id.empty()) token_id = rows[0]["token_id"];
        CHECK(rows[0]["token_id"] == token_id);
        CHECK(rows[0]["request_id"].is_string());
    }
    CHECK(rows_of(s.api, s.token, "queue.create")[0]["request_id"] == "req-create-1");
    auto created = rows_of(s.api, s.token, "subscription.create")[0];
    CHECK(created["change"]["after"]["handler"]["url"] == "http://127.0.0.1:9/x");
    CHECK(created["change"]["after"]["handler"]["signing_secret"] == "***");
    const std::string all = audit(s.api, s.token).dump();
    CHECK(all.find("plain-signing-secret") == std::string::npos);
    CHECK(all.find("very-secret") == std::string::npos);
}

TEST_CASE("api_audit_is_for_tenant_admins_of_their_own_tenant_only", "[api][audit]") {
    ApiSession s;
    TenantScope other;
    const std::string other_admin = create_token(other.tenant(), "tenant-admin", "ops");
    REQUIRE(
        s.api.call_json("POST", kBase + "/queues", {{"name", "secret-plans"}}, s.token).status ==
        201);
    REQUIRE(s.api.call_json("POST", kBase + "/queues", {{"name", "mine"}}, other_admin).status ==
            201);

    // the other tenant sees its own row only, whatever it filters on
    for (const std::string& q :
         {std::string(""), std::string("&target=secret-plans"), std::string("&action=queue.create"),
          std::string("&tenant=") + s.tenant.tenant()}) {
        INFO(q);
        auto rows = audit(s.api, other_admin, q)["records"];
        for (const auto& r : rows) CHECK(r["tenant"] == other.tenant());
        CHECK(audit(s.api, other_admin, q).dump().find("secret-plans") == std::string::npos);
    }
    // producer and consumer tokens: 403, as for other admin reads
    for (const char* role : {"producer", "consumer"}) {
        auto t = create_token(s.tenant.tenant(), role, "app");
        auto r = s.api.call("GET", kBase + "/audit", "", t);
        CHECK(r.status == 403);
        CHECK(r.error_code() == "MQ_FORBIDDEN");
    }
    // scope=all: admins only
    CHECK(s.api.call("GET", kBase + "/audit?scope=all", "", s.token).status == 403);
    const std::string admin = create_token(s.tenant.tenant(), "admin", "root");
    auto everyone = audit(s.api, admin, "&scope=all&action=queue.create");
    std::set<std::string> tenants;
    for (const auto& r : everyone["records"]) tenants.insert(r["tenant"].get<std::string>());
    CHECK(tenants.count(s.tenant.tenant()) == 1);
    CHECK(tenants.count(other.tenant()) == 1);
    auto one = audit(s.api, admin, "&scope=all&action=queue.create&tenant=" + other.tenant());
    REQUIRE(one["records"].size() == 1);
    CHECK(one["records"][0]["tenant"] == other.tenant());
    // no route changes the log
    CHECK(s.api.call("DELETE", kBase + "/audit", "", admin).status == 405);
    CHECK(s.api.call("PUT", kBase + "/audit", "{}", admin).status == 405);
}

TEST_CASE("api_audit_pages_and_names_malformed_filters", "[api][audit]") {
    ApiSession s;
    for (int i = 0; i < 5; ++i)
        REQUIRE(
            s.api.call_json("POST", kBase + "/queues", {{"name", "q" + std::to_string(i)}}, s.token)
                .status == 201);
    std::vector<std::string> names;
    std::string cursor;
    for (int page = 0; page < 10; ++page) {
        auto r = s.api.call("GET",
                            kBase + "/audit?action=queue.create&limit=2" +
                                (cursor.empty() ? "" : "&cursor=" + cursor),
                            "", s.token);
        REQUIRE(r.status == 200);
        auto j = r.json();
        CHECK(j["records"].size() <= 2);
        for (const auto& rec : j["records"]) names.push_back(rec["target"]["name"]);
        if (j["next_cursor"].is_null()) break;
        cursor = j["next_cursor"];
    }
    CHECK(names == std::vector<std::string>{"q4", "q3", "q2", "q1", "q0"});

    for (auto [field, value] :
         std::vector<std::pair<std::string, std::string>>{{"since", "yesterday"},
                                                          {"action", "Queue.Delete"},
                                                          {"limit", "-1"},
                                                          {"limit", "abc"},
                                                          {"cursor", "xyz"},
                                                          {"scope", "everything"},
                                                          {"target", "%FF%FE"},
                                                          {"actoin", "queue"},
                                                          {"tenants", "other"}}) {
        INFO(field << "=" << value);
        auto r = s.api.call("GET", kBase + "/audit?" + field + "=" + value, "", s.token);
        CHECK(r.status == 400);
        CHECK(r.error_code() == "MQ_VALIDATION_ERROR");
        CHECK(r.json()["error"]["details"]["field"] == field);
    }
}

TEST_CASE("api_admin_route_with_postgres_down_answers_503_and_changes_nothing", "[api][audit]") {
    PrivateServices svc;
    const std::map<std::string, std::string> env{{"REDIS_URL", svc.redis_url()},
                                                 {"DATABASE_URL", svc.database_url()}};
    auto tenant = unique_name("auditdown");
    auto token = migrated_tenant_admin_token(env, tenant);
    ApiOptions options;
    options.redis_url = svc.redis_url();
    options.database_url = svc.database_url();
    ApiProcess api(options);
    REQUIRE(api.call_json("POST", kBase + "/queues", {{"name", "orders"}}, token).status == 201);
    REQUIRE(api.call_json("POST", kBase + "/publish", {{"queue", "orders"}, {"payload", 1}}, token)
                .status == 201);

    svc.stop_postgres();
    // The token is cached, so the request gets as far as the purge: a Redis-only action that
    // cannot be audited is refused before anything is removed.
    auto purge = api.call("POST", kBase + "/queues/orders/purge", "", token);
    INFO(purge.body);
    CHECK(purge.status == 503);
    CHECK(purge.error_code() == "MQ_BACKEND_UNAVAILABLE");
    auto pause = api.call_json("POST", kBase + "/queues", {{"name", "later"}}, token);
    CHECK(pause.status == 503);

    svc.start_postgres();
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    HttpResult again;
    while (std::chrono::steady_clock::now() < until) {
        again = api.call("POST", kBase + "/queues/orders/purge", "", token);
        if (again.status != 503) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    INFO(again.body << "\n" << api.log());
    REQUIRE(again.status == 200);
    CHECK(again.json()["purged"] == 1);  // the message was still there
    auto rows = audit(api, token, "&action=queue")["records"];
    std::vector<std::string> actions;
    for (const auto& r : rows) actions.push_back(r["action"]);
    CHECK(actions == std::vector<std::string>{"queue.purge", "queue.create"});
}
