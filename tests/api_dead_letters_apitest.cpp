// Dead-letter routes (/api/v1/mq/queues/{name}/dead-letters...): list with filters and a
// cursor, show, replay (ids or filter, dry run, through the publish use case), purge; bad
// input, other tenants, Redis down. Dead letters are made as a worker makes them.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"
#include "mq/consume/consumer.hpp"

using namespace mqtest;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string kQueues = "/api/v1/mq/queues/";

// Publishes `payloads` to `queue` over the API and dead-letters all of them as subscription
// "billing" would after its last attempt, in the Redis at `redis_url`.
void dead_letters(ApiSession& s, const std::string& queue, const std::vector<json>& payloads,
                  const std::string& redis_url = "", const std::string& reason = "max_attempts") {
    for (const auto& p : payloads) {
        auto r = s.api.call_json("POST", "/api/v1/mq/publish", {{"queue", queue}, {"payload", p}},
                                 s.token);
        INFO(r.body);
        REQUIRE(r.status == 201);
    }
    mq::redis::Connection redis(
        mq::redis::parse_url(redis_url.empty() ? services().redis_url : redis_url));
    mq::KeyLayout keys(s.api.key_prefix());
    mq::Queue q = s.tenant.catalog().get_queue(s.tenant.tenant(), queue);
    mq::Subscription sub;
    sub.name = "billing";
    sub.start_from = "earliest";
    mq::ConsumerGroups groups(redis, keys);
    groups.ensure(q, sub);
    for (int p = 0; p < q.partition_count; ++p)
        for (auto& f : groups.read_new(q, sub, "w1", p, 1000, 0ms))
            REQUIRE(groups.dead_letter(q, "billing", p, f.stream_id, reason, "HTTP 500", 5));
}

json list(ApiSession& s, const std::string& queue, const std::string& query = "") {
    auto r = s.api.call("GET", kQueues + queue + "/dead-letters" + query, "", s.token);
    INFO(r.body);
    REQUIRE(r.status == 200);
    return r.json();
}

HttpResult post(ApiSession& s, const std::string& queue, const std::string& what,
                const json& body) {
    return s.api.call_json("POST", kQueues + queue + "/dead-letters/" + what, body, s.token);
}

void create(ApiSession& s, const json& body) {
    auto r = s.api.call_json("POST", "/api/v1/mq/queues", body, s.token);
    INFO(r.body);
    REQUIRE(r.status == 201);
}

int shell(const std::string& command) {
    int rc = std::system(command.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace

TEST_CASE("api_dead_letters_list_pages_with_a_cursor_and_filters", "[api][dlq]") {
    ApiSession s;
    create(s, {{"name", "orders"}, {"partitions", 2}});
    dead_letters(s, "orders", {1, 2, 3, 4, 5});
    // Newest first orders by stream id (milliseconds), so "6" must not share the last
    // millisecond of "5" on the other partition's dead-letter stream.
    std::this_thread::sleep_for(5ms);
    dead_letters(s, "orders", {6}, "", "expired");

    std::set<std::string> seen;
    std::string cursor;
    for (int guard = 0; guard < 10; ++guard) {
        auto page =
            list(s, "orders",
                 "?limit=2&reason=max_attempts" + (cursor.empty() ? "" : "&cursor=" + cursor));
        CHECK(page["dead_letters"].size() <= 2);
        for (const auto& d : page["dead_letters"]) {
            CHECK(d["reason"] == "max_attempts");
            CHECK(d["subscription"] == "billing");
            seen.insert(d["id"].get<std::string>());
        }
        if (page["next_cursor"].is_null()) break;
        cursor = page["next_cursor"];
    }
    CHECK(seen.size() == 5);
    CHECK(list(s, "orders")["dead_letters"].size() == 6);
    CHECK(list(s, "orders", "?reason=expired")["dead_letters"].size() == 1);
    CHECK(list(s, "orders", "?subscription=other")["dead_letters"].empty());
    CHECK(list(s, "orders", "?before=2000-01-01T00:00:00Z")["dead_letters"].empty());
    CHECK(list(s, "orders", "?since=2000-01-01T00:00:00Z")["dead_letters"].size() == 6);

    const std::string id = list(s, "orders")["dead_letters"][0]["id"];
    auto one = s.api.call("GET", kQueues + "orders/dead-letters/" + id, "", s.token);
    REQUIRE(one.status == 200);
    CHECK(one.json()["id"] == id);
    CHECK(one.json()["payload"] == "6");

    for (const std::string bad :
         {"?limit=0", "?limit=1001", "?limit=ten", "?since=yesterday", "?before=1h",
          "?cursor=nonsense", "?cursor=7:1-0", "?subscription=bad%20name", "?colour=red"}) {
        auto r = s.api.call("GET", kQueues + "orders/dead-letters" + bad, "", s.token);
        INFO(bad << " -> " << r.body);
        CHECK(r.status == 400);
        CHECK(r.error_code() == "MQ_VALIDATION_ERROR");
    }
    auto missing = s.api.call("GET", kQueues + "orders/dead-letters/0:1-0", "", s.token);
    CHECK(missing.status == 404);
    CHECK(missing.error_code() == "MQ_NOT_FOUND");
    CHECK(s.api.call("GET", kQueues + "orders/dead-letters/not-an-id", "", s.token).status == 400);
    CHECK(s.api.call("GET", kQueues + "nope/dead-letters", "", s.token).error_code() ==
          "MQ_QUEUE_NOT_FOUND");
}

TEST_CASE("api_dead_letters_replay_dry_run_ids_filter_and_the_current_schema", "[api][dlq]") {
    ApiSession s;
    create(s, {{"name", "orders"}});
    create(s, {{"name", "audit"}});
    dead_letters(s, "orders", {json{{"id", 1}}, json{{"id", 2}}, json{{"name", "x"}}});
    const auto ids = list(s, "orders")["dead_letters"];

    auto dry = post(s, "orders", "replay", {{"all", true}, {"dry_run", true}});
    REQUIRE(dry.status == 200);
    CHECK(dry.json()["would_replay"] == 3);
    CHECK(dry.json()["replayed"] == 0);
    CHECK(list(s, "orders")["dead_letters"].size() == 3);

    // One by id (the oldest, {"id":1}: newest come first), to another queue of the tenant.
    REQUIRE(ids.size() == 3);
    REQUIRE(ids[2]["payload"] == R"({"id":1})");
    auto one = post(s, "orders", "replay", {{"ids", {ids[2]["id"]}}, {"to", "audit"}});
    REQUIRE(one.status == 200);
    CHECK(one.json()["replayed"] == 1);
    CHECK(one.json()["results"][0]["status"] == "replayed");
    CHECK(list(s, "orders")["dead_letters"].size() == 2);

    // The queue's schema changes after the messages died: replay checks the current one.
    auto put = s.api.call_json("PUT", kQueues + "orders",
                               {{"schema", {{"type", "object"}, {"required", {"id"}}}}}, s.token);
    REQUIRE(put.status == 200);
    auto replay = post(s, "orders", "replay", {{"all", true}});
    REQUIRE(replay.status == 200);
    auto j = replay.json();
    CHECK(j["replayed"] == 1);
    CHECK(j["failed"] == 1);
    bool schema_refusal = false;
    for (const auto& r : j["results"])
        if (r["status"] == "failed")
            schema_refusal = r["error"]["code"] == "MQ_SCHEMA_VALIDATION_ERROR";
    CHECK(schema_refusal);
    auto left = list(s, "orders")["dead_letters"];
    REQUIRE(left.size() == 1);
    CHECK(left[0]["payload"] == R"({"name":"x"})");

    auto unknown = post(s, "orders", "replay", {{"ids", {"0:1-0"}}});
    REQUIRE(unknown.status == 200);
    CHECK(unknown.json()["not_found"] == 1);

    for (const json& bad :
         {json::object(), json{{"ids", {"x"}}}, json{{"ids", json::array()}},
          json{{"ids", {"0:1-0"}}, {"all", true}}, json{{"all", "yes"}},
          json{{"all", true}, {"limit", 0}}, json{{"all", true}, {"since", "soon"}},
          json{{"all", true}, {"colour", 1}}}) {
        auto r = post(s, "orders", "replay", bad);
        INFO(bad.dump() << " -> " << r.body);
        CHECK(r.status == 400);
    }
    CHECK(post(s, "orders", "replay", {{"all", true}, {"to", "nowhere"}}).error_code() ==
          "MQ_QUEUE_NOT_FOUND");

    auto none = post(s, "orders", "purge", {{"before", "2000-01-01T00:00:00Z"}});
    REQUIRE(none.status == 200);
    CHECK(none.json()["removed"] == 0);
    CHECK(post(s, "orders", "purge", {{"before", "later"}}).status == 400);
    auto all = post(s, "orders", "purge", json::object());
    REQUIRE(all.status == 200);
    CHECK(all.json()["removed"] == 1);
    CHECK(list(s, "orders")["dead_letters"].empty());
}

TEST_CASE("api_dead_letters_replay_to_another_tenants_queue_answers_like_a_missing_one",
          "[api][dlq][auth]") {
    ApiSession s;
    TenantScope other;
    auto other_admin = create_token(other.tenant(), "tenant-admin", "them");
    REQUIRE(
        s.api.call_json("POST", "/api/v1/mq/queues", {{"name", "theirs"}}, other_admin).status ==
        201);
    create(s, {{"name", "orders"}});
    dead_letters(s, "orders", {1});
    auto foreign = post(s, "orders", "replay", {{"all", true}, {"to", "theirs"}});
    auto missing = post(s, "orders", "replay", {{"all", true}, {"to", "nowhere-at-all"}});
    CHECK(foreign.status == 404);
    CHECK(foreign.status == missing.status);
    CHECK(foreign.error_code() == missing.error_code());
    CHECK(foreign.body.find(other.tenant()) == std::string::npos);
    CHECK(list(s, "orders")["dead_letters"].size() == 1);
    // Their admin sees none of ours.
    CHECK(s.api.call("GET", kQueues + "orders/dead-letters", "", other_admin).status == 404);
}

TEST_CASE("api_dead_letters_replay_with_redis_down_answers_503_and_removes_nothing", "[api][dlq]") {
    // A redis-server of this test alone, with an AOF so its dead letters survive the stop.
    const int port = dead_port();
    std::string dir =
        (std::filesystem::temp_directory_path() / unique_name("mq-dlq-redis")).string();
    std::filesystem::create_directories(dir);
    const std::string url = "redis://127.0.0.1:" + std::to_string(port) + "/0";
    auto answers = [&] {
        return shell("redis-cli -p " + std::to_string(port) + " ping 2>/dev/null | grep -q PONG") ==
               0;
    };
    auto start = [&] {
        REQUIRE(
            shell("redis-server --bind 127.0.0.1 --port " + std::to_string(port) +
                  " --save '' --appendonly yes --appendfsync always --maxmemory-policy noeviction"
                  " --daemonize yes --dir " +
                  dir + " --logfile " + dir + "/redis.log") == 0);
        for (int i = 0; i < 200 && !answers(); ++i) std::this_thread::sleep_for(50ms);
        REQUIRE(answers());
    };
    auto stop = [&] {
        shell("redis-cli -p " + std::to_string(port) + " shutdown >/dev/null 2>&1");
        for (int i = 0; i < 200 && answers(); ++i) std::this_thread::sleep_for(50ms);
    };
    struct Cleanup {
        std::function<void()> f;
        ~Cleanup() { f(); }
    } cleanup{[&] {
        stop();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }};
    start();
    ApiOptions options;
    options.redis_url = url;
    ApiSession s(options);
    create(s, {{"name", "orders"}});
    dead_letters(s, "orders", {1, 2}, url);
    const std::string id = list(s, "orders")["dead_letters"][0]["id"];

    stop();
    for (const json& body : {json{{"ids", {id}}}, json{{"all", true}}}) {
        auto down = post(s, "orders", "replay", body);
        INFO(down.body);
        CHECK(down.status == 503);
        CHECK(down.error_code() == "MQ_BACKEND_UNAVAILABLE");
    }
    CHECK(s.api.call("GET", kQueues + "orders/dead-letters", "", s.token).status == 503);
    start();
    json after;
    for (int i = 0; i < 50; ++i) {
        auto r = s.api.call("GET", kQueues + "orders/dead-letters", "", s.token);
        if (r.status == 200) {
            after = r.json();
            break;
        }
        std::this_thread::sleep_for(100ms);
    }
    REQUIRE(after.is_object());
    CHECK(after["dead_letters"].size() == 2);
}

TEST_CASE("api_internal_routes_admit_through_the_publish_use_case_schema_and_size",
          "[api][publish]") {
    const std::string service = "svc-dlq-test-secret-0123456789";
    ApiOptions options;
    options.env["INTERNAL_SERVICE_TOKEN"] = service;
    options.env["MAX_MESSAGE_SIZE"] = "1024";
    ApiSession s(options);
    auto internal = [&](const json& body) {
        return s.api.call("POST", "/internal/mq/audit-logs", body.dump(), "",
                          {{"X-Service-Token", service}});
    };
    REQUIRE(internal({{"tenant", s.tenant.tenant()}, {"payload", {{"action", "login"}}}}).status ==
            201);
    auto put =
        s.api.call_json("PUT", kQueues + "audit-logs",
                        {{"schema", {{"type", "object"}, {"required", {"action"}}}}}, s.token);
    REQUIRE(put.status == 200);
    auto bad = internal({{"tenant", s.tenant.tenant()}, {"payload", {{"who", "me"}}}});
    INFO(bad.body);
    CHECK(bad.status == 422);
    CHECK(bad.error_code() == "MQ_SCHEMA_VALIDATION_ERROR");
    auto big = internal(
        {{"tenant", s.tenant.tenant()}, {"payload", {{"action", std::string(2000, 'x')}}}});
    CHECK(big.status == 413);
    CHECK(internal({{"tenant", s.tenant.tenant()}, {"payload", {{"action", "logout"}}}}).status ==
          201);
}
