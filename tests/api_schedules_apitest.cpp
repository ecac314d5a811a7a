// Schedule endpoints over HTTP: CRUD with next fire times, pause/resume, hostile input
// (bad cron, unknown zone, names, unknown fields, payload over MAX_MESSAGE_SIZE), another
// tenant's schedule answering like a missing one, the role matrix and allowed_producers.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"
#include "private_services.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

const std::string kBase = "/api/v1/mq";
const std::string kSchedules = kBase + "/schedules";

struct Session : ApiSession {
    Session() {
        REQUIRE(api.call_json("POST", kBase + "/queues", {{"name", "jobs"}}, token).status == 201);
    }
    HttpResult create(const json& body, const std::string& as = "") const {
        return api.call_json("POST", kSchedules, body, as.empty() ? token : as);
    }
    static json nightly() {
        return {{"name", "nightly"},
                {"queue", "jobs"},
                {"cron", "0 3 * * *"},
                {"tz", "Europe/Berlin"},
                {"payload", {{"report", "daily"}}},
                {"headers", {{"origin", "api"}}}};
    }
};

}  // namespace

TEST_CASE("api_schedule_crud_with_next_fire_times", "[api][schedule]") {
    Session s;
    auto r = s.create(Session::nightly());
    REQUIRE(r.status == 201);
    auto j = r.json();
    CHECK(j["name"] == "nightly");
    CHECK(j["queue"] == "jobs");
    CHECK(j["tz"] == "Europe/Berlin");
    CHECK(j["status"] == "active");
    CHECK(j["misfire"] == "once");
    CHECK(j["payload"] == json{{"report", "daily"}});
    CHECK(j["content_type"] == "application/json");
    CHECK(j["headers"] == json{{"origin", "api"}});
    REQUIRE(j["next_fires"].size() == 5);
    // 03:00 in Berlin is 01:00 or 02:00 UTC depending on the season.
    for (const auto& t : j["next_fires"])
        CHECK_THAT(t.get<std::string>(), Catch::Matches(".*T0[12]:00:00.000Z"));
    CHECK(j["next_tick_at"] == j["next_fires"][0]);

    auto list = s.api.call("GET", kSchedules, "", s.token);
    REQUIRE(list.status == 200);
    REQUIRE(list.json()["schedules"].size() == 1);

    auto upd = s.api.call_json("PUT", kSchedules + "/nightly",
                               {{"cron", "*/10 * * * *"}, {"misfire", "skip"}}, s.token);
    REQUIRE(upd.status == 200);
    CHECK(upd.json()["cron"] == "*/10 * * * *");
    CHECK(upd.json()["misfire"] == "skip");
    CHECK(upd.json()["tz"] == "Europe/Berlin");  // unchanged fields stay

    auto paused = s.api.call("POST", kSchedules + "/nightly/pause", "", s.token);
    REQUIRE(paused.status == 200);
    CHECK(paused.json()["status"] == "paused");
    CHECK(paused.json()["next_tick_at"].is_null());
    CHECK(s.api.call("GET", kSchedules + "/nightly", "", s.token).json()["next_fires"].empty());
    auto resumed = s.api.call("POST", kSchedules + "/nightly/resume", "", s.token);
    REQUIRE(resumed.status == 200);
    CHECK(resumed.json()["status"] == "active");
    CHECK(resumed.json()["next_tick_at"].is_string());

    CHECK(s.api.call("DELETE", kSchedules + "/nightly", "", s.token).status == 204);
    auto gone = s.api.call("GET", kSchedules + "/nightly", "", s.token);
    CHECK(gone.status == 404);
    CHECK(gone.error_code() == "MQ_NOT_FOUND");
    CHECK(s.api.call("DELETE", kSchedules + "/nightly", "", s.token).status == 404);
}

TEST_CASE("api_schedule_refuses_hostile_input_with_clear_errors", "[api][schedule]") {
    Session s;
    auto with = [](json patch) {
        json body = Session::nightly();
        body.merge_patch(patch);
        return body;
    };
    auto bad_cron = s.create(with({{"cron", "0 25 * * *"}}));
    CHECK(bad_cron.status == 400);
    CHECK(bad_cron.error_code() == "MQ_VALIDATION_ERROR");
    CHECK_THAT(bad_cron.json()["error"]["message"].get<std::string>(),
               Catch::Contains("hour field at position 3"));
    CHECK(bad_cron.json()["error"]["details"]["position"] == 3);

    auto tz = s.create(with({{"tz", "Europe/Atlantis"}}));
    CHECK(tz.status == 400);
    CHECK_THAT(tz.json()["error"]["message"].get<std::string>(),
               Catch::Contains("unknown time zone"));
    CHECK(s.create(with({{"tz", "../../../etc/passwd"}})).status == 400);

    for (const std::string bad : {"", "has space", "a:b", "{x}", "-lead"}) {
        INFO(bad);
        CHECK(s.create(with({{"name", bad}})).status == 400);
    }
    auto unknown = s.create(with({{"colour", "blue"}}));
    CHECK(unknown.status == 400);
    CHECK(unknown.json()["error"]["details"]["field"] == "colour");
    auto wrong = s.create(with({{"cron", 5}}));
    CHECK(wrong.status == 400);
    CHECK(wrong.json()["error"]["details"]["field"] == "cron");
    json missing = Session::nightly();
    missing.erase("payload");
    CHECK(s.create(missing).json()["error"]["details"]["field"] == "payload");
    CHECK(s.create(with({{"misfire", "always"}})).status == 400);
    CHECK(s.create(with({{"headers", {{"mq-schedule", "forged"}}}})).status == 400);
    CHECK(s.api.call("POST", kSchedules, "{not json", s.token).status == 400);

    auto big = s.create(with({{"payload", std::string(1048577, 'x')}}));
    CHECK(big.status == 413);
    CHECK(big.error_code() == "MQ_PAYLOAD_TOO_LARGE");

    auto no_queue = s.create(with({{"queue", "missing"}}));
    CHECK(no_queue.status == 404);
    CHECK(no_queue.error_code() == "MQ_QUEUE_NOT_FOUND");

    // Nothing of that was stored; then a duplicate name is a conflict.
    CHECK(s.api.call("GET", kSchedules, "", s.token).json()["schedules"].empty());
    REQUIRE(s.create(Session::nightly()).status == 201);
    CHECK(s.create(Session::nightly()).status == 409);
    auto rename = s.api.call_json("PUT", kSchedules + "/nightly", {{"name", "other"}}, s.token);
    CHECK(rename.status == 400);
    CHECK(s.api.call_json("PUT", kSchedules + "/nightly", json::object(), s.token).status == 400);
    CHECK(
        s.api.call_json("PUT", kSchedules + "/nightly", {{"cron", "99 * * * *"}}, s.token).status ==
        400);
}

TEST_CASE("api_schedule_of_another_tenant_answers_like_a_missing_one", "[api][schedule]") {
    Session a;
    REQUIRE(a.create(Session::nightly()).status == 201);
    TenantScope b;
    auto b_admin = create_token(b.tenant(), "tenant-admin", "owner");
    auto missing = a.api.call("GET", kSchedules + "/never-existed", "", b_admin);
    for (const auto& [method, path] :
         std::vector<std::pair<std::string, std::string>>{{"GET", "/nightly"},
                                                          {"DELETE", "/nightly"},
                                                          {"POST", "/nightly/pause"},
                                                          {"POST", "/nightly/resume"}}) {
        auto r = a.api.call(method, kSchedules + path, "", b_admin);
        INFO(method << " " << path << " -> " << r.body);
        CHECK(r.status == 404);
        CHECK(r.error_code() == missing.error_code());
    }
    auto put = a.api.call_json("PUT", kSchedules + "/nightly", {{"cron", "@hourly"}}, b_admin);
    CHECK(put.status == 404);
    CHECK(a.api.call("GET", kSchedules, "", b_admin).json()["schedules"].empty());
    // B's schedule on a queue name that only A has: the queue is missing for B.
    auto cross = a.api.call_json("POST", kSchedules, Session::nightly(), b_admin);
    CHECK(cross.status == 404);
    CHECK(cross.error_code() == "MQ_QUEUE_NOT_FOUND");
    // A's schedule is untouched.
    auto mine = a.api.call("GET", kSchedules + "/nightly", "", a.token);
    REQUIRE(mine.status == 200);
    CHECK(mine.json()["status"] == "active");
    CHECK(mine.json()["cron"] == "0 3 * * *");
}

TEST_CASE("api_schedule_role_matrix_reads_like_queues_writes_for_admins", "[api][schedule][auth]") {
    Session s;
    REQUIRE(s.create(Session::nightly()).status == 201);
    for (const std::string role : {"admin", "tenant-admin", "producer", "consumer"}) {
        INFO(role);
        auto tok = create_token(s.tenant.tenant(), role, "p-" + role);
        const bool writer = role == "admin" || role == "tenant-admin";
        CHECK(s.api.call("GET", kSchedules, "", tok).status == 200);
        CHECK(s.api.call("GET", kSchedules + "/nightly", "", tok).status == 200);
        json body = Session::nightly();
        body["name"] = "by-" + role;
        auto created = s.create(body, tok);
        CHECK(created.status == (writer ? 201 : 403));
        auto put = s.api.call_json("PUT", kSchedules + "/nightly", {{"key", role}}, tok);
        CHECK(put.status == (writer ? 200 : 403));
        CHECK(s.api.call("POST", kSchedules + "/nightly/pause", "", tok).status ==
              (writer ? 200 : 403));
        CHECK(s.api.call("POST", kSchedules + "/nightly/resume", "", tok).status ==
              (writer ? 200 : 403));
        if (writer) {
            CHECK(s.api.call("DELETE", kSchedules + "/by-" + role, "", tok).status == 204);
        } else {
            auto del = s.api.call("DELETE", kSchedules + "/nightly", "", tok);
            CHECK(del.status == 403);
            CHECK(del.error_code() == "MQ_FORBIDDEN");
        }
    }
    CHECK(s.api.call("GET", kSchedules + "/nightly", "", s.token).status == 200);
}

TEST_CASE("api_schedule_respects_allowed_producers_of_its_queue", "[api][schedule][auth]") {
    Session s;
    REQUIRE(s.api
                .call_json("POST", kBase + "/queues",
                           {{"name", "guarded"}, {"allowed_producers", {"svc-a"}}}, s.token)
                .status == 201);
    json body = Session::nightly();
    body["queue"] = "guarded";
    auto refused = s.create(body);  // "ops" is not in allowed_producers
    CHECK(refused.status == 403);
    CHECK(refused.error_code() == "MQ_FORBIDDEN");
    auto listed = create_token(s.tenant.tenant(), "tenant-admin", "svc-a");
    CHECK(s.create(body, listed).status == 201);
    // Retargeting an existing schedule needs the same right.
    REQUIRE(s.create(Session::nightly()).status == 409);  // "nightly" exists already (svc-a's)
    json other = Session::nightly();
    other["name"] = "free";
    REQUIRE(s.create(other).status == 201);
    CHECK(s.api.call_json("PUT", kSchedules + "/free", {{"queue", "guarded"}}, s.token).status ==
          403);
    CHECK(s.api.call_json("PUT", kSchedules + "/free", {{"queue", "guarded"}}, listed).status ==
          200);
}

TEST_CASE("api_schedule_routes_answer_503_while_postgres_is_down_and_recover", "[api][schedule]") {
    using namespace std::chrono_literals;
    PrivateServices svc;
    const std::map<std::string, std::string> env{{"REDIS_URL", svc.redis_url()},
                                                 {"DATABASE_URL", svc.database_url()}};
    auto tenant = unique_name("schedpg");
    auto token = migrated_tenant_admin_token(env, tenant);
    ApiOptions options;
    options.redis_url = svc.redis_url();
    options.database_url = svc.database_url();
    ApiProcess api(options);
    REQUIRE(api.call_json("POST", kBase + "/queues", {{"name", "jobs"}}, token).status == 201);
    REQUIRE(api.call_json("POST", kSchedules, Session::nightly(), token).status == 201);

    svc.stop_postgres();
    json other = Session::nightly();
    other["name"] = "later";
    auto refused = api.call_json("POST", kSchedules, other, token);
    INFO(refused.body);
    CHECK(refused.status == 503);
    CHECK(refused.error_code() == "MQ_BACKEND_UNAVAILABLE");
    CHECK(refused.body.find("postgresql://") == std::string::npos);
    auto listed = api.call("GET", kSchedules, "", token);
    CHECK(listed.status == 503);
    // Bad input is still 400, before any backend is asked.
    CHECK(api.call_json("POST", kSchedules,
                        {{"name", "x"}, {"queue", "jobs"}, {"cron", "0 0 0 * *"}, {"payload", 1}},
                        token)
              .status == 400);

    svc.start_postgres();
    auto until = std::chrono::steady_clock::now() + 15s;
    HttpResult created;
    while (std::chrono::steady_clock::now() < until) {
        created = api.call_json("POST", kSchedules, other, token);
        if (created.status != 503) break;
        std::this_thread::sleep_for(300ms);
    }
    INFO(created.body << "\n" << api.log());
    CHECK(created.status == 201);
    CHECK(api.call("GET", kSchedules, "", token).json()["schedules"].size() == 2);
}
