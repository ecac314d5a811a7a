// Publish endpoints over HTTP: single, keyed, headers, idempotency (field and header),
// delayed, scheduled, batch, topic publish, back-pressure, tenant quota, JSON Schema
// checks and encryption at rest (the raw stream holds no plaintext; pull opens it).
#include <catch2/catch.hpp>
#include <random>
#include <set>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"
#include "mq/core/time.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

const std::string kQueues = "/api/v1/mq/queues";
const std::string kPublish = "/api/v1/mq/publish";

struct Session : ApiSession {
    using ApiSession::ApiSession;

    void create(const json& body) const {
        auto r = api.call_json("POST", kQueues, body, token);
        INFO(r.body);
        REQUIRE(r.status == 201);
    }
    HttpResult publish(const json& body, const std::string& path = kPublish,
                       std::map<std::string, std::string> headers = {}) const {
        return api.call_json("POST", path, body, token, std::move(headers));
    }
    json stats(const std::string& queue) const {
        auto r = api.call("GET", kQueues + "/" + queue, "", token);
        REQUIRE(r.status == 200);
        return r.json()["stats"];
    }
};

std::string base64(const std::string& in) {
    static const char* kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                     (static_cast<unsigned char>(in[i + 1]) << 8) |
                     static_cast<unsigned char>(in[i + 2]);
        for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
    }
    if (i + 1 == in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                     (static_cast<unsigned char>(in[i + 1]) << 8);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::string keyring_file() {
    std::random_device rd;
    std::string key;
    for (int i = 0; i < 32; ++i) key += static_cast<char>(rd() & 0xff);
    json doc = {{"current", "k1"}, {"keys", {{{"id", "k1"}, {"key", base64(key)}}}}};
    return temp_file(doc.dump());
}

/// Every field value of every entry in the queue's partition streams, with its name.
std::vector<std::map<std::string, std::string>> raw_entries(const std::string& prefix,
                                                            const std::string& tenant,
                                                            const std::string& queue,
                                                            int partitions) {
    mq::redis::Connection redis(mq::redis::parse_url(services().redis_url));
    std::vector<std::map<std::string, std::string>> out;
    for (int p = 0; p < partitions; ++p) {
        auto reply =
            redis.command({"XRANGE", mq::KeyLayout(prefix).stream(tenant, queue, p), "-", "+"});
        for (const auto& entry : reply.elements) {
            std::map<std::string, std::string> fields;
            const auto& kv = entry.elements.at(1).elements;
            for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
                fields[kv[i].as_string()] = kv[i + 1].as_string();
            out.push_back(std::move(fields));
        }
    }
    return out;
}

}  // namespace

TEST_CASE("api_publish_single_answers_201_with_id_and_partition", "[api]") {
    Session s;
    s.create({{"name", "events"}, {"partitions", 4}});
    auto r = s.publish(
        {{"queue", "events"}, {"payload", {{"order", 7}}}, {"headers", {{"x-source", "test"}}}});
    REQUIRE(r.status == 201);
    auto j = r.json();
    CHECK(j["id"].get<std::string>().size() == 36);
    CHECK(j["queue"] == "events");
    CHECK(j["partition"].get<int>() >= 0);
    CHECK(j["partition"].get<int>() < 4);
    CHECK(j["duplicate"] == false);
    CHECK(j["delayed"] == false);
    CHECK(j["deliver_at"].is_null());
    CHECK(s.stats("events")["messages"] == 1);

    // The headers reach the stream entry.
    auto entries = raw_entries(s.api.key_prefix(), s.tenant.tenant(), "events", 4);
    REQUIRE(entries.size() == 1);
    bool found = false;
    for (const auto& [name, value] : entries[0])
        if (value.find("x-source") != std::string::npos && value.find("test") != std::string::npos)
            found = true;
    CHECK(found);

    auto missing_queue = s.publish({{"payload", "x"}});
    CHECK(missing_queue.status == 400);
    CHECK(missing_queue.json()["error"]["details"]["field"] == "queue");
}

TEST_CASE("api_publish_same_key_lands_on_same_partition", "[api]") {
    Session s;
    s.create({{"name", "keyed"}, {"partitions", 8}});
    std::set<int> user1, all;
    for (int i = 0; i < 6; ++i) {
        auto r = s.publish({{"queue", "keyed"}, {"payload", i}, {"key", "user-1"}});
        REQUIRE(r.status == 201);
        user1.insert(r.json()["partition"].get<int>());
    }
    CHECK(user1.size() == 1);
    for (int i = 0; i < 16; ++i) {
        auto r = s.publish(
            {{"queue", "keyed"}, {"payload", i}, {"key", "user-" + std::to_string(100 + i)}});
        REQUIRE(r.status == 201);
        all.insert(r.json()["partition"].get<int>());
    }
    CHECK(all.size() > 1);  // 16 keys on one of 8 partitions would be a broken hash
}

TEST_CASE("api_publish_idempotency_key_field_and_header_store_once", "[api]") {
    Session s;
    s.create({{"name", "idem"}});
    auto first = s.publish({{"queue", "idem"}, {"payload", "a"}, {"idempotency_key", "order-1"}});
    REQUIRE(first.status == 201);
    auto second = s.publish({{"queue", "idem"}, {"payload", "a"}, {"idempotency_key", "order-1"}});
    REQUIRE(second.status == 200);
    CHECK(second.json()["duplicate"] == true);
    CHECK(second.json()["id"] == first.json()["id"]);
    CHECK(s.stats("idem")["messages"] == 1);

    auto h1 = s.publish({{"queue", "idem"}, {"payload", "b"}}, kPublish,
                        {{"Idempotency-Key", "order-2"}});
    REQUIRE(h1.status == 201);
    CHECK(h1.json()["id"] != first.json()["id"]);
    auto h2 = s.publish({{"queue", "idem"}, {"payload", "b"}}, kPublish,
                        {{"Idempotency-Key", "order-2"}});
    REQUIRE(h2.status == 200);
    CHECK(h2.json()["duplicate"] == true);
    CHECK(h2.json()["id"] == h1.json()["id"]);
    // The header and the field name the same key.
    auto h3 = s.publish({{"queue", "idem"}, {"payload", "b"}, {"idempotency_key", "order-2"}});
    CHECK(h3.status == 200);
    CHECK(h3.json()["id"] == h1.json()["id"]);
    CHECK(s.stats("idem")["messages"] == 2);

    auto differ = s.publish({{"queue", "idem"}, {"payload", "c"}, {"idempotency_key", "x"}},
                            kPublish, {{"Idempotency-Key", "y"}});
    CHECK(differ.status == 400);
    CHECK(s.stats("idem")["messages"] == 2);
}

TEST_CASE("api_publish_after_redis_lost_its_scripts_still_stores_once", "[api]") {
    Session s;
    s.create({{"name", "flushed"}});
    auto first = s.publish({{"queue", "flushed"}, {"payload", "a"}, {"idempotency_key", "k-1"}});
    REQUIRE(first.status == 201);
    // The server forgets the publish script; mq-api's connection still thinks it is loaded.
    auto redis = mq::redis::Connection(mq::redis::parse_url(services().redis_url));
    redis.command({"SCRIPT", "FLUSH"});
    auto again = s.publish({{"queue", "flushed"}, {"payload", "b"}, {"idempotency_key", "k-2"}});
    INFO(again.body);
    REQUIRE(again.status == 201);
    auto dup = s.publish({{"queue", "flushed"}, {"payload", "b"}, {"idempotency_key", "k-2"}});
    CHECK(dup.status == 200);
    CHECK(s.stats("flushed")["messages"] == 2);
}

TEST_CASE("api_publish_concurrent_publishes_are_each_stored_once", "[api]") {
    Session s;
    s.create({{"name", "burst"}, {"partitions", 3}});
    constexpr int kThreads = 8, kEach = 25;
    std::vector<std::vector<std::string>> ids(kThreads);
    std::vector<int> failures(kThreads, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                json body = {{"queue", "burst"}, {"payload", {{"t", t}, {"i", i}}}};
                if (i % 2)
                    body["idempotency_key"] = "t" + std::to_string(t) + "-" + std::to_string(i);
                auto r = s.publish(body);
                if (r.status != 201)
                    ++failures[t];
                else
                    ids[t].push_back(r.json()["id"]);
            }
        });
    for (auto& th : threads) th.join();
    std::set<std::string> unique;
    for (int t = 0; t < kThreads; ++t) {
        CHECK(failures[t] == 0);
        unique.insert(ids[t].begin(), ids[t].end());
    }
    CHECK(unique.size() == static_cast<std::size_t>(kThreads * kEach));
    CHECK(s.stats("burst")["messages"] == kThreads * kEach);
}

TEST_CASE("api_publish_delayed_and_scheduled_need_their_time", "[api]") {
    Session s;
    s.create({{"name", "later"}});
    auto no_delay = s.publish({{"queue", "later"}, {"payload", "x"}}, kPublish + "/delayed");
    CHECK(no_delay.status == 400);
    CHECK(no_delay.error_code() == "MQ_VALIDATION_ERROR");
    auto no_at = s.publish({{"queue", "later"}, {"payload", "x"}}, kPublish + "/scheduled");
    CHECK(no_at.status == 400);
    CHECK(no_at.json()["error"]["details"]["field"] == "deliver_at");
    CHECK(s.stats("later")["delayed"] == 0);

    auto d = s.publish({{"queue", "later"}, {"payload", "x"}, {"delay_ms", 600000}},
                       kPublish + "/delayed");
    REQUIRE(d.status == 201);
    CHECK(d.json()["delayed"] == true);
    CHECK(d.json()["deliver_at"].is_string());
    auto st = s.stats("later");
    CHECK(st["delayed"] == 1);
    CHECK(st["messages"] == 0);

    auto at = mq::format_rfc3339(mq::now_ms() + 3600000);
    auto sch = s.publish({{"queue", "later"}, {"payload", "y"}, {"deliver_at", at}},
                         kPublish + "/scheduled");
    REQUIRE(sch.status == 201);
    CHECK(sch.json()["delayed"] == true);
    CHECK(sch.json()["deliver_at"].is_string());
    CHECK(s.stats("later")["delayed"] == 2);

    auto bad_at = s.publish({{"queue", "later"}, {"payload", "y"}, {"deliver_at", "tomorrow"}},
                            kPublish + "/scheduled");
    CHECK(bad_at.status == 400);
    CHECK(s.stats("later")["delayed"] == 2);
}

TEST_CASE("api_publish_batch_reports_each_message", "[api]") {
    Session s;
    s.create({{"name", "bulk"}, {"partitions", 2}});
    json body = {{"queue", "bulk"},
                 {"messages",
                  {{{"payload", "one"}},
                   {{"payload", "two"}, {"key", 5}},
                   {{"payload", "three"}},
                   {{"payload", "four"}, {"delay_ms", 60000}}}}};
    auto r = s.publish(body, kPublish + "/batch");
    REQUIRE(r.status == 200);
    auto j = r.json();
    CHECK(j["accepted"] == 3);
    CHECK(j["rejected"] == 1);
    REQUIRE(j["results"].size() == 4);
    CHECK(j["results"][0]["id"].is_string());
    CHECK(j["results"][0]["queue"] == "bulk");
    CHECK(j["results"][0]["duplicate"] == false);
    CHECK(j["results"][0]["delayed"] == false);
    CHECK(j["results"][0]["deliver_at"].is_null());
    CHECK(j["results"][0]["partition"].is_number_integer());
    CHECK(j["results"][1]["error"]["code"] == "MQ_VALIDATION_ERROR");
    CHECK(j["results"][1]["error"]["message"].is_string());
    CHECK(j["results"][1].size() == 1);
    CHECK(j["results"][2]["id"].is_string());
    CHECK(j["results"][2]["id"] != j["results"][0]["id"]);
    CHECK(j["results"][3]["delayed"] == true);
    CHECK(j["results"][3]["deliver_at"].is_string());
    CHECK(s.stats("bulk")["messages"] == 2);
    CHECK(s.stats("bulk")["delayed"] == 1);

    auto not_batch = s.publish({{"queue", "bulk"}, {"payload", "x"}}, kPublish + "/batch");
    CHECK(not_batch.status == 400);
    CHECK(s.stats("bulk")["messages"] == 2);
}

TEST_CASE("api_topic_publish_takes_one_or_many", "[api]") {
    Session s;
    s.create({{"name", "news"}});
    auto one = s.publish({{"payload", {{"headline", "a"}}}}, "/api/v1/mq/topics/news/publish");
    REQUIRE(one.status == 201);
    CHECK(one.json()["queue"] == "news");
    auto many = s.publish({{"messages", {{{"payload", "b"}}, {{"payload", "c"}}}}},
                          "/api/v1/mq/topics/news/publish");
    REQUIRE(many.status == 200);
    CHECK(many.json()["accepted"] == 2);
    CHECK(s.stats("news")["messages"] == 3);
    auto missing = s.publish({{"payload", "x"}}, "/api/v1/mq/topics/nothere/publish");
    CHECK(missing.status == 404);
    CHECK(missing.error_code() == "MQ_QUEUE_NOT_FOUND");
}

TEST_CASE("api_publish_full_queue_answers_429_with_retry_after", "[api]") {
    Session s;
    s.create({{"name", "small"}, {"max_length", 2}});
    REQUIRE(s.publish({{"queue", "small"}, {"payload", 1}}).status == 201);
    REQUIRE(s.publish({{"queue", "small"}, {"payload", 2}}).status == 201);
    auto full = s.publish({{"queue", "small"}, {"payload", 3}});
    CHECK(full.status == 429);
    CHECK(full.error_code() == "MQ_QUEUE_FULL");
    CHECK_FALSE(full.headers["retry-after"].empty());
    CHECK(full.json()["error"]["retryAfter"].is_number());
    CHECK(s.stats("small")["messages"] == 2);
}

TEST_CASE("api_publish_batch_into_a_nearly_full_queue_answers_per_message", "[api]") {
    Session s;
    s.create({{"name", "small"}, {"max_length", 2}});
    REQUIRE(s.publish({{"queue", "small"}, {"payload", 1}}).status == 201);
    auto r = s.publish(
        {{"queue", "small"}, {"messages", {{{"payload", 2}}, {{"payload", 3}}, {{"payload", 4}}}}},
        kPublish + "/batch");
    REQUIRE(r.status == 200);
    auto j = r.json();
    CHECK(j["accepted"] == 1);
    CHECK(j["rejected"] == 2);
    REQUIRE(j["results"].size() == 3);
    CHECK(j["results"][0]["id"].is_string());
    CHECK(j["results"][1]["error"]["code"] == "MQ_QUEUE_FULL");
    CHECK(j["results"][2]["error"]["code"] == "MQ_QUEUE_FULL");
    CHECK(j["results"][2]["error"].contains("retryAfter"));
    CHECK(s.stats("small")["messages"] == 2);
}

TEST_CASE("api_publish_tenant_quota_answers_429_quota_exceeded", "[api]") {
    ApiOptions options;
    options.env["TENANT_PUBLISH_RATE"] = "2";
    Session s(options);
    s.create({{"name", "busy"}});
    int ok = 0, limited = 0;
    HttpResult last;
    for (int i = 0; i < 10; ++i) {
        auto r = s.publish({{"queue", "busy"}, {"payload", i}});
        if (r.status == 201) ++ok;
        if (r.status == 429) {
            ++limited;
            last = r;
        }
    }
    CHECK(limited > 0);
    CHECK(ok >= 1);
    CHECK(ok <= 5);
    REQUIRE(limited > 0);
    CHECK(last.error_code() == "MQ_QUOTA_EXCEEDED");
    CHECK(last.json()["error"]["retryAfter"].is_number());
    CHECK(s.stats("busy")["messages"] == ok);
}

TEST_CASE("api_publish_schema_refuses_non_matching_payloads", "[api]") {
    Session s;
    json schema = {
        {"type", "object"}, {"required", {"id"}}, {"properties", {{"id", {{"type", "integer"}}}}}};
    s.create({{"name", "typed"}, {"schema", schema}});
    auto bad = s.publish({{"queue", "typed"}, {"payload", {{"id", "seven"}}}});
    CHECK(bad.status == 422);
    CHECK(bad.error_code() == "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(bad.json()["error"]["details"]["errors"].is_array());
    CHECK_FALSE(bad.json()["error"]["details"]["errors"].empty());
    CHECK(s.stats("typed")["messages"] == 0);

    auto good = s.publish({{"queue", "typed"}, {"payload", {{"id", 7}}}});
    CHECK(good.status == 201);

    auto batch = s.publish({{"queue", "typed"},
                            {"messages",
                             {{{"payload", {{"id", 1}}}},
                              {{"payload", {{"name", "x"}}}},
                              {{"payload", {{"id", 3}}}}}}},
                           kPublish + "/batch");
    REQUIRE(batch.status == 200);
    auto j = batch.json();
    CHECK(j["accepted"] == 2);
    CHECK(j["rejected"] == 1);
    CHECK(j["results"][1]["error"]["code"] == "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(s.stats("typed")["messages"] == 3);
}

TEST_CASE("api_publish_encrypted_queue_stores_no_plaintext_and_pull_opens_it", "[api]") {
    ApiOptions options;
    options.env["MQ_KEYRING_FILE"] = keyring_file();
    Session s(options);
    s.create({{"name", "secret"}, {"partitions", 2}, {"encryption", "aes-256-gcm"}});
    const std::string plaintext = "TOP-SECRET-PLAINTEXT-" + unique_name("marker");
    auto r = s.publish({{"queue", "secret"}, {"payload", plaintext}});
    REQUIRE(r.status == 201);

    auto entries = raw_entries(s.api.key_prefix(), s.tenant.tenant(), "secret", 2);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].count("ek") == 1);
    for (const auto& [name, value] : entries[0]) {
        INFO(name);
        CHECK(value.find(plaintext) == std::string::npos);
        CHECK(value.find("TOP-SECRET") == std::string::npos);
    }

    auto sub = s.api.call_json(
        "POST", "/api/v1/mq/subscriptions",
        {{"queue", "secret"}, {"name", "reader"}, {"start_from", "earliest"}}, s.token);
    REQUIRE(sub.status == 201);
    auto id = sub.json()["id"].get<std::string>();
    auto pulled = s.api.call_json("POST", "/api/v1/mq/subscriptions/" + id + "/pull",
                                  {{"max_messages", 10}, {"wait_ms", 1000}}, s.token);
    REQUIRE(pulled.status == 200);
    auto msgs = pulled.json()["messages"];
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0]["payload"] == plaintext);
    CHECK(msgs[0]["id"] == r.json()["id"]);

    // An API without a keyring refuses to publish to the encrypted queue.
    ApiOptions plain;
    plain.key_prefix = s.api.key_prefix();
    ApiProcess no_keys(plain);
    auto refused = no_keys.call_json("POST", kPublish,
                                     {{"queue", "secret"}, {"payload", plaintext + "-2"}}, s.token);
    CHECK(refused.status >= 400);
    CHECK_FALSE(refused.error_code().empty());
    auto after = raw_entries(s.api.key_prefix(), s.tenant.tenant(), "secret", 2);
    CHECK(after.size() == 1);
    for (const auto& e : after)
        for (const auto& [name, value] : e) CHECK(value.find("TOP-SECRET") == std::string::npos);
}
