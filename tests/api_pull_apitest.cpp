// Pull delivery over HTTP: pull/ack once each, long-poll, lease expiry and redelivery,
// nack with delay, extend, dead-lettering past max_attempts, and receipts that must be
// refused (tampered, another subscription's, lost leases).
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"

using namespace mqtest;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kSubs = "/api/v1/mq/subscriptions";

long long ms_since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

struct Session : ApiSession {
    std::string consumer = create_token(tenant.tenant(), "consumer", "reader");

    explicit Session(const json& queue = {{"name", "orders"}}) {
        auto r = api.call_json("POST", "/api/v1/mq/queues", queue, token);
        INFO(r.body);
        REQUIRE(r.status == 201);
    }
    std::string subscription(const json& extra = json::object(),
                             const std::string& name = "billing") const {
        json body = {{"queue", "orders"}, {"name", name}};
        body.update(extra);
        auto r = api.call_json("POST", kSubs, body, token);
        INFO(r.body);
        REQUIRE(r.status == 201);
        return r.json()["id"];
    }
    std::string publish(const json& payload) const {
        auto r = api.call_json("POST", "/api/v1/mq/publish",
                               {{"queue", "orders"}, {"payload", payload}}, token);
        INFO(r.body);
        REQUIRE(r.status == 201);
        return r.json()["id"];
    }
    HttpResult call(const std::string& sub, const std::string& op, const json& body) const {
        return api.call_json("POST", kSubs + "/" + sub + "/" + op, body, consumer);
    }
    json pull(const std::string& sub, int max = 10, int wait_ms = 0) const {
        auto r = call(sub, "pull", {{"max_messages", max}, {"wait_ms", wait_ms}});
        INFO(r.body);
        REQUIRE(r.status == 200);
        return r.json()["messages"];
    }
    /// "acked" or "lease_lost".
    std::string ack(const std::string& sub, const std::string& receipt) const {
        auto r = call(sub, "ack", {{"receipt", receipt}});
        INFO(r.body);
        REQUIRE(r.status == 200);
        return r.json()["results"][0]["status"];
    }
};

}  // namespace

TEST_CASE("api_pull_returns_each_message_once_and_ack_settles_it", "[api][pull]") {
    Session s({{"name", "orders"}, {"partitions", 2}});
    auto sub = s.subscription();
    std::set<std::string> published;
    for (int i = 0; i < 5; ++i) published.insert(s.publish({{"n", i}}));

    auto first = s.pull(sub, 3);
    REQUIRE(first.size() == 3);
    auto rest = s.pull(sub, 10);
    REQUIRE(rest.size() == 2);
    CHECK(s.pull(sub, 10).empty());  // all leased

    std::set<std::string> seen;
    std::vector<std::string> receipts;
    for (const auto& batch : {first, rest})
        for (const auto& m : batch) {
            seen.insert(m["id"].get<std::string>());
            receipts.push_back(m["receipt"]);
            CHECK(m["delivery_count"] == 1);
            CHECK(m["payload"].is_object());
            CHECK(m["content_type"] == "application/json");
            CHECK_FALSE(m["receipt"].get<std::string>().empty());
            CHECK(m["lease_expires_at"].is_string());
        }
    CHECK(seen == published);
    CHECK(std::set<std::string>(receipts.begin(), receipts.end()).size() == 5);

    CHECK(s.ack(sub, receipts[0]) == "acked");
    CHECK(s.ack(sub, receipts[0]) == "lease_lost");
    auto many =
        s.call(sub, "ack",
               {{"receipts", {receipts[1], receipts[2], receipts[3], receipts[4], receipts[0]}}});
    REQUIRE(many.status == 200);
    auto results = many.json()["results"];
    REQUIRE(results.size() == 5);
    for (int i = 0; i < 4; ++i) CHECK(results[i]["status"] == "acked");
    CHECK(results[4]["status"] == "lease_lost");
    CHECK(results[1]["receipt"] == receipts[2]);

    // Nothing is left pending for the subscription.
    auto q = s.api.call("GET", "/api/v1/mq/queues/orders", "", s.token);
    REQUIRE(q.status == 200);
    CHECK(q.json()["stats"]["pending"] == 0);
    CHECK(s.pull(sub, 10).empty());
}

TEST_CASE("api_pull_long_poll_answers_when_a_message_arrives", "[api][pull]") {
    Session s;
    auto sub = s.subscription();
    std::string id;
    std::thread later([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        auto r = s.api.call_json("POST", "/api/v1/mq/publish",
                                 {{"queue", "orders"}, {"payload", "late"}}, s.token);
        if (r.status == 201) id = r.json()["id"];
    });
    auto start = Clock::now();
    auto r = s.call(sub, "pull", {{"max_messages", 5}, {"wait_ms", 2000}});
    auto took = ms_since(start);
    later.join();
    REQUIRE(r.status == 200);
    auto messages = r.json()["messages"];
    REQUIRE(messages.size() == 1);
    CHECK(messages[0]["id"] == id);
    CHECK(messages[0]["payload"] == "late");
    CHECK(took >= 250);
    CHECK(took < 1500);
}

TEST_CASE("api_pull_wait_with_nothing_answers_empty_after_wait_ms", "[api][pull]") {
    Session s;
    auto sub = s.subscription();
    auto start = Clock::now();
    auto r = s.call(sub, "pull", {{"wait_ms", 600}});
    auto took = ms_since(start);
    REQUIRE(r.status == 200);
    CHECK(r.json()["messages"] == json::array());
    CHECK(took >= 550);
    CHECK(took < 2000);
    // wait_ms 0 answers at once.
    start = Clock::now();
    CHECK(s.pull(sub, 10, 0).empty());
    CHECK(ms_since(start) < 500);
    // Out of range is refused.
    CHECK(s.call(sub, "pull", {{"wait_ms", 30001}}).status == 400);
    CHECK(s.call(sub, "pull", {{"max_messages", 0}}).status == 400);
    CHECK(s.call(sub, "pull", {{"max_messages", 101}}).status == 400);
}

TEST_CASE("api_pull_expired_lease_redelivers_and_the_old_receipt_is_lost", "[api][pull]") {
    Session s;
    auto sub = s.subscription({{"visibility_timeout_ms", 1000}});  // the shortest accepted lease
    auto id = s.publish("work");
    auto first = s.pull(sub);
    REQUIRE(first.size() == 1);
    std::string old_receipt = first[0]["receipt"];
    CHECK(s.pull(sub).empty());  // still leased
    std::this_thread::sleep_for(std::chrono::milliseconds(1150));
    auto again = s.pull(sub);
    REQUIRE(again.size() == 1);
    CHECK(again[0]["id"] == id);
    CHECK(again[0]["delivery_count"] == 2);
    CHECK(again[0]["receipt"] != old_receipt);

    CHECK(s.ack(sub, old_receipt) == "lease_lost");
    auto nack = s.call(sub, "nack", {{"receipt", old_receipt}});
    CHECK(nack.status == 409);
    CHECK(nack.error_code() == "MQ_CONFLICT");
    auto extend = s.call(sub, "extend", {{"receipt", old_receipt}});
    CHECK(extend.status == 409);
    CHECK(extend.error_code() == "MQ_CONFLICT");
    CHECK(s.ack(sub, again[0]["receipt"]) == "acked");
    // A settled receipt cannot be nacked either.
    CHECK(s.call(sub, "nack", {{"receipt", again[0]["receipt"]}}).status == 409);
}

TEST_CASE("api_pull_nack_with_delay_redelivers_after_the_delay", "[api][pull]") {
    Session s;
    auto sub = s.subscription();
    auto id = s.publish("retry me");
    auto first = s.pull(sub);
    REQUIRE(first.size() == 1);
    auto start = Clock::now();
    auto nack = s.call(sub, "nack", {{"receipt", first[0]["receipt"]}, {"delay_ms", 400}});
    REQUIRE(nack.status == 200);
    CHECK(nack.json()["status"] == "nacked");
    CHECK(s.pull(sub).empty());
    auto r = s.call(sub, "pull", {{"wait_ms", 3000}});
    auto took = ms_since(start);
    REQUIRE(r.status == 200);
    auto again = r.json()["messages"];
    REQUIRE(again.size() == 1);
    CHECK(again[0]["id"] == id);
    CHECK(again[0]["delivery_count"] == 2);
    CHECK(took >= 380);
    CHECK(took < 2000);
    // The nacked receipt is spent.
    CHECK(s.ack(sub, first[0]["receipt"]) == "lease_lost");
    CHECK(s.ack(sub, again[0]["receipt"]) == "acked");
    // A negative or absurd delay is refused.
    CHECK(s.call(sub, "nack", {{"receipt", again[0]["receipt"]}, {"delay_ms", -1}}).status == 400);
}

TEST_CASE("api_pull_extend_keeps_a_message_past_its_first_lease", "[api][pull]") {
    Session s;
    auto sub = s.subscription({{"visibility_timeout_ms", 1000}});
    s.publish("slow");
    auto first = s.pull(sub);
    REQUIRE(first.size() == 1);
    std::string receipt = first[0]["receipt"];
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    auto ext = s.call(sub, "extend", {{"receipt", receipt}});
    REQUIRE(ext.status == 200);
    CHECK(ext.json()["lease_expires_at"].is_string());
    CHECK(ext.json()["lease_expires_at"] >= first[0]["lease_expires_at"]);
    std::this_thread::sleep_for(std::chrono::milliseconds(600));  // 1.2 s after the pull
    CHECK(s.pull(sub).empty());
    CHECK(s.ack(sub, receipt) == "acked");
}

TEST_CASE("api_pull_dead_letters_after_max_attempts", "[api][pull]") {
    Session s;
    auto sub = s.subscription({{"max_attempts", 2}});
    auto id = s.publish("poison");
    for (int attempt = 1; attempt <= 2; ++attempt) {
        auto got = s.pull(sub);
        REQUIRE(got.size() == 1);
        CHECK(got[0]["delivery_count"] == attempt);
        REQUIRE(s.call(sub, "nack", {{"receipt", got[0]["receipt"]}}).status == 200);
    }
    CHECK(s.pull(sub).empty());  // the third attempt is not delivered: dead-lettered

    auto run = mqctl({"--tenant", s.tenant.tenant(), "--key-prefix", s.api.key_prefix(), "-o",
                      "json", "dlq", "list", "orders"});
    INFO(run.out << run.err);
    REQUIRE(run.status == 0);
    auto list = json::parse(run.out);
    REQUIRE(list.size() == 1);
    CHECK(list[0]["subscription"] == "billing");
    CHECK(list[0]["reason"] == "max_attempts");
    CHECK(list[0].dump().find(id) != std::string::npos);
    auto q = s.api.call("GET", "/api/v1/mq/queues/orders", "", s.token);
    REQUIRE(q.status == 200);
    CHECK(q.json()["stats"]["dead_letters"] == 1);
    CHECK(q.json()["stats"]["pending"] == 0);
}

TEST_CASE("api_pull_refuses_foreign_and_tampered_receipts_and_webhook_subscriptions",
          "[api][pull]") {
    Session s;
    auto sub = s.subscription();
    auto other = s.subscription(json::object(), "other");
    s.publish("x");
    auto got = s.pull(sub);
    REQUIRE(got.size() == 1);
    std::string receipt = got[0]["receipt"];

    std::string tampered = receipt;
    auto& c = tampered[tampered.size() / 2];
    c = c == 'A' ? 'B' : 'A';
    for (const std::string op : {"ack", "nack", "extend"}) {
        INFO(op);
        auto t = s.call(sub, op, {{"receipt", tampered}});
        CHECK(t.status == 400);
        CHECK(t.error_code() == "MQ_VALIDATION_ERROR");
        auto foreign = s.call(other, op, {{"receipt", receipt}});
        CHECK(foreign.status == 400);
        CHECK(foreign.error_code() == "MQ_VALIDATION_ERROR");
        CHECK(s.call(sub, op, {{"receipt", 42}}).status == 400);
        CHECK(s.call(sub, op, {{"receipt", ""}}).status == 400);
    }
    CHECK(s.call(sub, "ack", json::object()).status == 400);
    // None of that touched the delivery: the real receipt still acks.
    CHECK(s.ack(sub, receipt) == "acked");
    // "other" still has its own copy of the message.
    CHECK(s.pull(other).size() == 1);

    auto hook = s.subscription(
        {{"type", "webhook"}, {"handler", {{"url", "http://127.0.0.1:9/hook"}}}}, "hook");
    auto r = s.call(hook, "pull", json::object());
    CHECK(r.status == 400);
    CHECK(r.error_code() == "MQ_VALIDATION_ERROR");
}
