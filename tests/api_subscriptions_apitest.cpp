// Subscription endpoints over HTTP: create (consumer groups on every partition), refusals
// (unknown queue, duplicate, bad fields, bad handler), list and ?queue= filter, get (also
// with a malformed id), update, pause/resume (a paused pull subscription pulls nothing),
// delete, and changes made with mqctl showing through the API.
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

const std::string kSubs = "/api/v1/mq/subscriptions";

struct Session : ApiSession {
    void queue(const json& body) const {
        auto r = api.call_json("POST", "/api/v1/mq/queues", body, token);
        INFO(r.body);
        REQUIRE(r.status == 201);
    }
    HttpResult create(const json& body) const { return api.call_json("POST", kSubs, body, token); }
    json created(const json& body) const {
        auto r = create(body);
        INFO(r.body);
        REQUIRE(r.status == 201);
        return r.json();
    }
    HttpResult get(const std::string& id) const {
        return api.call("GET", kSubs + "/" + id, "", token);
    }
    HttpResult post(const std::string& path, const json& body = json::object()) const {
        return api.call_json("POST", kSubs + path, body, token);
    }
    /// Names of the consumer groups on one partition stream of `queue`.
    std::set<std::string> groups(const std::string& queue, int partition) const {
        RedisScope r;
        return mqtest::group_names(
            r.redis(), mq::KeyLayout(api.key_prefix()).stream(tenant.tenant(), queue, partition));
    }
};

void check_validation(const HttpResult& r, const std::string& field) {
    INFO(r.status << " " << r.body);
    CHECK(r.status == 400);
    CHECK(r.error_code() == "MQ_VALIDATION_ERROR");
    if (!field.empty()) CHECK(r.json()["error"]["details"]["field"] == field);
}

}  // namespace

TEST_CASE("api_subscription_create_makes_a_group_on_every_partition", "[api]") {
    Session s;
    s.queue({{"name", "orders"}, {"partitions", 3}});
    auto j = s.created({{"queue", "orders"},
                        {"name", "billing"},
                        {"max_attempts", 7},
                        {"visibility_timeout_ms", 45000},
                        {"start_from", "earliest"}});
    CHECK(j["id"].get<std::string>().size() == 36);
    CHECK(j["tenant"] == s.tenant.tenant());
    CHECK(j["queue"] == "orders");
    CHECK(j["name"] == "billing");
    CHECK(j["type"] == "pull");
    CHECK(j["status"] == "active");
    CHECK(j["max_attempts"] == 7);
    CHECK(j["visibility_timeout_ms"] == 45000);
    for (int p = 0; p < 3; ++p) {
        INFO("partition " << p);
        CHECK(s.groups("orders", p) == std::set<std::string>{"billing"});
    }

    auto missing = s.create({{"queue", "nope"}, {"name", "billing"}});
    CHECK(missing.status == 404);
    CHECK(missing.error_code() == "MQ_QUEUE_NOT_FOUND");

    auto dup = s.create({{"queue", "orders"}, {"name", "billing"}});
    CHECK(dup.status == 409);
    CHECK(dup.error_code() == "MQ_CONFLICT");
}

TEST_CASE("api_subscription_create_refuses_bad_fields", "[api]") {
    Session s;
    s.queue({{"name", "orders"}});
    check_validation(s.create({{"queue", "orders"}, {"name", "a"}, {"colour", "blue"}}), "colour");
    check_validation(s.create({{"queue", "orders"}, {"name", "a"}, {"max_attempts", "many"}}),
                     "max_attempts");
    check_validation(s.create({{"queue", "orders"}, {"name", "a"}, {"max_attempts", 0}}),
                     "max_attempts");
    check_validation(s.create({{"queue", "orders"}, {"name", "a"}, {"type", "carrier-pigeon"}}),
                     "type");
    check_validation(s.create({{"queue", "orders"}, {"name", "a"}, {"start_from", "middle"}}),
                     "start_from");
    check_validation(s.create({{"queue", "orders"}, {"name", 5}}), "name");
    check_validation(s.create({{"queue", "orders"}}), "name");
    check_validation(s.create({{"queue", "orders"}, {"name", "bad name"}}), "");
    // A webhook subscription needs a handler with a url.
    check_validation(s.create({{"queue", "orders"}, {"name", "hook"}, {"type", "webhook"}}), "");
    check_validation(s.create({{"queue", "orders"},
                               {"name", "hook"},
                               {"type", "webhook"},
                               {"handler", {{"timeout_ms", 100}}}}),
                     "");
    auto bad_json = s.api.call("POST", kSubs, "{\"queue\": ", s.token);
    CHECK(bad_json.status == 400);
    CHECK(bad_json.error_code() == "MQ_VALIDATION_ERROR");

    // Nothing of the above exists, in PostgreSQL or as a consumer group.
    auto list = s.api.call("GET", kSubs, "", s.token);
    REQUIRE(list.status == 200);
    CHECK(list.json()["subscriptions"].empty());
    CHECK(s.groups("orders", 0).empty());

    // The same webhook with a url is fine.
    auto ok = s.created({{"queue", "orders"},
                         {"name", "hook"},
                         {"type", "webhook"},
                         {"handler", {{"url", "http://127.0.0.1:9/x"}}}});
    CHECK(ok["type"] == "webhook");
    CHECK(ok["handler"]["url"] == "http://127.0.0.1:9/x");
}

TEST_CASE("api_subscription_list_filter_and_get", "[api]") {
    Session s;
    s.queue({{"name", "orders"}});
    s.queue({{"name", "audit"}});
    auto a = s.created({{"queue", "orders"}, {"name", "billing"}});
    auto b = s.created({{"queue", "orders"}, {"name", "shipping"}});
    auto c = s.created({{"queue", "audit"}, {"name", "archive"}});

    auto names = [&](const std::string& target) {
        auto r = s.api.call("GET", target, "", s.token);
        REQUIRE(r.status == 200);
        auto j = r.json();
        std::set<std::string> out;
        for (const auto& sub : j["subscriptions"])
            out.insert(sub["queue"].get<std::string>() + "/" + sub["name"].get<std::string>());
        return out;
    };
    CHECK(names(kSubs) ==
          std::set<std::string>{"orders/billing", "orders/shipping", "audit/archive"});
    CHECK(names(kSubs + "?queue=orders") ==
          std::set<std::string>{"orders/billing", "orders/shipping"});
    CHECK(names(kSubs + "?queue=audit") == std::set<std::string>{"audit/archive"});
    CHECK(names(kSubs + "?queue=nothing").empty());

    auto got = s.get(b["id"]);
    REQUIRE(got.status == 200);
    CHECK(got.json() == b);
    CHECK(s.get(c["id"]).json()["name"] == "archive");

    for (const std::string& id :
         std::vector<std::string>{"not-a-uuid", "1234", "00000000-0000-4000-8000-000000000000",
                                  a["id"].get<std::string>() + "0", "%27%3B%20DROP%20TABLE%20x"}) {
        auto r = s.get(id);
        INFO(id << " -> " << r.status << " " << r.body);
        CHECK(r.status == 404);
        CHECK(r.error_code() == "MQ_SUBSCRIPTION_NOT_FOUND");
    }
}

TEST_CASE("api_subscription_update_changes_settings_but_not_identity", "[api]") {
    Session s;
    s.queue({{"name", "orders"}});
    s.queue({{"name", "other"}});
    auto sub = s.created({{"queue", "orders"}, {"name", "billing"}, {"max_attempts", 5}});
    const std::string path = kSubs + "/" + sub["id"].get<std::string>();

    auto up = s.api.call_json("PUT", path, {{"max_attempts", 9}, {"description", "pays"}}, s.token);
    REQUIRE(up.status == 200);
    CHECK(up.json()["max_attempts"] == 9);
    CHECK(up.json()["description"] == "pays");
    CHECK(s.get(sub["id"]).json()["max_attempts"] == 9);

    auto queue = s.api.call_json("PUT", path, {{"queue", "other"}}, s.token);
    check_validation(queue, "queue");
    auto name = s.api.call_json("PUT", path, {{"name", "renamed"}}, s.token);
    check_validation(name, "name");
    check_validation(s.api.call_json("PUT", path, {{"max_attempts", -1}}, s.token), "max_attempts");
    check_validation(s.api.call_json("PUT", path, {{"colour", "red"}}, s.token), "colour");
    check_validation(s.api.call_json("PUT", path, json::object(), s.token), "");
    // The same name and queue again are not a change.
    CHECK(s.api
              .call_json("PUT", path,
                         {{"queue", "orders"}, {"name", "billing"}, {"max_attempts", 4}}, s.token)
              .status == 200);

    auto now = s.get(sub["id"]).json();
    CHECK(now["queue"] == "orders");
    CHECK(now["name"] == "billing");
    CHECK(now["max_attempts"] == 4);
    CHECK(s.api
              .call_json("PUT", kSubs + "/00000000-0000-4000-8000-000000000000",
                         {{"max_attempts", 3}}, s.token)
              .status == 404);
}

TEST_CASE("api_subscription_pause_stops_pull_and_resume_restarts_it", "[api]") {
    Session s;
    s.queue({{"name", "orders"}});
    auto sub = s.created({{"queue", "orders"}, {"name", "billing"}});
    const std::string id = sub["id"];
    auto paused = s.post("/" + id + "/pause");
    REQUIRE(paused.status == 200);
    CHECK(paused.json()["status"] == "paused");
    CHECK(s.get(id).json()["status"] == "paused");

    for (int i = 0; i < 2; ++i)
        REQUIRE(s.api
                    .call_json("POST", "/api/v1/mq/publish",
                               {{"queue", "orders"}, {"payload", {{"n", i}}}}, s.token)
                    .status == 201);
    auto none = s.post("/" + id + "/pull", {{"max_messages", 10}});
    REQUIRE(none.status == 200);
    CHECK(none.json()["messages"].empty());

    auto resumed = s.post("/" + id + "/resume");
    REQUIRE(resumed.status == 200);
    CHECK(resumed.json()["status"] == "active");
    auto some = s.post("/" + id + "/pull", {{"max_messages", 10}});
    REQUIRE(some.status == 200);
    CHECK(some.json()["messages"].size() == 2);  // kept while paused, delivered after resume
}

TEST_CASE("api_subscription_delete_then_404_and_groups_gone", "[api]") {
    Session s;
    s.queue({{"name", "orders"}, {"partitions", 2}});
    auto sub = s.created({{"queue", "orders"}, {"name", "billing"}});
    const std::string id = sub["id"];
    REQUIRE(s.groups("orders", 1).count("billing") == 1);
    auto del = s.api.call("DELETE", kSubs + "/" + id, "", s.token);
    CHECK(del.status == 204);
    CHECK(del.body.empty());
    auto gone = s.get(id);
    CHECK(gone.status == 404);
    CHECK(gone.error_code() == "MQ_SUBSCRIPTION_NOT_FOUND");
    CHECK(s.api.call("DELETE", kSubs + "/" + id, "", s.token).status == 404);
    CHECK(s.post("/" + id + "/pull").status == 404);
    CHECK(s.groups("orders", 0).empty());
    CHECK(s.groups("orders", 1).empty());
    // The name is free again.
    CHECK(s.create({{"queue", "orders"}, {"name", "billing"}}).status == 201);
}

TEST_CASE("api_subscription_change_by_mqctl_shows_within_a_second", "[api]") {
    Session s;
    s.queue({{"name", "orders"}});
    auto sub = s.created({{"queue", "orders"}, {"name", "billing"}});
    const std::string id = sub["id"];
    REQUIRE(s.get(id).json()["status"] == "active");  // cached by the API now

    auto run = mqctl({"--tenant", s.tenant.tenant(), "--key-prefix", s.api.key_prefix(), "sub",
                      "pause", "orders", "billing"});
    INFO(run.out << run.err);
    REQUIRE(run.status == 0);
    auto start = std::chrono::steady_clock::now();
    std::string status;
    while (std::chrono::steady_clock::now() - start < std::chrono::seconds(1)) {
        status = s.get(id).json()["status"];
        if (status == "paused") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    CHECK(status == "paused");
    // The list sees it too, and the pause holds for pull.
    auto list = s.api.call("GET", kSubs + "?queue=orders", "", s.token);
    REQUIRE(list.status == 200);
    CHECK(list.json()["subscriptions"][0]["status"] == "paused");
}
