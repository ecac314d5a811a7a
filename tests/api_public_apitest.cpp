// Public queues over HTTP: another tenant subscribes with "queue_tenant" and pulls, acks,
// nacks and extends the owner's messages; a private (or missing) queue answers exactly
// like a missing one; tenants with the same subscription name get their own consumer
// groups; allowed_consumers names other tenants' principals as "<tenant>/<principal>";
// a queue made private or deleted stops the other tenants' subscriptions; cross-tenant
// subscriptions are pull only and cannot be moved.
#include <catch2/catch.hpp>
#include <set>

#include "api_process.hpp"
#include "eventually.hpp"
#include "harness.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

const std::string kBase = "/api/v1/mq";
const std::string kSubs = kBase + "/subscriptions";

/// Two tenants on one mq-api: A ("owner", tenant-admin "ops") owns the queues, B
/// ("other", tenant-admin "ops", consumer "reader") subscribes to them.
struct TwoTenants {
    ApiSession owner;
    TenantScope other_tenant;
    std::string other = create_token(other_tenant.tenant(), "tenant-admin", "ops");
    std::string reader = create_token(other_tenant.tenant(), "consumer", "reader");

    const ApiProcess& api() const { return owner.api; }
    const std::string& a() const { return owner.tenant.tenant(); }
    const std::string& b() const { return other_tenant.tenant(); }

    void queue(const json& body) const {
        auto r = api().call_json("POST", kBase + "/queues", body, owner.token);
        INFO(r.body);
        REQUIRE(r.status == 201);
    }
    void update_queue(const std::string& name, const json& body) const {
        auto r = api().call_json("PUT", kBase + "/queues/" + name, body, owner.token);
        INFO(r.body);
        REQUIRE(r.status == 200);
    }
    void publish(const std::string& queue, const json& payload) const {
        auto r = api().call_json("POST", kBase + "/publish",
                                 {{"queue", queue}, {"payload", payload}}, owner.token);
        INFO(r.body);
        REQUIRE(r.status == 201);
    }
    HttpResult subscribe(const std::string& token, const json& body) const {
        return api().call_json("POST", kSubs, body, token);
    }
    /// B's subscription `name` on A's queue `queue`; returns its id.
    std::string cross(const std::string& queue, const std::string& name,
                      const json& extra = json::object()) const {
        json body = {
            {"queue", queue}, {"queue_tenant", a()}, {"name", name}, {"start_from", "earliest"}};
        body.update(extra);
        auto r = subscribe(other, body);
        INFO(r.body);
        REQUIRE(r.status == 201);
        return r.json()["id"];
    }
    HttpResult op(const std::string& sub, const std::string& what, const json& body,
                  const std::string& token) const {
        return api().call_json("POST", kSubs + "/" + sub + "/" + what, body, token);
    }
    json pull(const std::string& sub, const std::string& token, int max = 10) const {
        auto r = op(sub, "pull", {{"max_messages", max}}, token);
        INFO(r.body);
        REQUIRE(r.status == 200);
        return r.json()["messages"];
    }
    /// Consumer groups on one partition stream of A's queue.
    std::set<std::string> groups(const std::string& queue, int partition) const {
        RedisScope r;
        return mqtest::group_names(r.redis(),
                                   mq::KeyLayout(api().key_prefix()).stream(a(), queue, partition));
    }
};

void check_404_like_missing(const HttpResult& got, const HttpResult& missing) {
    INFO("got " << got.status << " " << got.body << " / missing " << missing.status << " "
                << missing.body);
    CHECK(got.status == 404);
    CHECK(got.error_code() == "MQ_QUEUE_NOT_FOUND");
    CHECK(got.body == missing.body);
}

}  // namespace

TEST_CASE("api_public_queue_another_tenant_subscribes_pulls_and_acks", "[api][public]") {
    TwoTenants t;
    t.queue({{"name", "feed"}, {"partitions", 2}, {"is_public", true}});
    auto sid = t.cross("feed", "audit");
    {
        auto got = t.api().call("GET", kSubs + "/" + sid, "", t.reader);
        REQUIRE(got.status == 200);
        auto j = got.json();
        CHECK(j["tenant"] == t.b());
        CHECK(j["queue"] == "feed");
        CHECK(j["queue_tenant"] == t.a());
        CHECK(j["type"] == "pull");
    }
    // The group lives on the owner's streams and carries the subscriber's tenant.
    for (int p = 0; p < 2; ++p)
        CHECK(t.groups("feed", p) == std::set<std::string>{t.b() + ":audit"});

    for (int i = 0; i < 3; ++i) t.publish("feed", {{"n", i}});
    auto got = t.pull(sid, t.reader);
    REQUIRE(got.size() == 3);
    std::set<int> seen;
    for (const auto& m : got) seen.insert(m["payload"]["n"].get<int>());
    CHECK(seen == std::set<int>{0, 1, 2});

    // extend and nack on one, ack the others.
    auto extended = t.op(sid, "extend", {{"receipt", got[0]["receipt"]}}, t.reader);
    INFO(extended.body);
    CHECK(extended.status == 200);
    auto nacked = t.op(sid, "nack", {{"receipt", got[0]["receipt"]}}, t.reader);
    INFO(nacked.body);
    CHECK(nacked.status == 200);
    auto acked = t.op(sid, "ack", {{"receipts", {got[1]["receipt"], got[2]["receipt"]}}}, t.reader);
    REQUIRE(acked.status == 200);
    const json acked_body = acked.json();  // the loop must not range over a temporary's member
    REQUIRE(acked_body["results"].size() == 2);
    for (const auto& r : acked_body["results"]) CHECK(r["status"] == "acked");
    auto again = t.pull(sid, t.reader);
    REQUIRE(again.size() == 1);
    CHECK(again[0]["id"] == got[0]["id"]);
    CHECK(again[0]["delivery_count"] == 2);
    auto last = t.op(sid, "ack", {{"receipt", again[0]["receipt"]}}, t.reader);
    REQUIRE(last.status == 200);
    CHECK(last.json()["results"][0]["status"] == "acked");
    CHECK(t.pull(sid, t.reader).empty());

    // B sees its subscription (by queue name only with queue_tenant); A does not.
    auto listed = [&](const std::string& query, const std::string& token) {
        auto r = t.api().call("GET", kSubs + query, "", token);
        REQUIRE(r.status == 200);
        return r.json()["subscriptions"].size();
    };
    CHECK(listed("", t.other) == 1);
    CHECK(listed("?queue=feed", t.other) == 0);
    CHECK(listed("?queue=feed&queue_tenant=" + t.a(), t.other) == 1);
    CHECK(listed("", t.owner.token) == 0);
    auto stats = t.api().call("GET", kBase + "/queues/feed", "", t.owner.token);
    REQUIRE(stats.status == 200);
    CHECK(stats.json()["stats"]["subscriptions"] == 0);
    auto consumers = t.api().call("GET", kBase + "/metrics/consumers", "", t.other);
    REQUIRE(consumers.status == 200);
    REQUIRE(consumers.json()["consumers"].size() == 1);
    CHECK(consumers.json()["consumers"][0]["id"] == sid);
    CHECK(consumers.json()["consumers"][0]["pending"] == 0);

    // More partitions get B's group too, and what lands there reaches B.
    t.update_queue("feed", {{"partitions", 3}});
    CHECK(t.groups("feed", 2) == std::set<std::string>{t.b() + ":audit"});
    for (int i = 0; i < 12; ++i) t.publish("feed", {{"n", i}});
    CHECK(t.pull(sid, t.reader, 100).size() == 12);
}

TEST_CASE("api_public_private_queue_of_another_tenant_answers_exactly_like_a_missing_one",
          "[api][public]") {
    TwoTenants t;
    t.queue({{"name", "secret"}});
    auto root = create_token(t.b(), "admin", "root");
    for (const auto& token : {t.other, root}) {
        auto body = [&](const std::string& queue, const std::string& queue_tenant) {
            json j = {{"queue", queue}, {"name", "intruder"}};
            if (!queue_tenant.empty()) j["queue_tenant"] = queue_tenant;
            return j;
        };
        auto missing = t.subscribe(token, body("secret", ""));  // B has no queue "secret"
        REQUIRE(missing.status == 404);
        check_404_like_missing(t.subscribe(token, body("secret", t.a())), missing);
        check_404_like_missing(t.subscribe(token, body("secret", "no-such-tenant")), missing);
        auto missing_elsewhere = t.subscribe(token, body("nope", ""));
        check_404_like_missing(t.subscribe(token, body("nope", t.a())), missing_elsewhere);
        CHECK(missing.body.find(t.a()) == std::string::npos);
    }
    // A malformed tenant name is a 400 whatever exists.
    auto bad = t.subscribe(
        t.other, {{"queue", "secret"}, {"queue_tenant", "no such tenant"}, {"name", "x"}});
    CHECK(bad.status == 400);
    CHECK(bad.json()["error"]["details"]["field"] == "queue_tenant");
    auto not_string =
        t.subscribe(t.other, {{"queue", "secret"}, {"queue_tenant", 7}, {"name", "x"}});
    CHECK(not_string.status == 400);
    CHECK(not_string.json()["error"]["details"]["field"] == "queue_tenant");
    // Nothing was created anywhere.
    CHECK(t.groups("secret", 0).empty());
    auto listed = t.api().call("GET", kSubs, "", t.other);
    REQUIRE(listed.status == 200);
    CHECK(listed.json()["subscriptions"].empty());
}

TEST_CASE("api_public_same_subscription_name_in_two_tenants_gets_independent_copies",
          "[api][public]") {
    TwoTenants t;
    TenantScope third;
    auto c_admin = create_token(third.tenant(), "tenant-admin", "ops");
    auto c_reader = create_token(third.tenant(), "consumer", "reader");
    t.queue({{"name", "feed"}, {"is_public", true}});
    auto own =
        t.owner.api.call_json("POST", kSubs, {{"queue", "feed"}, {"name", "audit"}}, t.owner.token);
    REQUIRE(own.status == 201);
    std::string a_sid = own.json()["id"];
    auto b_sid = t.cross("feed", "audit");
    auto c = t.subscribe(c_admin, {{"queue", "feed"}, {"queue_tenant", t.a()}, {"name", "audit"}});
    INFO(c.body);
    REQUIRE(c.status == 201);
    std::string c_sid = c.json()["id"];
    // The same name twice in one tenant is still a conflict.
    auto dup =
        t.subscribe(t.other, {{"queue", "feed"}, {"queue_tenant", t.a()}, {"name", "audit"}});
    CHECK(dup.status == 409);
    CHECK(dup.error_code() == "MQ_CONFLICT");
    CHECK(t.groups("feed", 0) ==
          std::set<std::string>{"audit", t.b() + ":audit", third.tenant() + ":audit"});

    t.publish("feed", "one");
    t.publish("feed", "two");
    auto b_got = t.pull(b_sid, t.reader);
    REQUIRE(b_got.size() == 2);
    for (const auto& m : b_got)
        REQUIRE(t.op(b_sid, "ack", {{"receipt", m["receipt"]}}, t.reader)
                    .json()["results"][0]["status"] == "acked");
    // B's acks took nothing from C or A.
    CHECK(t.pull(c_sid, c_reader).size() == 2);
    CHECK(t.pull(a_sid, t.owner.token).size() == 2);
    CHECK(t.pull(b_sid, t.reader).empty());
    // A receipt of one tenant's subscription is refused on the other's.
    auto foreign_receipt = t.op(c_sid, "ack", {{"receipt", b_got[0]["receipt"]}}, c_reader);
    CHECK(foreign_receipt.status == 400);
    // B and C cannot reach each other's subscription either.
    CHECK(t.api().call("GET", kSubs + "/" + c_sid, "", t.other).status == 404);

    // Deleting B's subscription removes only B's group.
    REQUIRE(t.api().call("DELETE", kSubs + "/" + b_sid, "", t.other).status == 204);
    CHECK(t.groups("feed", 0) == std::set<std::string>{"audit", third.tenant() + ":audit"});
}

TEST_CASE("api_public_allowed_consumers_name_other_tenants_principals_with_their_tenant",
          "[api][public]") {
    TwoTenants t;
    t.queue({{"name", "feed"},
             {"is_public", true},
             {"allowed_consumers", {"reader-a", t.b() + "/ops", t.b() + "/reader"}}});
    auto sid = t.cross("feed", "audit");
    t.publish("feed", "x");
    CHECK(t.pull(sid, t.reader).size() == 1);

    // Not listed: another consumer of B, B's admin (no bypass on another tenant's queue),
    // and a principal of B that shares the name of one of A's listed principals.
    for (const auto& [role, principal] : std::vector<std::pair<std::string, std::string>>{
             {"consumer", "stranger"}, {"admin", "root"}, {"consumer", "reader-a"}}) {
        auto r = t.op(sid, "pull", {{"max_messages", 1}}, create_token(t.b(), role, principal));
        INFO(role << " " << principal << " " << r.body);
        CHECK(r.status == 403);
        CHECK(r.error_code() == "MQ_FORBIDDEN");
    }
    // Creating a subscription is consuming too: C's tenant-admin is not on the list.
    TenantScope third;
    auto refused = t.subscribe(create_token(third.tenant(), "tenant-admin", "ops"),
                               {{"queue", "feed"}, {"queue_tenant", t.a()}, {"name", "audit"}});
    CHECK(refused.status == 403);
    CHECK(refused.error_code() == "MQ_FORBIDDEN");

    // The owner takes B's reader off the list: B's reader is refused from then on.
    t.update_queue("feed", {{"allowed_consumers", {"reader-a", t.b() + "/ops"}}});
    auto now = t.op(sid, "pull", {{"max_messages", 1}}, t.reader);
    CHECK(now.status == 403);
    CHECK(now.error_code() == "MQ_FORBIDDEN");
}

TEST_CASE("api_public_queue_made_private_or_deleted_stops_other_tenants", "[api][public]") {
    TwoTenants t;
    t.queue({{"name", "feed"}, {"is_public", true}});
    auto own =
        t.owner.api.call_json("POST", kSubs, {{"queue", "feed"}, {"name", "mine"}}, t.owner.token);
    REQUIRE(own.status == 201);
    std::string a_sid = own.json()["id"];
    auto sid = t.cross("feed", "audit");
    t.publish("feed", "first");
    auto held = t.pull(sid, t.reader);
    REQUIRE(held.size() == 1);
    std::string receipt = held[0]["receipt"];

    t.update_queue("feed", {{"is_public", false}});
    t.publish("feed", "second");
    // What B gets is what a queue missing from B's view gets, on every consuming call.
    auto missing = t.subscribe(t.other, {{"queue", "feed"}, {"name", "x"}});
    REQUIRE(missing.status == 404);
    check_404_like_missing(t.op(sid, "pull", {{"max_messages", 10}}, t.reader), missing);
    check_404_like_missing(t.op(sid, "ack", {{"receipt", receipt}}, t.reader), missing);
    check_404_like_missing(t.op(sid, "nack", {{"receipt", receipt}}, t.reader), missing);
    check_404_like_missing(t.op(sid, "extend", {{"receipt", receipt}}, t.reader), missing);
    check_404_like_missing(
        t.subscribe(t.other, {{"queue", "feed"}, {"queue_tenant", t.a()}, {"name", "late"}}),
        missing);
    // B still owns (and may delete) its subscription; A's own one is unaffected.
    CHECK(t.api().call("GET", kSubs + "/" + sid, "", t.other).status == 200);
    CHECK(t.pull(a_sid, t.owner.token).size() == 2);

    // Public again: B's group kept its place, the held message is still B's to ack.
    t.update_queue("feed", {{"is_public", true}});
    auto ack = t.op(sid, "ack", {{"receipt", receipt}}, t.reader);
    REQUIRE(ack.status == 200);
    CHECK(ack.json()["results"][0]["status"] == "acked");
    auto later = t.pull(sid, t.reader);
    REQUIRE(later.size() == 1);
    CHECK(later[0]["payload"] == "second");

    // B's subscription does not keep A from deleting the queue (A's own one still does);
    // it goes with the queue.
    auto refused = t.api().call("DELETE", kBase + "/queues/feed", "", t.owner.token);
    CHECK(refused.status == 409);
    CHECK(refused.json()["error"]["details"]["subscriptions"] == 1);
    REQUIRE(t.api().call("DELETE", kSubs + "/" + a_sid, "", t.owner.token).status == 204);
    REQUIRE(t.api().call("DELETE", kBase + "/queues/feed", "", t.owner.token).status == 204);
    auto gone = t.op(sid, "pull", {{"max_messages", 10}}, t.reader);
    CHECK(gone.status == 404);
    CHECK(gone.error_code() == "MQ_SUBSCRIPTION_NOT_FOUND");
    CHECK(t.api().call("GET", kSubs + "/" + sid, "", t.other).status == 404);
}

TEST_CASE("api_public_cross_tenant_subscriptions_are_pull_only_and_stay_on_their_queue",
          "[api][public]") {
    TwoTenants t;
    t.queue({{"name", "feed"}, {"is_public", true}});
    auto webhook = t.subscribe(t.other, {{"queue", "feed"},
                                         {"queue_tenant", t.a()},
                                         {"name", "hook"},
                                         {"type", "webhook"},
                                         {"handler", {{"url", "http://127.0.0.1:9/hook"}}}});
    CHECK(webhook.status == 400);
    CHECK(webhook.json()["error"]["details"]["field"] == "type");
    auto sid = t.cross("feed", "audit");
    auto current = t.api().call("GET", kSubs + "/" + sid, "", t.other).json();

    auto put = [&](const json& body) {
        return t.api().call_json("PUT", kSubs + "/" + sid, body, t.other);
    };
    auto moved = put({{"queue_tenant", t.b()}});
    CHECK(moved.status == 400);
    CHECK(moved.json()["error"]["details"]["field"] == "queue_tenant");
    auto to_webhook = put({{"type", "webhook"}, {"handler", {{"url", "http://127.0.0.1:9/hook"}}}});
    CHECK(to_webhook.status == 400);
    CHECK(to_webhook.json()["error"]["details"]["field"] == "type");
    // The whole subscription as GET shows it goes back unchanged (queue_tenant included).
    current["max_attempts"] = 9;
    auto round = put(current);
    INFO(round.body);
    REQUIRE(round.status == 200);
    CHECK(round.json()["max_attempts"] == 9);
    CHECK(round.json()["queue_tenant"] == t.a());

    // Pause and resume work on it like on any of B's subscriptions.
    t.publish("feed", "x");
    REQUIRE(t.op(sid, "pause", json::object(), t.other).status == 200);
    CHECK(t.pull(sid, t.reader).empty());
    REQUIRE(t.op(sid, "resume", json::object(), t.other).status == 200);
    CHECK(t.pull(sid, t.reader).size() == 1);
}

TEST_CASE("api_public_queue_history_shows_the_owners_subscriptions_only",
          "[api][public][history]") {
    TwoTenants t;
    t.queue({{"name", "feed"}, {"is_public", true}, {"record_messages", true}});
    auto theirs = t.cross("feed", "audit");
    auto mine_r = t.subscribe(
        t.owner.token,
        {{"queue", "feed"}, {"name", "mine"}, {"type", "pull"}, {"start_from", "earliest"}});
    INFO(mine_r.body);
    REQUIRE(mine_r.status == 201);
    const std::string mine = mine_r.json()["id"];
    t.publish("feed", {{"n", 1}});

    // B nacks, then acks; A acks after B: once A's attempt is in the history, B's would be
    // too (one buffer stream, read in order).
    auto b1 = t.pull(theirs, t.reader);
    REQUIRE(b1.size() == 1);
    const std::string id = b1[0]["id"];
    REQUIRE(t.op(theirs, "nack", {{"receipt", b1[0]["receipt"]}}, t.reader).status == 200);
    auto b2 = t.pull(theirs, t.reader);
    REQUIRE(b2.size() == 1);
    REQUIRE(t.op(theirs, "ack", {{"receipt", b2[0]["receipt"]}}, t.reader).status == 200);
    auto a1 = t.pull(mine, t.owner.token);
    REQUIRE(a1.size() == 1);
    REQUIRE(t.op(mine, "ack", {{"receipt", a1[0]["receipt"]}}, t.owner.token).status == 200);

    HttpResult r;
    REQUIRE(eventually(
        [&] {
            r = t.api().call("GET", kBase + "/messages/" + id, "", t.owner.token);
            return r.status == 200 && r.json()["events"].size() >= 2;
        },
        std::chrono::seconds(15), std::chrono::milliseconds(100)));
    INFO(r.body);
    const json events = r.json()["events"];
    CHECK(events.size() == 2);  // published, A's ack
    CHECK(events[0]["event"] == "published");
    CHECK(events[1]["subscription"] == "mine");
    CHECK(r.body.find(t.b()) == std::string::npos);
    CHECK(r.body.find("audit") == std::string::npos);
    CHECK(r.body.find("reader") == std::string::npos);
    // B reads none of A's history.
    CHECK(t.api().call("GET", kBase + "/messages/" + id, "", t.other).status == 404);
}
