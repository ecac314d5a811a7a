// Auth over HTTP: the role matrix of docs/auth.md on every bearer endpoint, tenant
// isolation (another tenant's queue or subscription answers exactly like a missing one),
// allowed_producers/allowed_consumers, public queues, token revocation and expiry.
#include <array>
#include <catch2/catch.hpp>
#include <functional>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

const std::string kBase = "/api/v1/mq";
const std::array<std::string, 4> kRoles{"admin", "tenant-admin", "producer", "consumer"};

/// An independent copy of the docs/auth.md matrix. Columns: admin, tenant-admin,
/// producer, consumer.
enum Act {
    kReadQueues,
    kManageQueues,
    kPublish,
    kReadSubs,
    kManageSubs,
    kConsume,
    kMonitor,
    kMonitorAll,
    kDeadLetters
};
constexpr std::array<std::array<bool, 4>, 9> kAllowed{{
    {true, true, true, true},     // read queues
    {true, true, false, false},   // manage queues
    {true, true, true, false},    // publish
    {true, true, false, true},    // read subscriptions
    {true, true, false, false},   // manage subscriptions
    {true, true, false, true},    // consume
    {true, true, true, true},     // monitor
    {true, false, false, false},  // monitor all
    {true, true, false, false},   // manage dead letters
}};

struct Tokens {
    std::map<std::string, std::string> by_role;
    explicit Tokens(const std::string& tenant) {
        for (const auto& role : kRoles) by_role[role] = create_token(tenant, role, "p-" + role);
    }
    const std::string& operator[](const std::string& role) const { return by_role.at(role); }
};

std::string sub_id(const ApiProcess& api, const std::string& token, const std::string& queue,
                   const std::string& name, const json& extra = json::object()) {
    json body = {{"queue", queue}, {"name", name}};
    body.update(extra);
    auto r = api.call_json("POST", kBase + "/subscriptions", body, token);
    INFO(r.body);
    REQUIRE(r.status == 201);
    return r.json()["id"].get<std::string>();
}

void make_queue(const ApiProcess& api, const std::string& token, const json& body) {
    auto r = api.call_json("POST", kBase + "/queues", body, token);
    INFO(r.body);
    REQUIRE(r.status == 201);
}

bool is_2xx(const HttpResult& r) { return r.status >= 200 && r.status < 300; }

}  // namespace

TEST_CASE("api_auth_role_matrix_on_every_bearer_endpoint", "[api][auth]") {
    TenantScope t;
    ApiProcess api;
    Tokens tok(t.tenant());
    const auto& admin = tok["tenant-admin"];
    make_queue(api, admin, {{"name", "q"}});
    auto sid = sub_id(api, admin, "q", "s");
    // Disposable resources for the deleting endpoints, one per role.
    for (const auto& role : kRoles) {
        make_queue(api, admin, {{"name", "doomed-" + role}});
        make_queue(api, admin, {{"name", "subq-" + role}});
    }
    std::map<std::string, std::string> doomed_sub;
    for (const auto& role : kRoles) doomed_sub[role] = sub_id(api, admin, "subq-" + role, "gone");

    struct Endpoint {
        std::string method;
        std::function<std::string(const std::string& role)> path;
        std::function<json(const std::string& role)> body;  // null: no body
        Act act;
    };
    auto fixed = [](std::string p) { return [p](const std::string&) { return p; }; };
    auto nobody = [](const std::string&) { return json(); };
    auto constant = [](json b) { return [b](const std::string&) { return b; }; };
    const std::string q = kBase + "/queues/q";
    const std::string s = kBase + "/subscriptions/" + sid;
    std::vector<Endpoint> table{
        {"GET", fixed(kBase + "/queues"), nobody, kReadQueues},
        {"POST", fixed(kBase + "/queues"),
         [](const std::string& r) {
             return json{{"name", "new-" + r}};
         },
         kManageQueues},
        {"GET", fixed(q), nobody, kReadQueues},
        {"PUT", fixed(q), constant({{"description", "changed"}}), kManageQueues},
        {"POST", fixed(q + "/purge"), nobody, kManageQueues},
        {"DELETE", [](const std::string& r) { return kBase + "/queues/doomed-" + r; }, nobody,
         kManageQueues},
        {"POST", fixed(kBase + "/publish"), constant({{"queue", "q"}, {"payload", {{"a", 1}}}}),
         kPublish},
        {"POST", fixed(kBase + "/publish/batch"),
         constant({{"queue", "q"}, {"messages", {{{"payload", 1}}}}}), kPublish},
        {"POST", fixed(kBase + "/publish/delayed"),
         constant({{"queue", "q"}, {"payload", 1}, {"delay_ms", 60000}}), kPublish},
        {"POST", fixed(kBase + "/publish/scheduled"),
         constant({{"queue", "q"}, {"payload", 1}, {"deliver_at", "2099-01-01T00:00:00Z"}}),
         kPublish},
        {"POST", fixed(kBase + "/topics/q/publish"), constant({{"payload", "x"}}), kPublish},
        {"POST", fixed(kBase + "/subscriptions"),
         [](const std::string& r) {
             return json{{"queue", "q"}, {"name", "new-" + r}};
         },
         kManageSubs},
        {"GET", fixed(kBase + "/subscriptions"), nobody, kReadSubs},
        {"GET", fixed(s), nobody, kReadSubs},
        {"PUT", fixed(s), constant({{"description", "changed"}}), kManageSubs},
        {"POST", fixed(s + "/pause"), nobody, kManageSubs},
        {"POST", fixed(s + "/resume"), nobody, kManageSubs},
        {"DELETE",
         [&](const std::string& r) { return kBase + "/subscriptions/" + doomed_sub.at(r); }, nobody,
         kManageSubs},
        {"POST", fixed(s + "/pull"), constant({{"max_messages", 1}}), kConsume},
        {"POST", fixed(s + "/ack"), constant({{"receipt", "not-a-receipt"}}), kConsume},
        {"POST", fixed(s + "/nack"), constant({{"receipt", "not-a-receipt"}}), kConsume},
        {"POST", fixed(s + "/extend"), constant({{"receipt", "not-a-receipt"}}), kConsume},
        {"GET", fixed(kBase + "/metrics"), nobody, kMonitor},
        {"GET", fixed(kBase + "/metrics/topics"), nobody, kMonitor},
        {"GET", fixed(kBase + "/metrics/consumers"), nobody, kMonitor},
        {"GET", fixed(kBase + "/status"), nobody, kMonitor},
        {"GET", fixed(kBase + "/metrics?scope=all"), nobody, kMonitorAll},
        {"GET", fixed(q + "/dead-letters"), nobody, kDeadLetters},
        {"GET", fixed(q + "/dead-letters/0:1-0"), nobody, kDeadLetters},
        {"POST", fixed(q + "/dead-letters/replay"),
         constant({{"ids", {"0:1-0"}}, {"dry_run", true}}), kDeadLetters},
        {"POST", fixed(q + "/dead-letters/purge"), constant({{"before", "2000-01-01T00:00:00Z"}}),
         kDeadLetters},
    };
    for (const auto& e : table)
        for (std::size_t ri = 0; ri < kRoles.size(); ++ri) {
            const auto& role = kRoles[ri];
            auto path = e.path(role);
            auto body = e.body(role);
            auto r = api.call(e.method, path, body.is_null() ? "" : body.dump(), tok[role]);
            INFO(e.method << " " << path << " as " << role << " -> " << r.status << " " << r.body);
            CHECK(r.status != 401);
            CHECK(r.status != 0);
            if (kAllowed[e.act][ri]) {
                CHECK(r.status != 403);
                CHECK(r.status < 500);
            } else {
                CHECK(r.status == 403);
                CHECK(r.error_code() == "MQ_FORBIDDEN");
            }
        }
    // The forbidden roles changed nothing: their disposable queues are still there.
    for (const std::string role : {"producer", "consumer"})
        CHECK(api.call("GET", kBase + "/queues/doomed-" + role, "", admin).status == 200);
    CHECK(api.call("GET", kBase + "/queues/doomed-admin", "", admin).status == 404);
}

TEST_CASE("api_auth_tenant_isolation_foreign_resources_answer_like_missing_ones", "[api][auth]") {
    TenantScope a, b;
    ApiProcess api;
    Tokens ta(a.tenant());
    auto b_admin = create_token(b.tenant(), "tenant-admin", "owner");
    make_queue(api, b_admin, {{"name", "secret-q"}});
    auto bsid = sub_id(api, b_admin, "secret-q", "secret-s", {{"visibility_timeout_ms", 60000}});
    REQUIRE(api.call_json("POST", kBase + "/publish",
                          {{"queue", "secret-q"}, {"payload", "b-only"}}, b_admin)
                .status == 201);
    auto pulled = api.call_json("POST", kBase + "/subscriptions/" + bsid + "/pull",
                                {{"max_messages", 1}}, b_admin);
    REQUIRE(pulled.status == 200);
    REQUIRE(pulled.json()["messages"].size() == 1);
    std::string receipt = pulled.json()["messages"][0]["receipt"];
    // A uuid no subscription has, as the "missing" twin of B's subscription id.
    const std::string missing_sid = "00000000-0000-4000-8000-000000000000";

    struct Probe {
        std::string method;
        std::string path;  // {Q}: queue name, {S}: subscription id
        json body;
    };
    std::vector<Probe> queue_probes{
        {"GET", "/queues/{Q}", nullptr},
        {"PUT", "/queues/{Q}", {{"description", "mine now"}}},
        {"POST", "/queues/{Q}/purge", nullptr},
        {"DELETE", "/queues/{Q}?force=true", nullptr},
        {"POST", "/publish", {{"queue", "{Q}"}, {"payload", "x"}}},
        {"POST", "/publish/batch", {{"queue", "{Q}"}, {"messages", {{{"payload", "x"}}}}}},
        {"POST", "/publish/delayed", {{"queue", "{Q}"}, {"payload", "x"}, {"delay_ms", 1000}}},
        {"POST", "/topics/{Q}/publish", {{"payload", "x"}}},
        {"POST", "/subscriptions", {{"queue", "{Q}"}, {"name", "intruder"}}},
        {"GET", "/queues/{Q}/dead-letters", nullptr},
        {"GET", "/queues/{Q}/dead-letters/0:1-0", nullptr},
        {"POST", "/queues/{Q}/dead-letters/replay", {{"all", true}, {"dry_run", true}}},
        {"POST", "/queues/{Q}/dead-letters/purge", json::object()},
    };
    std::vector<Probe> sub_probes{
        {"GET", "/subscriptions/{S}", nullptr},
        {"PUT", "/subscriptions/{S}", {{"max_attempts", 3}}},
        {"POST", "/subscriptions/{S}/pause", nullptr},
        {"POST", "/subscriptions/{S}/resume", nullptr},
        {"POST", "/subscriptions/{S}/pull", {{"max_messages", 10}}},
        {"POST", "/subscriptions/{S}/ack", {{"receipt", receipt}}},
        {"POST", "/subscriptions/{S}/nack", {{"receipt", receipt}}},
        {"POST", "/subscriptions/{S}/extend", {{"receipt", receipt}}},
        {"DELETE", "/subscriptions/{S}", nullptr},
    };
    auto fill = [](std::string text, const std::string& q, const std::string& s) {
        for (const auto& [from, to] :
             std::vector<std::pair<std::string, std::string>>{{"{Q}", q}, {"{S}", s}})
            for (auto at = text.find(from); at != std::string::npos; at = text.find(from))
                text.replace(at, from.size(), to);
        return text;
    };
    auto send = [&](const Probe& p, const std::string& token, const std::string& q,
                    const std::string& s) {
        std::string body = p.body.is_null() ? "" : fill(p.body.dump(), q, s);
        return api.call(p.method, kBase + fill(p.path, q, s), body, token);
    };
    for (const auto& role : kRoles) {
        for (const auto& p : queue_probes) {
            auto foreign = send(p, ta[role], "secret-q", "");
            auto missing = send(p, ta[role], "no-such-q", "");
            INFO(role << " " << p.method << " " << p.path << " foreign " << foreign.status << " "
                      << foreign.body << " missing " << missing.status << " " << missing.body);
            CHECK_FALSE(is_2xx(foreign));
            CHECK(foreign.status == missing.status);
            CHECK(foreign.error_code() == missing.error_code());
            if (foreign.status != 403) CHECK(foreign.error_code() == "MQ_QUEUE_NOT_FOUND");
            // The message never names the other tenant.
            CHECK(foreign.body.find(b.tenant()) == std::string::npos);
        }
        for (const auto& p : sub_probes) {
            auto foreign = send(p, ta[role], "", bsid);
            auto missing = send(p, ta[role], "", missing_sid);
            INFO(role << " " << p.method << " " << p.path << " foreign " << foreign.status << " "
                      << foreign.body << " missing " << missing.status << " " << missing.body);
            CHECK_FALSE(is_2xx(foreign));
            CHECK(foreign.status == missing.status);
            CHECK(foreign.error_code() == missing.error_code());
            if (foreign.status != 403) CHECK(foreign.status == 404);
            CHECK(foreign.body.find(b.tenant()) == std::string::npos);
        }
        // Lists never show the other tenant's things.
        auto queues = api.call("GET", kBase + "/queues", "", ta[role]);
        REQUIRE(queues.status == 200);
        CHECK(queues.json()["queues"].empty());
    }
    // B's queue, subscription and in-flight message are untouched.
    auto q = api.call("GET", kBase + "/queues/secret-q", "", b_admin);
    REQUIRE(q.status == 200);
    CHECK(q.json()["description"] != "mine now");
    CHECK(q.json()["stats"]["messages"] == 1);
    auto s = api.call("GET", kBase + "/subscriptions/" + bsid, "", b_admin);
    REQUIRE(s.status == 200);
    CHECK(s.json()["status"] == "active");
    CHECK(s.json()["max_attempts"] != 3);
    auto ack = api.call_json("POST", kBase + "/subscriptions/" + bsid + "/ack",
                             {{"receipt", receipt}}, b_admin);
    REQUIRE(ack.status == 200);
    CHECK(ack.json()["results"][0]["status"] == "acked");
}

TEST_CASE("api_auth_allowed_producers_and_consumers_bind_principals", "[api][auth]") {
    TenantScope t;
    ApiProcess api;
    auto owner = create_token(t.tenant(), "tenant-admin", "ops");
    auto root = create_token(t.tenant(), "admin", "root");
    make_queue(api, owner,
               {{"name", "guarded"},
                {"allowed_producers", {"svc-a"}},
                {"allowed_consumers", {"reader-a"}}});
    // Creating a subscription is consuming too: tenant-admin "ops" is not on the list.
    auto refused = api.call_json("POST", kBase + "/subscriptions",
                                 {{"queue", "guarded"}, {"name", "s"}}, owner);
    CHECK(refused.status == 403);
    auto sid = sub_id(api, root, "guarded", "s");
    auto publish = [&](const std::string& token) {
        return api.call_json("POST", kBase + "/publish", {{"queue", "guarded"}, {"payload", "x"}},
                             token);
    };
    auto outsider = publish(create_token(t.tenant(), "producer", "svc-b"));
    CHECK(outsider.status == 403);
    CHECK(outsider.error_code() == "MQ_FORBIDDEN");
    // tenant-admin does not bypass the list (it may change the list instead); admin does.
    CHECK(publish(owner).status == 403);
    CHECK(publish(create_token(t.tenant(), "producer", "svc-a")).status == 201);
    CHECK(publish(root).status == 201);

    auto pull = [&](const std::string& token) {
        return api.call_json("POST", kBase + "/subscriptions/" + sid + "/pull",
                             {{"max_messages", 10}}, token);
    };
    auto stranger = pull(create_token(t.tenant(), "consumer", "reader-b"));
    CHECK(stranger.status == 403);
    CHECK(stranger.error_code() == "MQ_FORBIDDEN");
    auto listed = pull(create_token(t.tenant(), "consumer", "reader-a"));
    REQUIRE(listed.status == 200);
    CHECK(listed.json()["messages"].size() == 2);
}

TEST_CASE("api_auth_public_queue_is_never_writable_from_another_tenant", "[api][auth]") {
    // Public queues may be consumed by other tenants through subscriptions of their own
    // (auth.md, tests/api_public_apitest.cpp), but never published to, and the owner's
    // subscriptions stay out of their reach.
    TenantScope a, b;
    ApiProcess api;
    auto owner = create_token(a.tenant(), "tenant-admin", "ops");
    make_queue(api, owner, {{"name", "open"}, {"is_public", true}});
    auto sid = sub_id(api, owner, "open", "s");
    REQUIRE(api.call_json("POST", kBase + "/publish", {{"queue", "open"}, {"payload", "hi"}}, owner)
                .status == 201);

    Tokens tb(b.tenant());
    for (const auto& role : kRoles) {
        auto pub = api.call_json("POST", kBase + "/publish", {{"queue", "open"}, {"payload", "x"}},
                                 tb[role]);
        INFO(role << " " << pub.body);
        CHECK_FALSE(is_2xx(pub));
        if (role != "consumer") {
            CHECK(pub.status == 404);
            CHECK(pub.error_code() == "MQ_QUEUE_NOT_FOUND");
        }
        for (const std::string op : {"pause", "resume"})
            CHECK_FALSE(
                is_2xx(api.call("POST", kBase + "/subscriptions/" + sid + "/" + op, "", tb[role])));
        CHECK_FALSE(is_2xx(api.call("DELETE", kBase + "/subscriptions/" + sid, "", tb[role])));
    }
    // The owner's consumer still gets the one message, nobody else's publish got in.
    auto pulled =
        api.call_json("POST", kBase + "/subscriptions/" + sid + "/pull", {{"max_messages", 10}},
                      create_token(a.tenant(), "consumer", "reader"));
    REQUIRE(pulled.status == 200);
    REQUIRE(pulled.json()["messages"].size() == 1);
    CHECK(pulled.json()["messages"][0]["payload"] == "hi");
}

TEST_CASE("api_auth_revoked_token_is_refused_within_two_seconds", "[api][auth]") {
    TenantScope t;
    ApiProcess api;
    auto r = mqctl({"--tenant", t.tenant(), "-o", "json", "token", "create", "--role", "consumer",
                    "--principal", "rv"});
    REQUIRE(r.status == 0);
    auto created = json::parse(r.out);
    std::string secret = created["token"];
    REQUIRE(api.call("GET", kBase + "/queues", "", secret).status == 200);  // now cached as valid
    auto rv = mqctl({"--tenant", t.tenant(), "token", "revoke", created["id"].get<std::string>()});
    INFO(rv.out << rv.err);
    REQUIRE(rv.status == 0);
    auto revoked_at = std::chrono::steady_clock::now();
    int status = 0;
    while (std::chrono::steady_clock::now() - revoked_at < std::chrono::seconds(2)) {
        status = api.call("GET", kBase + "/queues", "", secret).status;
        if (status == 401) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(status == 401);
    auto again = api.call("GET", kBase + "/queues", "", secret);
    CHECK(again.status == 401);
    CHECK(again.error_code() == "MQ_UNAUTHORIZED");
}

TEST_CASE("api_auth_expired_token_is_refused", "[api][auth]") {
    TenantScope t;
    ApiProcess api;
    auto r = mqctl({"--tenant", t.tenant(), "-o", "json", "token", "create", "--role", "producer",
                    "--principal", "short", "--ttl", "1s"});
    REQUIRE(r.status == 0);
    auto created = json::parse(r.out);
    REQUIRE(created["expires_at"].is_string());
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));
    auto late = api.call("GET", kBase + "/queues", "", created["token"].get<std::string>());
    CHECK(late.status == 401);
    CHECK(late.error_code() == "MQ_UNAUTHORIZED");
    // A token without --ttl of the same tenant still works (the refusal is the expiry).
    CHECK(api.call("GET", kBase + "/queues", "", create_token(t.tenant(), "producer", "long"))
              .status == 200);
}
