// The seeds' wire names (docs/seed-compat.md), with requests shaped like the seeds'
// examples: camelCase publish bodies with tenantId, answers carrying messageId and
// publishedAt next to today's fields, tenantId of another tenant refused with one answer
// whether or not that tenant exists, and the root probes /health, /health/ping and
// /health/status (no token; healthy/unhealthy; Redis down 503, PostgreSQL down 200).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <regex>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"
#include "mq/core/time.hpp"
#include "mqctl_shell.hpp"
#include "private_services.hpp"

using namespace mqtest;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const std::string kPublish = "/api/v1/mq/publish";

// ISO-8601 UTC with milliseconds, as the seeds' publishedAt.
bool iso_ms(const json& v) {
    static const std::regex kIso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
    return v.is_string() && std::regex_match(v.get<std::string>(), kIso);
}

void check_seed_answer(const json& j) {
    INFO(j.dump());
    CHECK(j["messageId"].is_string());
    CHECK(j["messageId"] == j["id"]);
    CHECK(iso_ms(j["publishedAt"]));
    auto at = mq::parse_rfc3339(j["publishedAt"].get<std::string>());
    CHECK(std::llabs(at - mq::now_ms()) < 60000);
}

struct Session : ApiSession {
    Session() { api_create_queue(api, token, "orders"); }
    HttpResult post(const std::string& path, const json& body) const {
        return api.call_json("POST", path, body, token);
    }
    std::int64_t stored(const std::string& queue = "orders") const {
        auto r = api.call("GET", "/api/v1/mq/queues/" + queue, "", token);
        REQUIRE(r.status == 200);
        return r.json()["stats"]["messages"].get<std::int64_t>() +
               r.json()["stats"]["delayed"].get<std::int64_t>();
    }
};

// The error of a refused body without its request id: what a caller could compare.
json without_request_id(json error) {
    if (error.contains("error") && error["error"].contains("details"))
        error["error"]["details"].erase("request_id");
    return error;
}

}  // namespace

TEST_CASE("seed_publish_bodies_in_camel_case_answer_message_id_and_published_at", "[api][seed]") {
    Session s;
    const std::string t = s.tenant.tenant();
    auto single = s.post(kPublish, {{"queue", "orders"},
                                    {"tenantId", t},
                                    {"payload", {{"orderId", "o-1"}, {"amount", 12.5}}},
                                    {"headers", {{"source", "checkout"}}},
                                    {"idempotencyKey", "order-o-1"},
                                    {"traceId", "4bf92f3577b34da6a3ce929d0e0e4736"},
                                    {"contentType", "application/json"}});
    INFO(single.body);
    REQUIRE(single.status == 201);
    check_seed_answer(single.json());
    CHECK(single.json()["queue"] == "orders");  // today's fields stay

    // The same idempotency key again: the first message's id, still with both names.
    auto again = s.post(kPublish, {{"queue", "orders"},
                                   {"tenantId", t},
                                   {"payload", {{"orderId", "o-1"}}},
                                   {"idempotencyKey", "order-o-1"}});
    REQUIRE(again.status == 200);
    CHECK(again.json()["duplicate"] == true);
    CHECK(again.json()["messageId"] == single.json()["messageId"]);

    auto batch = s.post(kPublish + "/batch", {{"queue", "orders"},
                                              {"tenantId", t},
                                              {"messages",
                                               {{{"payload", {{"n", 1}}}, {"tenantId", t}},
                                                {{"payload", {{"n", 2}}}, {"delayMs", 60000}}}}});
    INFO(batch.body);
    REQUIRE(batch.status == 200);
    REQUIRE(batch.json()["results"].size() == 2);
    const nlohmann::json answers = batch.json();  // json() parses a new value each call
    for (const auto& r : answers["results"]) check_seed_answer(r);

    auto delayed =
        s.post(kPublish + "/delayed",
               {{"queue", "orders"}, {"tenantId", t}, {"payload", "d"}, {"delayMs", 5000}});
    REQUIRE(delayed.status == 201);
    check_seed_answer(delayed.json());
    CHECK(delayed.json()["delayed"] == true);

    auto scheduled = s.post(kPublish + "/scheduled",
                            {{"queue", "orders"},
                             {"tenantId", t},
                             {"payload", "s"},
                             {"deliverAt", mq::format_rfc3339(mq::now_ms() + 3600000)}});
    REQUIRE(scheduled.status == 201);
    check_seed_answer(scheduled.json());

    auto topic = s.post("/api/v1/mq/topics/orders/publish", {{"tenantId", t}, {"payload", "t"}});
    REQUIRE(topic.status == 201);
    check_seed_answer(topic.json());
    auto topic_batch = s.post("/api/v1/mq/topics/orders/publish",
                              {{"tenantId", t}, {"messages", {{{"payload", "t2"}}}}});
    REQUIRE(topic_batch.status == 200);
    check_seed_answer(topic_batch.json()["results"][0]);
    CHECK(s.stored() == 7);
}

TEST_CASE("seed_tenant_id_of_another_tenant_is_403_alike_for_existing_and_missing_tenants",
          "[api][seed]") {
    Session s;
    TenantScope other;  // exists, with a queue of the same name
    auto other_token = create_token(other.tenant(), "tenant-admin", "ops");
    api_create_queue(s.api, other_token, "orders");
    const std::string missing = unique_name("nosuchtenant");

    struct Case {
        std::string path;
        json body;
    };
    auto cases = [&](const std::string& claimed) {
        return std::vector<Case>{
            {kPublish, {{"queue", "orders"}, {"tenantId", claimed}, {"payload", "x"}}},
            {kPublish, {{"queue", "nothere"}, {"tenantId", claimed}, {"payload", "x"}}},
            {kPublish, {{"queue", "orders"}, {"tenant_id", claimed}, {"payload", "x"}}},
            {kPublish + "/batch",
             {{"queue", "orders"}, {"tenantId", claimed}, {"messages", {{{"payload", "x"}}}}}},
            // One message of a batch naming another tenant refuses the whole batch.
            {kPublish + "/batch",
             {{"queue", "orders"},
              {"messages", {{{"payload", "ok"}}, {{"payload", "x"}, {"tenantId", claimed}}}}}},
            // ... also when that message is otherwise malformed (before or after tenantId).
            {kPublish + "/batch",
             {{"queue", "orders"},
              {"messages",
               {{{"payload", "ok"}}, {{"bogus", 1}, {"tenantId", claimed}, {"payload", "x"}}}}}},
            {kPublish + "/batch",
             {{"queue", "orders"},
              {"messages",
               {{{"payload", "ok"}}, {{"tenantId", claimed}, {"payload", "x"}, {"bogus", 1}}}}}},
            {kPublish + "/delayed",
             {{"queue", "orders"}, {"tenantId", claimed}, {"payload", "x"}, {"delayMs", 1000}}},
            {kPublish + "/scheduled",
             {{"queue", "orders"},
              {"tenantId", claimed},
              {"payload", "x"},
              {"deliverAt", mq::format_rfc3339(mq::now_ms() + 60000)}}},
            {"/api/v1/mq/topics/orders/publish", {{"tenantId", claimed}, {"payload", "x"}}},
            {"/api/v1/mq/queues", {{"name", "seeded"}, {"tenantId", claimed}}},
            {"/api/v1/mq/subscriptions",
             {{"queue", "orders"}, {"name", "seeded"}, {"tenantId", claimed}}},
        };
    };
    auto existing_cases = cases(other.tenant());
    auto missing_cases = cases(missing);
    for (std::size_t i = 0; i < existing_cases.size(); ++i) {
        INFO(existing_cases[i].path << " " << existing_cases[i].body.dump());
        auto a = s.post(existing_cases[i].path, existing_cases[i].body);
        auto b = s.post(missing_cases[i].path, missing_cases[i].body);
        CHECK(a.status == 403);
        CHECK(a.error_code() == "MQ_FORBIDDEN");
        CHECK(without_request_id(a.json()) == without_request_id(b.json()));
        CHECK(a.body.find(other.tenant()) == std::string::npos);
        CHECK(b.body.find(missing) == std::string::npos);
    }
    CHECK(s.stored() == 0);  // nothing written, in either tenant
    auto theirs = s.api.call("GET", "/api/v1/mq/queues/orders", "", other_token);
    CHECK(theirs.json()["stats"]["messages"] == 0);
    CHECK(s.api.call("GET", "/api/v1/mq/queues/seeded", "", s.token).status == 404);

    // The caller's own tenant passes on the other write routes too; a non-string is 400.
    CHECK(
        s.post("/api/v1/mq/queues", {{"name", "seeded"}, {"tenantId", s.tenant.tenant()}}).status ==
        201);
    auto sub = s.post("/api/v1/mq/subscriptions",
                      {{"queue", "seeded"}, {"name", "reader"}, {"tenantId", s.tenant.tenant()}});
    CHECK(sub.status == 201);
    auto typed = s.post("/api/v1/mq/queues", {{"name", "typed"}, {"tenantId", 42}});
    CHECK(typed.status == 400);
    CHECK(typed.json()["error"]["details"]["field"] == "tenantId");
    // An empty tenantId names no tenant: 403 like any other, at the top and in a message.
    for (const auto& [path, body] : std::vector<std::pair<std::string, json>>{
             {kPublish, {{"queue", "seeded"}, {"tenantId", ""}, {"payload", "x"}}},
             {kPublish + "/batch",
              {{"queue", "seeded"}, {"messages", {{{"payload", "x"}, {"tenantId", ""}}}}}},
             {"/api/v1/mq/queues", {{"name", "empty-claim"}, {"tenantId", ""}}}}) {
        INFO(path << " " << body.dump());
        CHECK(s.post(path, body).status == 403);
    }
    // A non-string tenantId in a batch message refuses the request (400), storing nothing.
    auto batch_typed =
        s.post(kPublish + "/batch",
               {{"queue", "seeded"},
                {"messages", {{{"payload", "ok"}}, {{"payload", "x"}, {"tenantId", 7}}}}});
    CHECK(batch_typed.status == 400);
    CHECK(batch_typed.json()["error"]["details"]["field"] == "tenantId");
    CHECK(s.stored("seeded") == 0);
}

TEST_CASE("seed_health_probes_answer_without_a_token_with_the_seeds_fields", "[api][seed]") {
    Session s;  // a tenant with a queue: its name must not show
    for (const char* path : {"/health", "/health/status", "/health/ping"}) {
        INFO(path);
        auto r = s.api.call("GET", path);
        INFO(r.body);
        REQUIRE(r.status == 200);
        auto j = r.json();
        CHECK(j["status"] == "healthy");
        CHECK(iso_ms(j["timestamp"]));
        CHECK(j["service"] == "mq");
        CHECK(j["version"].is_string());
        CHECK(j["uptime"].is_number_integer());
        CHECK(j["uptime"].get<std::int64_t>() >= 0);
        CHECK(r.body.find(s.tenant.tenant()) == std::string::npos);
        CHECK(r.body.find("orders") == std::string::npos);
        if (std::string(path) == "/health/ping") {
            CHECK_FALSE(j.contains("checks"));
            continue;
        }
        CHECK(j["degraded"] == false);
        for (const char* c : {"redis", "postgres"}) {
            CHECK(j["checks"][c]["status"] == "healthy");
            CHECK(j["checks"][c]["latency"].is_number());
            CHECK(j["checks"][c].size() == 2);  // status and latency, nothing more
        }
    }
    auto full = s.api.call("GET", "/health/status").json();
    CHECK(full["checks"].contains("memory"));
    CHECK(full["checks"].contains("redis_stream"));
    // A token is not needed, and a bad one is not looked at.
    CHECK(s.api.call("GET", "/health", "", "not-a-token").status == 200);
}

TEST_CASE("seed_health_is_503_unhealthy_with_redis_down_and_recovers", "[api][seed]") {
    PrivateRedis redis;
    ApiOptions options;
    options.redis_url = redis.url();
    ApiProcess api(options);
    REQUIRE(api.call("GET", "/health").status == 200);
    redis.stop();
    auto down = api.call("GET", "/health");
    INFO(down.body);
    CHECK(down.status == 503);
    CHECK(down.json()["status"] == "unhealthy");
    CHECK(down.json()["checks"]["redis"]["status"] == "unhealthy");
    CHECK(down.json()["checks"]["postgres"]["status"] == "healthy");
    CHECK(down.body.find("refused") == std::string::npos);  // no backend error text
    CHECK(down.body.find(std::to_string(redis.port())) == std::string::npos);
    CHECK(api.call("GET", "/health/status").status == 503);
    CHECK(api.call("GET", "/health/ping").status == 200);  // the process still answers
    redis.start();
    auto until = std::chrono::steady_clock::now() + 10s;
    int status = 0;
    while (std::chrono::steady_clock::now() < until) {
        status = api.call("GET", "/health").status;
        if (status == 200) break;
        std::this_thread::sleep_for(200ms);
    }
    CHECK(status == 200);
}

TEST_CASE("seed_health_stays_200_healthy_but_degraded_with_postgres_down", "[api][seed]") {
    PrivateServices svc;
    REQUIRE(mqctl({"db", "migrate"},
                  {{"REDIS_URL", svc.redis_url()}, {"DATABASE_URL", svc.database_url()}})
                .status == 0);
    ApiOptions options;
    options.redis_url = svc.redis_url();
    options.database_url = svc.database_url();
    ApiProcess api(options);
    svc.stop_postgres();
    auto r = api.call("GET", "/health");
    INFO(r.body);
    CHECK(r.status == 200);
    CHECK(r.json()["status"] == "healthy");
    CHECK(r.json()["degraded"] == true);
    CHECK(r.json()["checks"]["postgres"]["status"] == "unhealthy");
    CHECK(r.json()["checks"]["redis"]["status"] == "healthy");
    CHECK(r.body.find("postgresql://") == std::string::npos);
    svc.start_postgres();
}
