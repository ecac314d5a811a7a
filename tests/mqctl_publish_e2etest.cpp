// mqctl publish (one message): payload sources, key, headers, idempotency, delay and
// scheduled delivery, and every way a publish can be refused. Each test has its own
// tenant and key prefix.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "mq/core/partitioner.hpp"
#include "mq/core/time.hpp"
#include "mqctl_shell.hpp"

namespace {

using nlohmann::json;

/// One stream entry: its Redis id and its fields.
struct Entry {
    std::string stream_id;
    std::map<std::string, std::string> fields;
};

// An operator's shell for one test: every command acts for the test's tenant and key
// prefix, and Redis can be inspected under that prefix.
class Shell : public mqtest::MqctlShell {
  public:
    std::vector<Entry> entries(const std::string& queue, int p) {
        std::vector<Entry> out;
        auto r = redis_.redis().command({"XRANGE", stream(queue, p), "-", "+"});
        for (const auto& e : r.elements) {
            Entry entry{e.elements.at(0).str, {}};
            const auto& f = e.elements.at(1).elements;
            for (std::size_t i = 0; i + 1 < f.size(); i += 2) entry.fields[f[i].str] = f[i + 1].str;
            out.push_back(std::move(entry));
        }
        return out;
    }
};

}  // namespace

TEST_CASE("publish_stores_the_argument_payload_as_one_stream_entry", "[mqctl][publish]") {
    Shell sh;
    sh.create_queue({"orders"});
    const std::int64_t before = mq::now_ms();
    json out = sh.json_of({"publish", "orders", R"({"order":17,"total":"9.90"})"});
    CHECK(out["duplicate"] == false);
    CHECK(out["delayed"] == false);
    CHECK(out["partition"] == 0);
    const std::string id = out["id"];
    CHECK(id.size() == 36);
    CHECK(id[14] == '7');  // UUIDv7

    auto entries = sh.entries("orders", 0);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].stream_id == out["stream_id"]);
    CHECK(entries[0].fields["id"] == id);
    CHECK(entries[0].fields["p"] == R"({"order":17,"total":"9.90"})");
    CHECK(entries[0].fields.count("k") == 0);
    CHECK(entries[0].fields.count("h") == 0);
    std::int64_t t = std::stoll(entries[0].fields["t"]);
    CHECK(t >= before);
    CHECK(t <= mq::now_ms());

    // Table output is just the id, for scripts that capture it.
    auto text = sh.run({"publish", "orders", "second"});
    REQUIRE_EXIT(text, 0);
    CHECK(text.out.size() == 37);
    CHECK(text.out.back() == '\n');
    CHECK(sh.xlen("orders", 0) == 2);
}

TEST_CASE("publish_reads_the_payload_from_a_file_byte_for_byte", "[mqctl][publish]") {
    Shell sh;
    sh.create_queue({"files"});
    const std::string payload = std::string("line one\nline two\n\ttabbed \"quoted\"\n") +
                                std::string("\x01\x02 binary\xff", 11);
    std::string path = mqtest::temp_file(payload);
    json out = sh.json_of({"publish", "files", "--file", path});
    auto entries = sh.entries("files", 0);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].fields["id"] == out["id"]);
    CHECK(entries[0].fields["p"] == payload);

    auto missing = sh.run({"publish", "files", "--file", "/nonexistent/payload.json"});
    REQUIRE_EXIT(missing, 2);
    CHECK_THAT(missing.err, Catch::Contains("cannot read payload file"));
    auto both = sh.run({"publish", "files", "inline", "--file", path});
    REQUIRE_EXIT(both, 2);
    CHECK_THAT(both.err, Catch::Contains("not both"));
    CHECK(sh.xlen("files", 0) == 1);
}

TEST_CASE("publish_reads_the_payload_from_standard_input", "[mqctl][publish]") {
    Shell sh;
    sh.create_queue({"piped"});
    json out = sh.json_of({"publish", "piped", "-f", "-"}, "from a pipe\nsecond line\n");
    auto entries = sh.entries("piped", 0);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].fields["id"] == out["id"]);
    CHECK(entries[0].fields["p"] == "from a pipe\nsecond line\n");
}

TEST_CASE("publish_with_the_same_key_lands_in_the_same_documented_partition",
          "[mqctl][publish][partition]") {
    Shell sh;
    sh.create_queue({"orders", "--partitions", "4"});
    const int expected = static_cast<int>(mq::fnv1a_64("customer-42") % 4);
    for (int i = 0; i < 5; ++i) {
        json out =
            sh.json_of({"publish", "orders", "event-" + std::to_string(i), "--key", "customer-42"});
        CHECK(out["partition"] == expected);
    }
    // Find where the messages went: all five in one stream, in publish order.
    int holding = -1;
    for (int p = 0; p < 4; ++p) {
        std::int64_t n = sh.xlen("orders", p);
        if (n > 0) {
            CHECK(holding == -1);
            holding = p;
            CHECK(n == 5);
        }
    }
    CHECK(holding == expected);
    auto entries = sh.entries("orders", expected);
    REQUIRE(entries.size() == 5);
    for (int i = 0; i < 5; ++i) {
        CHECK(entries[static_cast<std::size_t>(i)].fields["p"] == "event-" + std::to_string(i));
        CHECK(entries[static_cast<std::size_t>(i)].fields["k"] == "customer-42");
    }

    // Another key that hashes elsewhere goes elsewhere.
    std::string other;
    for (int i = 0; other.empty(); ++i) {
        std::string candidate = "customer-" + std::to_string(i);
        if (static_cast<int>(mq::fnv1a_64(candidate) % 4) != expected) other = candidate;
    }
    json out = sh.json_of({"publish", "orders", "elsewhere", "-k", other});
    CHECK(out["partition"] != expected);
    CHECK(sh.xlen("orders", out["partition"].get<int>()) == 1);
}

TEST_CASE("publish_stores_repeated_headers_as_a_json_object", "[mqctl][publish][headers]") {
    Shell sh;
    sh.create_queue({"orders"});
    json out = sh.json_of({"publish", "orders", "payload", "-H", "trace=abc-123", "--header",
                           "source=checkout", "-H", "query=a=b&c=d", "-H", "empty="});
    auto entries = sh.entries("orders", 0);
    REQUIRE(entries.size() == 1);
    REQUIRE(entries[0].fields.count("h") == 1);
    json headers = json::parse(entries[0].fields["h"]);
    CHECK(headers ==
          json{{"trace", "abc-123"}, {"source", "checkout"}, {"query", "a=b&c=d"}, {"empty", ""}});
    CHECK(entries[0].fields["p"] == "payload");
    CHECK(entries[0].fields["id"] == out["id"]);
}

TEST_CASE("publish_refuses_a_header_that_is_not_name_equals_value", "[mqctl][publish][headers]") {
    Shell sh;
    sh.create_queue({"orders"});
    for (const std::string bad : {"novalue", "=value"}) {
        auto r = sh.run({"publish", "orders", "payload", "-H", bad});
        REQUIRE_EXIT(r, 2);
        CHECK_THAT(r.err, Catch::Contains("must look like name=value"));
    }
    CHECK(sh.xlen("orders", 0) == 0);
}

TEST_CASE("publish_with_an_idempotency_key_twice_returns_the_first_id_and_stores_once",
          "[mqctl][publish][idempotency]") {
    Shell sh;
    sh.create_queue({"payments", "--partitions", "3", "--dedup-window", "1h"});
    auto first =
        sh.run({"publish", "payments", "charge 10 EUR", "--idempotency-key", "charge-991"});
    REQUIRE_EXIT(first, 0);
    CHECK_THAT(first.out, !Catch::Contains("duplicate"));
    const std::string id = first.out.substr(0, first.out.find('\n'));

    auto second = sh.run({"publish", "payments", "charge 10 EUR again", "-i", "charge-991"});
    REQUIRE_EXIT(second, 0);
    CHECK_THAT(second.out, Catch::StartsWith(id) && Catch::Contains("duplicate"));

    json third = sh.json_of({"publish", "payments", "and again", "-i", "charge-991"});
    CHECK(third["id"] == id);
    CHECK(third["duplicate"] == true);
    CHECK(third["stream_id"] == "");

    const int p = static_cast<int>(mq::fnv1a_64("charge-991") % 3);
    CHECK(third["partition"] == p);
    std::int64_t total = 0;
    for (int i = 0; i < 3; ++i) total += sh.xlen("payments", i);
    CHECK(total == 1);
    auto entries = sh.entries("payments", p);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].fields["id"] == id);
    CHECK(entries[0].fields["p"] == "charge 10 EUR");

    // The key lives for the queue's dedup window, not longer.
    auto& redis = sh.redis().redis();
    const std::string idem =
        sh.redis().keys().idempotency(sh.tenant(), "payments", p, "charge-991");
    CHECK(redis.command({"GET", idem}).str == id);
    std::int64_t ttl = redis.command({"PTTL", idem}).as_integer();
    CHECK(ttl > 3600000 - 60000);
    CHECK(ttl <= 3600000);

    // A different key is a different message.
    json other = sh.json_of({"publish", "payments", "charge 5 EUR", "-i", "charge-992"});
    CHECK(other["duplicate"] == false);
    CHECK(other["id"] != id);
}

TEST_CASE("publish_with_delay_goes_to_the_delayed_set_not_the_stream", "[mqctl][publish][delay]") {
    Shell sh;
    sh.create_queue({"reminders"});
    const std::int64_t before = mq::now_ms();
    json out = sh.json_of({"publish", "reminders", "call back", "--delay", "1h"});
    const std::int64_t after = mq::now_ms();
    CHECK(out["delayed"] == true);
    CHECK(out["stream_id"] == "");
    CHECK(sh.xlen("reminders", 0) == 0);
    REQUIRE(sh.zcard("reminders", 0) == 1);
    auto z =
        sh.redis().redis().command({"ZRANGE", sh.delayed("reminders", 0), "0", "-1", "WITHSCORES"});
    std::int64_t due = z.elements.at(1).as_integer();
    CHECK(due >= before + 3600000 - 1000);  // Redis clock vs ours: same machine
    CHECK(due <= after + 3600000 + 1000);

    auto text = sh.run({"publish", "reminders", "later", "--delay", "90s"});
    REQUIRE_EXIT(text, 0);
    CHECK_THAT(text.out, Catch::Contains("(delayed)"));
    CHECK(sh.zcard("reminders", 0) == 2);
    CHECK(sh.xlen("reminders", 0) == 0);
}

TEST_CASE("publish_at_a_future_time_is_scheduled_for_that_exact_time", "[mqctl][publish][at]") {
    Shell sh;
    sh.create_queue({"reports"});
    json out =
        sh.json_of({"publish", "reports", "monthly", "--at", "2099-12-01T09:00:00.250+01:00"});
    CHECK(out["delayed"] == true);
    CHECK(sh.xlen("reports", 0) == 0);
    auto z =
        sh.redis().redis().command({"ZRANGE", sh.delayed("reports", 0), "0", "-1", "WITHSCORES"});
    REQUIRE(z.elements.size() == 2);
    CHECK(z.elements[1].as_integer() == 4099795200250LL);  // 2099-12-01T08:00:00.250Z
}

TEST_CASE("publish_at_a_past_time_goes_straight_to_the_stream", "[mqctl][publish][at]") {
    Shell sh;
    sh.create_queue({"reports"});
    json out = sh.json_of({"publish", "reports", "overdue", "--at", "2020-01-01T00:00:00Z"});
    CHECK(out["delayed"] == false);
    CHECK(sh.zcard("reports", 0) == 0);
    auto entries = sh.entries("reports", 0);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].stream_id == out["stream_id"]);
    CHECK(entries[0].fields["p"] == "overdue");
}

TEST_CASE("publish_with_a_malformed_time_or_delay_is_a_usage_error_and_stores_nothing",
          "[mqctl][publish][at][delay]") {
    Shell sh;
    sh.create_queue({"reports"});
    for (const std::string at :
         {"tomorrow", "2026-13-01T00:00:00Z", "2026-12-01 09:00", "2026-12-01T09:00:00"}) {
        INFO("--at " << at);
        auto r = sh.run({"publish", "reports", "x", "--at", at});
        REQUIRE_EXIT(r, 2);
        CHECK_THAT(r.err, Catch::Contains("invalid --at") && Catch::Contains("RFC 3339"));
    }
    for (const std::string delay : {"bogus", "5 minutes", "-5s", "1w"}) {
        INFO("--delay " << delay);
        auto r = sh.run({"publish", "reports", "x", "--delay=" + delay});
        REQUIRE_EXIT(r, 2);
        CHECK_THAT(r.err, Catch::Contains("invalid --delay") && Catch::Contains("90s"));
    }
    auto both =
        sh.run({"publish", "reports", "x", "--delay", "1h", "--at", "2099-01-01T00:00:00Z"});
    REQUIRE_EXIT(both, 2);
    CHECK_THAT(both.err, Catch::Contains("not both"));
    CHECK(sh.redis().all_keys().empty());
}

TEST_CASE("publish_over_max_message_size_is_refused_and_stores_nothing",
          "[mqctl][publish][limits]") {
    Shell sh;
    sh.create_queue({"small"});
    const std::map<std::string, std::string> env{{"MAX_MESSAGE_SIZE", "10"}};
    auto r = sh.run({"publish", "small", "eleven byte"}, env);
    REQUIRE_EXIT(r, 2);
    CHECK_THAT(r.err, Catch::Contains("payload is 11 bytes; the limit is 10 (MAX_MESSAGE_SIZE)"));

    auto j = sh.run({"-o", "json", "publish", "small", "-f", "-"}, env, "a much longer payload\n");
    REQUIRE_EXIT(j, 2);
    json err = json::parse(j.err)["error"];
    CHECK(err["code"] == "MQ_PAYLOAD_TOO_LARGE");
    CHECK(err["details"]["limit"] == 10);
    CHECK(sh.redis().all_keys().empty());

    // Exactly at the limit is fine.
    REQUIRE_EXIT(sh.run({"publish", "small", "ten bytes!"}, env), 0);
    CHECK(sh.xlen("small", 0) == 1);
}

TEST_CASE("publish_to_an_unknown_queue_exits_3_and_stores_nothing", "[mqctl][publish]") {
    Shell sh;
    auto r = sh.run({"publish", "nowhere", "hello"});
    REQUIRE_EXIT(r, 3);
    CHECK_THAT(r.err, Catch::Contains("queue 'nowhere' not found"));
    auto j = sh.run({"-o", "json", "publish", "nowhere", "hello"});
    REQUIRE_EXIT(j, 3);
    CHECK(json::parse(j.err)["error"]["code"] == "MQ_QUEUE_NOT_FOUND");
    CHECK(sh.redis().all_keys().empty());
}

TEST_CASE("publish_to_a_full_queue_exits_1_with_queue_full_until_the_limit_is_raised",
          "[mqctl][publish][limits]") {
    Shell sh;
    sh.create_queue({"bounded", "--max-length", "2"});
    REQUIRE_EXIT(sh.run({"publish", "bounded", "one"}), 0);
    REQUIRE_EXIT(sh.run({"publish", "bounded", "two"}), 0);

    auto full = sh.run({"-o", "json", "publish", "bounded", "three"});
    REQUIRE_EXIT(full, 1);
    CHECK(full.out.empty());
    json err = json::parse(full.err)["error"];
    CHECK(err["code"] == "MQ_QUEUE_FULL");
    CHECK(err["retryAfter"] == 1);
    CHECK_THAT(err["message"].get<std::string>(), Catch::Contains("mqctl queue update bounded"));
    CHECK(sh.xlen("bounded", 0) == 2);

    // Delayed messages count toward the backlog too.
    auto delayed = sh.run({"publish", "bounded", "later", "--delay", "1h"});
    REQUIRE_EXIT(delayed, 1);
    CHECK_THAT(delayed.err, Catch::Contains("is full (max length 2)"));
    CHECK(sh.zcard("bounded", 0) == 0);

    // A duplicate of a refused idempotent message was never recorded.
    REQUIRE_EXIT(sh.run({"publish", "bounded", "x", "-i", "retry-me"}), 1);
    REQUIRE_EXIT(sh.run({"queue", "update", "bounded", "--no-max-length"}), 0);
    json ok = sh.json_of({"publish", "bounded", "x", "-i", "retry-me"});
    CHECK(ok["duplicate"] == false);
    CHECK(sh.xlen("bounded", 0) == 3);
}

// Each mqctl run is a new process: round-robin must not start at partition 0 every time,
// or a --partitions 4 --max-length 100 queue would be "full" after 25 unkeyed publishes.
TEST_CASE("unkeyed_single_publishes_spread_over_partitions", "[mqctl][publish][partition]") {
    Shell sh;
    sh.create_queue({"spread", "--partitions", "4"});
    for (int i = 0; i < 20; ++i) REQUIRE_EXIT(sh.run({"publish", "spread", "m"}), 0);
    int used = 0;
    for (int p = 0; p < 4; ++p) used += sh.xlen("spread", p) > 0 ? 1 : 0;
    CHECK(used > 1);
}

// -H takes one value each time (CLI11 vector options would otherwise swallow the payload).
TEST_CASE("publish_accepts_headers_before_the_payload", "[mqctl][publish][headers]") {
    Shell sh;
    sh.create_queue({"orders"});
    auto r = sh.run({"publish", "orders", "-H", "a=b", "payload"});
    REQUIRE_EXIT(r, 0);
    auto entries = sh.entries("orders", 0);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].fields["p"] == "payload");
    CHECK(json::parse(entries[0].fields["h"]) == json{{"a", "b"}});
}
