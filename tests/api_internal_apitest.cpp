// Internal routes (/internal/mq/...): X-Service-Token only, well-known queues created on
// first use in the named tenant, renamed by INTERNAL_QUEUE_*, status and health routes.
#include <catch2/catch.hpp>

#include "api_process.hpp"
#include "harness.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

const std::string kServiceToken = "svc-test-secret-0123456789";

ApiOptions with_service_token(std::map<std::string, std::string> extra = {}) {
    ApiOptions options;
    options.env = std::move(extra);
    options.env["INTERNAL_SERVICE_TOKEN"] = kServiceToken;
    return options;
}

HttpResult internal_post(const ApiProcess& api, const std::string& kind, const json& body,
                         const std::string& service_token = kServiceToken) {
    std::map<std::string, std::string> headers;
    if (!service_token.empty()) headers["X-Service-Token"] = service_token;
    return api.call("POST", "/internal/mq/" + kind, body.dump(), "", headers);
}

HttpResult internal_get(const ApiProcess& api, const std::string& target,
                        const std::string& service_token = kServiceToken) {
    std::map<std::string, std::string> headers;
    if (!service_token.empty()) headers["X-Service-Token"] = service_token;
    return api.call("GET", target, "", "", headers);
}

std::int64_t queue_messages(const ApiProcess& api, const std::string& token,
                            const std::string& queue) {
    auto topics = api.call("GET", "/api/v1/mq/metrics/topics", "", token);
    REQUIRE(topics.status == 200);
    auto rows = topics.json()["topics"];
    for (const auto& row : rows)
        if (row["name"] == queue) return row["messages"].get<std::int64_t>();
    return -1;
}

}  // namespace

TEST_CASE("api_internal_routes_need_the_service_token_not_a_bearer_token", "[api]") {
    TenantScope t;
    ApiProcess api(with_service_token());
    json body = {{"tenant", t.tenant()}, {"payload", {{"user", 1}}}};

    auto none = internal_post(api, "user-events", body, "");
    CHECK(none.status == 401);
    CHECK(none.error_code() == "MQ_UNAUTHORIZED");
    CHECK(internal_post(api, "user-events", body, "svc-test-secret-wrong").status == 401);
    CHECK(internal_post(api, "user-events", body, kServiceToken + "x").status == 401);
    CHECK(internal_get(api, "/internal/mq/health-detailed", "").status == 401);
    CHECK(internal_get(api, "/internal/mq/metrics", "nope").status == 401);

    auto admin = create_token(t.tenant(), "admin", "root");
    auto bearer = api.call("POST", "/internal/mq/user-events", body.dump(), admin);
    CHECK(bearer.status == 401);
    CHECK(api.call("GET", "/internal/mq/metrics", "", admin).status == 401);
    // A service token is not a bearer token either.
    CHECK(api.call("GET", "/api/v1/mq/queues", "", kServiceToken).status == 401);

    // Nothing was created by the refused calls.
    auto tenant_admin = create_token(t.tenant(), "tenant-admin", "ops");
    CHECK(api.call("GET", "/api/v1/mq/queues/user-events", "", tenant_admin).status == 404);
}

TEST_CASE("api_internal_routes_are_closed_when_no_service_token_is_configured", "[api]") {
    TenantScope t;
    ApiOptions options;
    options.env["INTERNAL_SERVICE_TOKEN"] = "";
    ApiProcess api(options);
    json body = {{"tenant", t.tenant()}, {"payload", "x"}};
    for (const char* kind : {"user-events", "user-notifications", "audit-logs", "notifications"}) {
        INFO(kind);
        CHECK(internal_post(api, kind, body, "").status == 401);
        CHECK(internal_post(api, kind, body, "anything").status == 401);
    }
    for (const char* target :
         {"/internal/mq/metrics", "/internal/mq/health-detailed",
          "/internal/mq/audit-queue-status?tenant=x", "/internal/mq/notification-queue?tenant=x"}) {
        INFO(target);
        CHECK(internal_get(api, target, "").status == 401);
        CHECK(internal_get(api, target, "anything").status == 401);
    }
}

TEST_CASE("api_internal_user_events_creates_its_queue_on_first_use", "[api]") {
    TenantScope t;
    ApiProcess api(with_service_token());
    auto token = create_token(t.tenant(), "tenant-admin", "ops");
    REQUIRE(api.call("GET", "/api/v1/mq/queues/user-events", "", token).status == 404);

    auto first = internal_post(api, "user-events",
                               {{"tenant", t.tenant()}, {"payload", {{"event", "signup"}}}});
    INFO(first.body);
    CHECK(first.status == 201);
    CHECK_FALSE(first.json()["id"].get<std::string>().empty());
    auto queue = api.call("GET", "/api/v1/mq/queues/user-events", "", token);
    CHECK(queue.status == 200);
    CHECK(queue.json()["record_messages"] == true);  // internal queues record by default
    // The queue the route created is the platform's doing: principal service, source api,
    // the request id of the publish that created it.
    auto audit =
        api.call("GET", "/api/v1/mq/audit?action=queue.create&target=user-events", "", token);
    INFO(audit.body);
    REQUIRE(audit.status == 200);
    const auto rows = audit.json()["records"];
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["principal"] == "service");
    CHECK(rows[0]["source"] == "api");
    CHECK(rows[0]["request_id"] == first.headers["x-request-id"]);
    CHECK(queue_messages(api, token, "user-events") == 1);

    auto second = internal_post(api, "user-events",
                                {{"tenant", t.tenant()}, {"payload", {{"event", "login"}}}});
    CHECK(second.status == 201);
    CHECK(queue_messages(api, token, "user-events") == 2);

    auto unknown = internal_post(api, "user-events",
                                 {{"tenant", unique_name("nosuchtenant")}, {"payload", 1}});
    CHECK(unknown.status == 404);
    CHECK(unknown.error_code() == "MQ_NOT_FOUND");
    auto no_tenant = internal_post(api, "user-events", {{"payload", 1}});
    CHECK(no_tenant.status == 400);
}

TEST_CASE("api_internal_routes_publish_to_their_queues_and_names_follow_the_environment", "[api]") {
    TenantScope t;
    ApiProcess api(with_service_token({{"INTERNAL_QUEUE_AUDIT_LOGS", "my-audit"}}));
    auto token = create_token(t.tenant(), "tenant-admin", "ops");

    CHECK(
        internal_post(api, "user-notifications", {{"tenant", t.tenant()}, {"payload", {{"n", 1}}}})
            .status == 201);
    CHECK(internal_post(api, "audit-logs", {{"tenant", t.tenant()}, {"payload", {{"a", 1}}}})
              .status == 201);
    CHECK(internal_post(api, "audit-logs", {{"tenant", t.tenant()}, {"payload", {{"a", 2}}}})
              .status == 201);
    for (int i = 0; i < 3; ++i)
        CHECK(internal_post(api, "notifications", {{"tenant", t.tenant()}, {"payload", {{"m", i}}}})
                  .status == 201);

    CHECK(queue_messages(api, token, "user-notifications") == 1);
    CHECK(queue_messages(api, token, "my-audit") == 2);
    CHECK(queue_messages(api, token, "notifications") == 3);
    CHECK(api.call("GET", "/api/v1/mq/queues/audit-logs", "", token).status == 404);

    auto audit = internal_get(api, "/internal/mq/audit-queue-status?tenant=" + t.tenant());
    INFO(audit.body);
    REQUIRE(audit.status == 200);
    CHECK(audit.json()["queue"] == "my-audit");
    CHECK(audit.json()["tenant"] == t.tenant());
    CHECK(audit.json()["messages"] == 2);

    auto notes = internal_get(api, "/internal/mq/notification-queue?tenant=" + t.tenant());
    REQUIRE(notes.status == 200);
    CHECK(notes.json()["queue"] == "notifications");
    CHECK(notes.json()["messages"] == 3);

    auto missing = internal_get(api, "/internal/mq/audit-queue-status");
    CHECK(missing.status == 400);
    CHECK(missing.error_code() == "MQ_VALIDATION_ERROR");
    CHECK(internal_get(api, "/internal/mq/notification-queue?tenant=").status == 400);
}

TEST_CASE("api_internal_metrics_and_detailed_health_count_tenants_and_queues", "[api]") {
    TenantScope t;
    ApiProcess api(with_service_token());
    REQUIRE(internal_post(api, "notifications", {{"tenant", t.tenant()}, {"payload", "hello"}})
                .status == 201);

    auto metrics = internal_get(api, "/internal/mq/metrics");
    INFO(metrics.body);
    REQUIRE(metrics.status == 200);
    CHECK(metrics.json()["tenants"].get<int>() >= 1);
    CHECK(metrics.json()["queues"].get<int>() >= 1);
    CHECK(metrics.json()["published_total"].get<int>() >= 1);

    auto health = internal_get(api, "/internal/mq/health-detailed");
    INFO(health.body);
    REQUIRE(health.status == 200);
    auto j = health.json();
    CHECK(j["status"] == "ok");
    CHECK(j["tenants"].get<int>() >= 1);
    CHECK(j["queues"].get<int>() >= 1);
    CHECK(j["checks"]["postgres"]["status"] == "ok");
    CHECK(j.contains("uptime_s"));
}
