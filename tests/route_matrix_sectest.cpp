// Every route of schemas/openapi.json with every identity: the four roles of the owning
// tenant, no token, malformed tokens, and another tenant's tokens. Each answer is one the
// document lists for the operation, never a 5xx; the wrong identity gets 401/403/404 in
// the error shape; another tenant never sees the owner's data and changes nothing of it.
#include <catch2/catch.hpp>
#include <fstream>

#include "api_process.hpp"
#include "harness.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

const std::string kServiceToken = "matrix-service-token-0123456789";

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

struct Identity {
    std::string label;
    std::map<std::string, std::string> headers;
    enum Kind { kOwnerRole, kNobody, kMalformed, kOtherTenant } kind;
    std::string role;  // owner or other tenant
};

bool documented(const json& op, int status) {
    const auto& responses = op["responses"];
    if (responses.contains(std::to_string(status))) return true;
    return status >= 400 && status < 500 && responses.contains("4XX");
}

}  // namespace

TEST_CASE(
    "every route with every role or no token or a malformed token or another tenant's token "
    "gives its documented answer",
    "[security][matrix]") {
    TenantScope owner, other;
    ApiOptions options;
    options.env["INTERNAL_SERVICE_TOKEN"] = kServiceToken;
    options.env["MAINTENANCE"] = "off";
    // Every malformed token on every route comes from one address: the failed-auth limit
    // (admission_sectest.cpp tests it) would answer 429 before the 401 checked here.
    options.env["AUTH_FAILURE_LIMIT"] = "0";
    ApiProcess api(options);
    std::map<std::string, std::string> owner_tokens, other_tokens;
    for (const char* role : {"admin", "tenant-admin", "producer", "consumer"}) {
        owner_tokens[role] = create_token(owner.tenant(), role, std::string("p-") + role);
        other_tokens[role] = create_token(other.tenant(), role, std::string("x-") + role);
    }
    const auto& ops = owner_tokens["tenant-admin"];
    const std::string queue = unique_name("qa");
    const std::string secret_payload = unique_name("secret-payload");
    const std::string secret_description = unique_name("secret-description");
    auto must = [&](const HttpResult& r, int status) {
        INFO(r.body);
        REQUIRE(r.status == status);
        return r.json();
    };
    must(api.call_json("POST", "/api/v1/mq/queues",
                       {{"name", queue}, {"description", secret_description}}, ops),
         201);
    const std::string sub_id = must(
        api.call_json("POST", "/api/v1/mq/subscriptions", {{"queue", queue}, {"name", "s"}}, ops),
        201)["id"];
    must(api.call_json("POST", "/api/v1/mq/schedules",
                       {{"name", "sch"},
                        {"queue", queue},
                        {"cron", "0 3 * * *"},
                        {"payload", 1},
                        {"paused", true}},
                       ops),
         201);
    must(api.call_json("POST", "/api/v1/mq/publish",
                       {{"queue", queue}, {"payload", secret_payload}}, ops),
         201);

    std::vector<Identity> identities;
    for (const auto& [role, token] : owner_tokens)
        identities.push_back(
            {"owner " + role, {{"Authorization", "Bearer " + token}}, Identity::kOwnerRole, role});
    identities.push_back({"no token", {}, Identity::kNobody, ""});
    for (const auto& [label, value] : std::vector<std::pair<std::string, std::string>>{
             {"empty bearer", "Bearer "},
             {"garbage bearer", "Bearer !!not a token!!"},
             {"two words", "Bearer a b"},
             {"long bearer", "Bearer " + std::string(4000, 'z')},
             {"basic scheme", "Basic dXNlcjpwYXNz"},
             {"token without scheme", owner_tokens["tenant-admin"]},
             {"token with a byte changed",
              "Bearer " + ops.substr(0, ops.size() - 1) + (ops.back() == 'a' ? "b" : "a")}})
        identities.push_back({label, {{"Authorization", value}}, Identity::kMalformed, ""});
    for (const auto& [role, token] : other_tokens)
        identities.push_back({"other tenant " + role,
                              {{"Authorization", "Bearer " + token}},
                              Identity::kOtherTenant,
                              role});

    // Disposable targets for the deleting routes, one per owner identity.
    std::map<std::string, std::string> doomed_queue, doomed_sub, doomed_schedule;
    for (const auto& id : identities) {
        if (id.kind != Identity::kOwnerRole) continue;
        auto n = unique_name("doomed");
        must(api.call_json("POST", "/api/v1/mq/queues", {{"name", n}}, ops), 201);
        doomed_queue[id.label] = n;
        doomed_sub[id.label] = must(
            api.call_json("POST", "/api/v1/mq/subscriptions", {{"queue", n}, {"name", "d"}}, ops),
            201)["id"];
        must(api.call_json("POST", "/api/v1/mq/schedules",
                           {{"name", n}, {"queue", n}, {"cron", "0 3 * * *"}, {"payload", 1}}, ops),
             201);
        doomed_schedule[id.label] = n;
    }

    std::ifstream in(std::string(MQ_SOURCE_DIR) + "/schemas/openapi.json");
    REQUIRE(in.good());
    const json doc = json::parse(in);
    int probes = 0;
    for (const auto& [pattern, item] : doc["paths"].items())
        for (const auto& [method, op] : item.items()) {
            if (!op.is_object() || !op.contains("responses")) continue;
            const bool open = op.contains("security") && op["security"].empty();
            const bool service = pattern.rfind("/internal/mq/", 0) == 0;
            for (const auto& id : identities) {
                const bool owner_deletes = method == "delete" && id.kind == Identity::kOwnerRole;
                std::string path = pattern;
                auto put = [&](const std::string& from, const std::string& to) {
                    for (auto at = path.find(from); at != std::string::npos; at = path.find(from))
                        path.replace(at, from.size(), to);
                };
                const bool schedules = pattern.find("/schedules/") != std::string::npos;
                if (schedules)
                    put("{name}", owner_deletes ? doomed_schedule[id.label] : "sch");
                else
                    put("{name}", owner_deletes ? doomed_queue[id.label] : queue);
                put("{id}", pattern.find("/dead-letters/") != std::string::npos
                                ? "0:1-0"
                                : (owner_deletes ? doomed_sub[id.label] : sub_id));
                json body;
                if (op.contains("requestBody")) {
                    if (service)
                        body = {{"tenant", owner.tenant()}, {"payload", 1}};
                    else if (pattern == "/api/v1/mq/queues")
                        body = {{"name", unique_name("new")}};
                    else if (pattern == "/api/v1/mq/subscriptions")
                        body = {{"queue", queue}, {"name", unique_name("new")}};
                    else if (pattern == "/api/v1/mq/schedules")
                        body = {{"name", unique_name("new")},
                                {"queue", queue},
                                {"cron", "0 3 * * *"},
                                {"payload", 1}};
                    else if (pattern.find("/publish") != std::string::npos) {
                        body = {{"payload", 1}};
                        if (pattern.find("/topics/") == std::string::npos) body["queue"] = queue;
                        if (pattern.find("/batch") != std::string::npos)
                            body = {{"queue", queue}, {"messages", {{{"payload", 1}}}}};
                        if (pattern.find("/delayed") != std::string::npos) body["delay_ms"] = 1000;
                        if (pattern.find("/scheduled") != std::string::npos)
                            body["deliver_at"] = "2099-01-01T00:00:00Z";
                    } else if (pattern.find("/ack") != std::string::npos ||
                               pattern.find("/nack") != std::string::npos ||
                               pattern.find("/extend") != std::string::npos)
                        body = {{"receipt", "AAAA"}};
                    else if (pattern.find("/replay") != std::string::npos)
                        body = {{"ids", {"0:1-0"}}, {"dry_run", true}};
                    else
                        body = json::object();
                }
                if (pattern.find("/pull") != std::string::npos) body = {{"max_messages", 1}};
                auto r = api.call(upper(method), path, body.is_null() ? "" : body.dump(), "",
                                  id.headers);
                ++probes;
                INFO(upper(method) << " " << path << " as " << id.label << " -> " << r.status << " "
                                   << r.body.substr(0, 400));
                REQUIRE(r.status != 0);
                CHECK(r.status < 500);
                CHECK(documented(op, r.status));
                if (r.status >= 400) {
                    CHECK(r.json()["error"]["code"].is_string());
                    CHECK(r.headers.count("x-request-id") == 1);
                }
                if (r.status == 401) CHECK(r.error_code() == "MQ_UNAUTHORIZED");
                if (r.status == 403) CHECK(r.error_code() == "MQ_FORBIDDEN");
                if (open) continue;
                if (service) {
                    CHECK(r.status == 401);  // no X-Service-Token: a bearer opens nothing here
                    continue;
                }
                if (id.kind == Identity::kNobody || id.kind == Identity::kMalformed) {
                    CHECK(r.status == 401);
                    CHECK(r.headers.count("www-authenticate") == 1);
                    continue;
                }
                if (pattern == "/metrics") {
                    CHECK(r.status == (id.role == "admin" ? 200 : 403));
                    continue;
                }
                if (id.kind == Identity::kOtherTenant) {
                    // Never the owner's data: its tenant, payloads, descriptions, queue names
                    // (unless the caller named the queue itself).
                    CHECK(r.body.find(owner.tenant()) == std::string::npos);
                    CHECK(r.body.find(secret_payload) == std::string::npos);
                    CHECK(r.body.find(secret_description) == std::string::npos);
                    bool named = path.find(queue) != std::string::npos ||
                                 (!body.is_null() && body.dump().find(queue) != std::string::npos);
                    if (!named) CHECK(r.body.find(queue) == std::string::npos);
                    // A route on one of the owner's things: it does not exist for this caller.
                    bool targets_owner = path.find(queue) != std::string::npos ||
                                         path.find(sub_id) != std::string::npos ||
                                         path.find("/schedules/sch") != std::string::npos || named;
                    if (targets_owner && !(pattern == "/api/v1/mq/queues" && method == "post"))
                        CHECK((r.status == 404 || r.status == 403 || r.status == 400));
                }
            }
        }
    CHECK(probes > 400);

    // The other tenant changed nothing: the owner's queue, subscription, schedule and message
    // are all still there.
    CHECK(api.call("GET", "/api/v1/mq/queues/" + queue, "", ops).status == 200);
    CHECK(api.call("GET", "/api/v1/mq/subscriptions/" + sub_id, "", ops).status == 200);
    CHECK(api.call("GET", "/api/v1/mq/schedules/sch", "", ops).status == 200);
    CHECK(api.running());
}
