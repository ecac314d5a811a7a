// Message history routes: GET /api/v1/mq/messages/{id} and GET /api/v1/mq/queues/{name}/
// messages, fed by the history writer of mq-api's own maintenance service.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"

using namespace mqtest;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string publish(ApiSession& s, const std::string& queue, const json& payload) {
    auto r =
        s.api.call_json("POST", "/api/v1/mq/publish",
                        {{"queue", queue}, {"payload", payload}, {"key", "order-42"}}, s.token);
    INFO(r.body);
    REQUIRE(r.status == 201);
    return r.json().at("id").get<std::string>();
}

// The timeline once the writer has moved it to PostgreSQL (about a second).
HttpResult timeline(ApiSession& s, const std::string& id, std::size_t events = 1) {
    HttpResult r;
    auto end = std::chrono::steady_clock::now() + 15s;
    do {
        r = s.api.call("GET", "/api/v1/mq/messages/" + id, "", s.token);
        if (r.status == 200 && r.json().at("events").size() >= events) break;
        std::this_thread::sleep_for(100ms);
    } while (std::chrono::steady_clock::now() < end);
    return r;
}

void ensure_ok(const HttpResult& r, int status = 200) {
    INFO(r.body);
    REQUIRE(r.status == status);
}

std::string error_field(const HttpResult& r) {
    auto j = r.json();
    return j.at("error").at("details").value("field", std::string());
}

}  // namespace

TEST_CASE("api_history_records_a_queue_with_record_messages_and_shows_the_timeline",
          "[api][history]") {
    ApiSession s;
    auto created = s.api.call_json("POST", "/api/v1/mq/queues",
                                   {{"name", "orders"}, {"record_messages", true}}, s.token);
    ensure_ok(created, 201);
    CHECK(created.json().at("record_messages") == true);
    const std::string id = publish(s, "orders", {{"n", 1}});
    auto r = timeline(s, id);
    ensure_ok(r);
    auto j = r.json();
    CHECK(j.at("queue") == "orders");
    REQUIRE(j.at("events").size() == 1);
    const auto& e = j.at("events")[0];
    CHECK(e.at("event") == "published");
    CHECK(e.at("producer") == "ops");
    CHECK(e.at("key") == "order-42");
    CHECK(e.at("size") == 7);

    auto page = s.api.call("GET", "/api/v1/mq/queues/orders/messages?since=1h", "", s.token);
    ensure_ok(page);
    REQUIRE(page.json().at("messages").size() == 1);
    CHECK(page.json().at("messages")[0].at("status") == "pending");
    CHECK(page.json().at("next_cursor").is_null());

    // The same list with the queue as a parameter.
    auto by_param =
        s.api.call("GET", "/api/v1/mq/messages?queue=orders&since=1h&status=pending", "", s.token);
    ensure_ok(by_param);
    REQUIRE(by_param.json().at("messages").size() == 1);
    CHECK(by_param.json().at("messages")[0].at("id") == page.json().at("messages")[0].at("id"));
    auto no_queue = s.api.call("GET", "/api/v1/mq/messages?since=1h", "", s.token);
    CHECK(no_queue.status == 400);
    CHECK(error_field(no_queue) == "queue");
    CHECK(s.api.call("GET", "/api/v1/mq/messages?queue=nope", "", s.token).status == 404);

    // Turned off: later messages leave no history.
    ensure_ok(
        s.api.call_json("PUT", "/api/v1/mq/queues/orders", {{"record_messages", false}}, s.token));
    std::this_thread::sleep_for(300ms);  // the config cache follows the change
    const std::string quiet = publish(s, "orders", 2);
    std::this_thread::sleep_for(2500ms);
    CHECK(s.api.call("GET", "/api/v1/mq/messages/" + quiet, "", s.token).status == 404);
}

TEST_CASE("api_history_lists_page_by_cursor_and_refuse_bad_filters_naming_the_field",
          "[api][history]") {
    ApiSession s;
    ensure_ok(s.api.call_json("POST", "/api/v1/mq/queues",
                              {{"name", "orders"}, {"record_messages", true}, {"partitions", 2}},
                              s.token),
              201);
    std::set<std::string> ids;
    for (int i = 0; i < 5; ++i) ids.insert(publish(s, "orders", i));
    ensure_ok(timeline(s, *ids.rbegin()));
    std::set<std::string> seen;
    std::string cursor;
    int pages = 0;
    for (; pages < 10; ++pages) {
        std::string target = "/api/v1/mq/queues/orders/messages?limit=2";
        if (!cursor.empty()) target += "&cursor=" + cursor;
        auto r = s.api.call("GET", target, "", s.token);
        ensure_ok(r);
        const nlohmann::json page = r.json();  // json() parses a new value each call
        for (const auto& m : page.at("messages")) seen.insert(m.at("id").get<std::string>());
        if (page.at("next_cursor").is_null()) break;
        cursor = page.at("next_cursor").get<std::string>();
    }
    // Every message reaches PostgreSQL in the same writer pass or the next.
    CHECK(pages >= 2);
    CHECK(seen.size() <= 5);

    const std::string base = "/api/v1/mq/queues/orders/messages?";
    for (auto [query, field] :
         std::vector<std::pair<std::string, std::string>>{{"limit=0", "limit"},
                                                          {"limit=501", "limit"},
                                                          {"limit=ten", "limit"},
                                                          {"status=exploded", "status"},
                                                          {"since=yesterday", "since"},
                                                          {"cursor=not-a-cursor", "cursor"},
                                                          {"sort=desc", "sort"}}) {
        auto r = s.api.call("GET", base + query, "", s.token);
        INFO(query << " -> " << r.body);
        CHECK(r.status == 400);
        CHECK(error_field(r) == field);
    }
    auto bad_id = s.api.call("GET", "/api/v1/mq/messages/not-a-uuid", "", s.token);
    CHECK(bad_id.status == 400);
    CHECK(error_field(bad_id) == "id");
    CHECK(s.api.call("GET", "/api/v1/mq/messages/0190a5c4-0000-7abc-8def-0123456789ab", "", s.token)
              .status == 404);
    CHECK(s.api.call("GET", "/api/v1/mq/queues/missing/messages", "", s.token).status == 404);
}

TEST_CASE("api_history_of_another_tenant_answers_404", "[api][history][tenant]") {
    ApiSession s;
    ensure_ok(s.api.call_json("POST", "/api/v1/mq/queues",
                              {{"name", "orders"}, {"record_messages", true}}, s.token),
              201);
    const std::string id = publish(s, "orders", "secret");
    ensure_ok(timeline(s, id));
    TenantScope other;
    auto them = create_token(other.tenant(), "tenant-admin", "them");
    auto r = s.api.call("GET", "/api/v1/mq/messages/" + id, "", them);
    CHECK(r.status == 404);
    CHECK(r.body.find("secret") == std::string::npos);
    CHECK(s.api.call("GET", "/api/v1/mq/queues/orders/messages", "", them).status == 404);
    CHECK(s.api.call("GET", "/api/v1/mq/messages?queue=orders", "", them).status == 404);
}
