// The built-in log handler: one JSON line per message, appended to a file, then ack; a
// file it cannot write retries.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "mq/consume/subscription_lifecycle.hpp"
#include "mq/deliver/log.hpp"
#include "mq/error.hpp"
#include "mq/worker/worker_config.hpp"

namespace {

mq::Delivery delivery(const std::string& id, const std::string& payload,
                      const std::string& content_type = "") {
    mq::Delivery d;
    d.message.id = id;
    d.message.payload = payload;
    d.message.content_type = content_type;
    d.message.published_ms = 1700000000000;
    d.tenant = "acme";
    d.queue = "orders";
    d.subscription = "audit";
    d.partition = 1;
    d.stream_id = "1700000000000-0";
    d.attempt = 2;
    return d;
}

std::vector<nlohmann::json> read_lines(const std::string& path) {
    std::vector<nlohmann::json> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
}

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/mq-log-test.XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("log handler appends one JSON line per message and acks", "[log]") {
    TempDir dir;
    const std::string file = dir.path + "/out.jsonl";
    mq::LogHandler h(mq::log_config_from_json({{"type", "log"}, {"path", file}}));
    CHECK(h.in_process());
    auto json_msg = delivery("m-1", R"({"order":"o-1","amount":12.5})", "application/json");
    json_msg.message.key = "customer-7";
    json_msg.message.headers_json = R"({"region":"eu"})";
    auto text_msg = delivery("m-2", "plain \"text\"\nwith a newline", "text/plain");
    CHECK(h.deliver(json_msg).outcome == mq::DeliveryOutcome::kAck);
    CHECK(h.deliver(text_msg).outcome == mq::DeliveryOutcome::kAck);

    auto lines = read_lines(file);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0]["id"] == "m-1");
    CHECK(lines[0]["queue"] == "orders");
    CHECK(lines[0]["subscription"] == "audit");
    CHECK(lines[0]["partition"] == 1);
    CHECK(lines[0]["stream_id"] == "1700000000000-0");
    CHECK(lines[0]["attempt"] == 2);
    CHECK(lines[0]["key"] == "customer-7");
    CHECK(lines[0]["headers"]["region"] == "eu");
    CHECK(lines[0]["payload"]["amount"] == 12.5);  // embedded as JSON
    CHECK(lines[0]["delivered_ms"].get<std::int64_t>() >=
          lines[0]["published_ms"].get<std::int64_t>());
    CHECK(lines[1]["payload"] == "plain \"text\"\nwith a newline");  // not JSON: a string
    CHECK_FALSE(lines[1].contains("key"));
    CHECK_FALSE(lines[1].contains("headers"));
}

TEST_CASE("log handler lines from many threads never interleave", "[log]") {
    TempDir dir;
    const std::string file = dir.path + "/out.jsonl";
    mq::LogHandler h(mq::LogConfig{file});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 250; ++i)
                h.deliver(delivery("m-" + std::to_string(t) + "-" + std::to_string(i),
                                   std::string(3000, 'x')));
        });
    for (auto& t : threads) t.join();
    auto lines = read_lines(file);  // throws on a torn line
    CHECK(lines.size() == 1000);
}

TEST_CASE("log handler retries when its file cannot be opened", "[log]") {
    mq::LogHandler h(mq::LogConfig{"/nonexistent-dir-for-mq/out.jsonl"});
    auto r = h.deliver(delivery("m-1", "{}"));
    CHECK(r.outcome == mq::DeliveryOutcome::kRetry);
    CHECK(r.error.find("cannot open /nonexistent-dir-for-mq/out.jsonl") != std::string::npos);
}

TEST_CASE("log handler settings: only path, not empty", "[log]") {
    CHECK(mq::log_config_from_json(nlohmann::json::object()).path == "-");
    CHECK(mq::log_config_from_json({{"path", "stderr"}}).path == "stderr");
    CHECK_THROWS_AS(mq::log_config_from_json({{"path", ""}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::log_config_from_json({{"url", "http://x"}}), mq::ValidationError);
    mq::Subscription sub;
    sub.type = "log";
    sub.handler = {{"path", "/dev/null"}};
    sub.origin = mq::kOriginOperator;  // an API-set log-to-file handler is never built
    CHECK(mq::make_handler(sub)->in_process());
    // The check mqctl and mq-api run before storing a subscription refuses the same.
    CHECK_NOTHROW(mq::validate_handler_for_type(sub));
    sub.handler = {{"path", "/dev/null"}, {"url", "http://x"}};
    CHECK_THROWS_AS(mq::validate_handler_for_type(sub), mq::ValidationError);
}

TEST_CASE("log handler stages a batch's lines and writes them at end_batch", "[log]") {
    TempDir dir;
    const std::string file = dir.path + "/out.jsonl";
    mq::LogHandler h(mq::LogConfig{file});
    h.begin_batch();
    CHECK(h.deliver(delivery("m-1", R"({"a": 1, "b": [true, null]})")).outcome ==
          mq::DeliveryOutcome::kAck);
    CHECK(h.deliver(delivery("m-2", "{\n  \"spread\": \"over lines\"\n}")).outcome ==
          mq::DeliveryOutcome::kAck);
    CHECK(h.deliver(delivery("m-3", "bad \xff utf-8 \x01")).outcome == mq::DeliveryOutcome::kAck);
    // Another thread's delivery is not part of the batch: written at once.
    std::thread([&] {
        CHECK(h.deliver(delivery("other", "1")).outcome == mq::DeliveryOutcome::kAck);
    }).join();
    REQUIRE(read_lines(file).size() == 1);
    CHECK(h.end_batch().empty());

    auto lines = read_lines(file);
    REQUIRE(lines.size() == 4);
    CHECK(lines[0]["id"] == "other");
    CHECK(lines[1]["payload"]["a"] == 1);
    CHECK(lines[1]["payload"]["b"][1].is_null());
    CHECK(lines[2]["payload"]["spread"] == "over lines");  // compacted onto one line
    CHECK(lines[3]["payload"] == "bad \xef\xbf\xbd utf-8 \x01");
    CHECK(h.end_batch().empty());  // an empty batch writes nothing
    CHECK(read_lines(file).size() == 4);
}

TEST_CASE("log handler reports a batch it cannot write at end_batch", "[log]") {
    mq::LogHandler h(mq::LogConfig{"/nonexistent-dir-for-mq/out.jsonl"});
    h.begin_batch();
    CHECK(h.deliver(delivery("m-1", "{}")).outcome == mq::DeliveryOutcome::kAck);  // staged only
    CHECK(h.end_batch().find("cannot open /nonexistent-dir-for-mq/out.jsonl") != std::string::npos);
    // Outside a batch the failure is the delivery's own.
    CHECK(h.deliver(delivery("m-2", "{}")).outcome == mq::DeliveryOutcome::kRetry);
}
