// Queue endpoints over HTTP: create (echo, conflict, bad names and fields), list, get
// with stats, update (grow only), delete (refused while subscribed unless forced), purge,
// and 404 for missing queues.
#include <algorithm>
#include <catch2/catch.hpp>

#include "api_process.hpp"
#include "harness.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

const std::string kQueues = "/api/v1/mq/queues";

struct Session : ApiSession {
    HttpResult create(const json& body) const {
        return api.call_json("POST", kQueues, body, token);
    }
    HttpResult publish(const std::string& queue, const json& payload) const {
        return api.call_json("POST", "/api/v1/mq/publish", {{"queue", queue}, {"payload", payload}},
                             token);
    }
    json stats(const std::string& queue) const {
        auto r = api.call("GET", kQueues + "/" + queue, "", token);
        REQUIRE(r.status == 200);
        return r.json()["stats"];
    }
};

}  // namespace

TEST_CASE("api_queue_create_echoes_fields_and_refuses_duplicates", "[api]") {
    Session s;
    auto r = s.create({{"name", "orders"},
                       {"description", "order events"},
                       {"partitions", 3},
                       {"max_length", 1000},
                       {"retention_ms", 3600000},
                       {"allowed_producers", {"svc-a"}},
                       {"is_public", true}});
    REQUIRE(r.status == 201);
    auto j = r.json();
    CHECK(j["name"] == "orders");
    CHECK(j["tenant"] == s.tenant.tenant());
    CHECK(j["description"] == "order events");
    CHECK(j["partitions"] == 3);
    CHECK(j["max_length"] == 1000);
    CHECK(j["retention_ms"] == 3600000);
    CHECK(j["allowed_producers"] == json::array({"svc-a"}));
    CHECK(j["is_public"] == true);
    CHECK(j["encryption"] == "none");
    CHECK(j["id"].get<std::string>().size() == 36);

    auto dup = s.create({{"name", "orders"}});
    CHECK(dup.status == 409);
    CHECK(dup.error_code() == "MQ_CONFLICT");
}

TEST_CASE("api_queue_create_refuses_bad_names_unknown_fields_and_wrong_types", "[api]") {
    Session s;
    for (const std::string& bad :
         std::vector<std::string>{"", "has space", "../etc", std::string(300, 'a'), "-lead"}) {
        auto r = s.create({{"name", bad}});
        INFO(bad);
        CHECK(r.status == 400);
        CHECK(r.error_code() == "MQ_VALIDATION_ERROR");
    }
    auto unknown = s.create({{"name", "q1"}, {"colour", "blue"}});
    CHECK(unknown.status == 400);
    CHECK(unknown.json()["error"]["details"]["field"] == "colour");

    auto wrong = s.create({{"name", "q1"}, {"partitions", "three"}});
    CHECK(wrong.status == 400);
    CHECK(wrong.json()["error"]["details"]["field"] == "partitions");

    auto range = s.create({{"name", "q1"}, {"partitions", 0}});
    CHECK(range.status == 400);
    CHECK(range.json()["error"]["details"]["field"] == "partitions");

    auto name_type = s.create({{"name", 42}});
    CHECK(name_type.status == 400);
    CHECK(name_type.json()["error"]["details"]["field"] == "name");

    auto no_name = s.create({{"partitions", 2}});
    CHECK(no_name.status == 400);
    CHECK(no_name.json()["error"]["details"]["field"] == "name");

    // Nothing of the above was created.
    auto list = s.api.call("GET", kQueues, "", s.token);
    REQUIRE(list.status == 200);
    CHECK(list.json()["queues"].empty());
}

TEST_CASE("api_queue_list_and_get_count_published_messages", "[api]") {
    Session s;
    REQUIRE(s.create({{"name", "alpha"}}).status == 201);
    REQUIRE(s.create({{"name", "beta"}, {"partitions", 2}}).status == 201);

    auto list = s.api.call("GET", kQueues, "", s.token);
    REQUIRE(list.status == 200);
    auto listed = list.json();
    std::vector<std::string> names;
    for (const auto& q : listed["queues"]) names.push_back(q["name"]);
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"alpha", "beta"});

    CHECK(s.stats("beta")["messages"] == 0);
    for (int i = 0; i < 3; ++i) REQUIRE(s.publish("beta", {{"n", i}}).status == 201);
    auto got = s.api.call("GET", kQueues + "/beta", "", s.token);
    REQUIRE(got.status == 200);
    auto j = got.json();
    CHECK(j["name"] == "beta");
    CHECK(j["partitions"] == 2);
    CHECK(j["stats"]["messages"] == 3);
    CHECK(j["stats"]["delayed"] == 0);
    CHECK(j["stats"]["subscriptions"] == 0);
    CHECK(s.stats("alpha")["messages"] == 0);
}

TEST_CASE("api_queue_update_grows_partitions_and_refuses_shrinking", "[api]") {
    Session s;
    REQUIRE(s.create({{"name", "grow"}, {"partitions", 2}}).status == 201);
    auto up = s.api.call_json("PUT", kQueues + "/grow",
                              {{"partitions", 4}, {"description", "wider"}}, s.token);
    REQUIRE(up.status == 200);
    CHECK(up.json()["partitions"] == 4);
    CHECK(up.json()["description"] == "wider");

    auto down = s.api.call_json("PUT", kQueues + "/grow", {{"partitions", 1}}, s.token);
    CHECK(down.status == 400);
    CHECK(down.error_code() == "MQ_VALIDATION_ERROR");

    auto rename = s.api.call_json("PUT", kQueues + "/grow", {{"name", "other"}}, s.token);
    CHECK(rename.status == 400);
    auto empty = s.api.call_json("PUT", kQueues + "/grow", json::object(), s.token);
    CHECK(empty.status == 400);

    auto got = s.api.call("GET", kQueues + "/grow", "", s.token);
    REQUIRE(got.status == 200);
    CHECK(got.json()["partitions"] == 4);

    auto missing = s.api.call_json("PUT", kQueues + "/nope", {{"partitions", 4}}, s.token);
    CHECK(missing.status == 404);
    CHECK(missing.error_code() == "MQ_QUEUE_NOT_FOUND");
}

TEST_CASE("api_queue_delete_refuses_subscribed_queue_unless_forced", "[api]") {
    Session s;
    REQUIRE(s.create({{"name", "plain"}}).status == 201);
    REQUIRE(s.create({{"name", "subbed"}}).status == 201);
    auto sub = s.api.call_json("POST", "/api/v1/mq/subscriptions",
                               {{"queue", "subbed"}, {"name", "reader"}}, s.token);
    REQUIRE(sub.status == 201);

    auto del = s.api.call("DELETE", kQueues + "/plain", "", s.token);
    CHECK(del.status == 204);
    CHECK(del.body.empty());
    CHECK(s.api.call("GET", kQueues + "/plain", "", s.token).status == 404);

    auto refused = s.api.call("DELETE", kQueues + "/subbed", "", s.token);
    CHECK(refused.status == 409);
    CHECK(refused.error_code() == "MQ_CONFLICT");
    CHECK(s.api.call("GET", kQueues + "/subbed", "", s.token).status == 200);

    auto forced = s.api.call("DELETE", kQueues + "/subbed?force=true", "", s.token);
    CHECK(forced.status == 204);
    auto gone = s.api.call("GET", kQueues + "/subbed", "", s.token);
    CHECK(gone.status == 404);
    CHECK(gone.error_code() == "MQ_QUEUE_NOT_FOUND");
    CHECK(s.api.call("DELETE", kQueues + "/subbed", "", s.token).status == 404);
}

TEST_CASE("api_queue_purge_counts_entries_and_delayed", "[api]") {
    Session s;
    REQUIRE(s.create({{"name", "purgeme"}, {"partitions", 2}}).status == 201);
    for (int i = 0; i < 4; ++i) REQUIRE(s.publish("purgeme", {{"n", i}}).status == 201);
    auto delayed = s.api.call_json(
        "POST", "/api/v1/mq/publish/delayed",
        {{"queue", "purgeme"}, {"payload", "later"}, {"delay_ms", 600000}}, s.token);
    REQUIRE(delayed.status == 201);
    CHECK(s.stats("purgeme")["messages"] == 4);
    CHECK(s.stats("purgeme")["delayed"] == 1);

    auto p = s.api.call("POST", kQueues + "/purgeme/purge", "", s.token);
    REQUIRE(p.status == 200);
    CHECK(p.json()["entries"] == 4);
    CHECK(p.json()["delayed"] == 1);
    CHECK(p.json()["purged"] == 5);
    CHECK(s.stats("purgeme")["messages"] == 0);
    CHECK(s.stats("purgeme")["delayed"] == 0);

    auto again = s.api.call("POST", kQueues + "/purgeme/purge", "", s.token);
    REQUIRE(again.status == 200);
    CHECK(again.json()["purged"] == 0);
}

TEST_CASE("api_queue_missing_answers_404_queue_not_found", "[api]") {
    Session s;
    for (const auto& [method, target] :
         std::vector<std::pair<std::string, std::string>>{{"GET", kQueues + "/ghost"},
                                                          {"DELETE", kQueues + "/ghost"},
                                                          {"POST", kQueues + "/ghost/purge"}}) {
        auto r = s.api.call(method, target, "", s.token);
        INFO(method << ' ' << target);
        CHECK(r.status == 404);
        CHECK(r.error_code() == "MQ_QUEUE_NOT_FOUND");
    }
    auto pub = s.publish("ghost", "x");
    CHECK(pub.status == 404);
    CHECK(pub.error_code() == "MQ_QUEUE_NOT_FOUND");

    // Another tenant's queue looks exactly like a missing one.
    Session other;
    REQUIRE(other.create({{"name", "theirs"}}).status == 201);
    auto cross = s.api.call("GET", kQueues + "/theirs", "", s.token);
    CHECK(cross.status == 404);
    CHECK(cross.error_code() == "MQ_QUEUE_NOT_FOUND");
}
