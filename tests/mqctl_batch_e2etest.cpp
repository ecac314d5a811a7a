// mqctl publish --batch: JSON lines from a file or standard input, all or nothing unless
// --skip-invalid, idempotency and delays per line, and a full queue. Each test has its
// own tenant and key prefix.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "mq/core/partitioner.hpp"
#include "mqctl_shell.hpp"

namespace {

using nlohmann::json;

// An operator's shell for one test: every command acts for the test's tenant and key
// prefix, and Redis can be inspected under that prefix.
class Shell : public mqtest::MqctlShell {
  public:
    std::int64_t stream_total(const std::string& queue, int partitions) {
        std::int64_t n = 0;
        for (int p = 0; p < partitions; ++p) n += xlen(queue, p);
        return n;
    }
    std::int64_t delayed_total(const std::string& queue, int partitions) {
        std::int64_t n = 0;
        for (int p = 0; p < partitions; ++p) n += zcard(queue, p);
        return n;
    }
    /// Payload -> fields of every entry in every partition stream.
    std::map<std::string, std::map<std::string, std::string>> by_payload(const std::string& queue,
                                                                         int partitions) {
        std::map<std::string, std::map<std::string, std::string>> out;
        for (int p = 0; p < partitions; ++p) {
            auto r = redis_.redis().command(
                {"XRANGE", redis_.keys().stream(tenant(), queue, p), "-", "+"});
            for (const auto& e : r.elements) {
                std::map<std::string, std::string> fields;
                const auto& f = e.elements.at(1).elements;
                for (std::size_t i = 0; i + 1 < f.size(); i += 2) fields[f[i].str] = f[i + 1].str;
                fields["partition"] = std::to_string(p);
                out[fields["p"]] = fields;
            }
        }
        return out;
    }
};

}  // namespace

TEST_CASE("batch_publishes_every_json_line_and_prints_a_summary", "[mqctl][batch]") {
    Shell sh;
    sh.create_queue({"orders", "--partitions", "3"});
    std::string file = mqtest::temp_file(
        R"({"payload":"plain text"})"
        "\n"
        R"({"payload":{"order":1,"items":[1,2]},"key":"customer-7"})"
        "\n"
        R"({"payload":"with headers","headers":{"trace":"t-1","source":"import"},"content_type":"text/plain"})"
        "\n");
    auto r = sh.run({"publish", "orders", "--batch", file});
    REQUIRE_EXIT(r, 0);
    CHECK_THAT(r.out, Catch::StartsWith("published 3 of 3 message(s) to orders"));
    CHECK(r.err.empty());  // small inputs print no progress line

    CHECK(sh.stream_total("orders", 3) == 3);
    auto stored = sh.by_payload("orders", 3);
    REQUIRE(stored.size() == 3);
    // A JSON payload is stored as JSON text with its content type (formatting is free).
    std::map<std::string, std::string> object;
    for (const auto& [payload, fields] : stored)
        if (fields.count("k")) object = fields;
    REQUIRE_FALSE(object.empty());
    CHECK(json::parse(object.at("p")) == json{{"order", 1}, {"items", {1, 2}}});
    CHECK(object.at("ct") == "application/json");
    CHECK(object.at("k") == "customer-7");
    CHECK(object.at("partition") == std::to_string(mq::fnv1a_64("customer-7") % 3));
    REQUIRE(stored.count("with headers") == 1);
    CHECK(json::parse(stored["with headers"].at("h")) ==
          json{{"trace", "t-1"}, {"source", "import"}});
    CHECK(stored["with headers"].at("ct") == "text/plain");
    REQUIRE(stored.count("plain text") == 1);
    CHECK(stored["plain text"].count("ct") == 0);

    json summary = sh.json_of({"publish", "orders", "--batch", file});
    CHECK(summary["lines"] == 3);
    CHECK(summary["published"] == 3);
    CHECK(summary["duplicates"] == 0);
    CHECK(summary["rejected"] == 0);
    CHECK(summary["skipped"] == 0);
    CHECK(summary["invalid"].empty());
    CHECK(sh.stream_total("orders", 3) == 6);
}

TEST_CASE("batch_ignores_blank_lines", "[mqctl][batch]") {
    Shell sh;
    sh.create_queue({"orders"});
    std::string file =
        mqtest::temp_file("\n{\"payload\":\"a\"}\n   \n\t\n{\"payload\":\"b\"}\r\n\n");
    json summary = sh.json_of({"publish", "orders", "--batch", file});
    CHECK(summary["lines"] == 2);
    CHECK(summary["published"] == 2);
    CHECK(sh.xlen("orders", 0) == 2);
}

TEST_CASE("batch_with_a_malformed_line_names_it_and_publishes_nothing", "[mqctl][batch][invalid]") {
    Shell sh;
    sh.create_queue({"orders", "--partitions", "3"});
    // Valid lines before and after the bad one, spread over partitions and the delayed set.
    std::string file = mqtest::temp_file(R"({"payload":"first","key":"a"})"
                                         "\n"
                                         R"({"payload":"second","key":"b","delay":"1h"})"
                                         "\n"
                                         R"({"payload":"third",)"
                                         "\n"
                                         R"({"payload":"fourth","key":"c"})"
                                         "\n");
    auto r = sh.run({"publish", "orders", "--batch", file});
    REQUIRE_EXIT(r, 2);
    CHECK_THAT(r.err, Catch::Contains("line 3") && Catch::Contains("malformed JSON") &&
                          Catch::Contains("nothing was published") &&
                          Catch::Contains("--skip-invalid"));
    CHECK(r.out.empty());
    for (int p = 0; p < 3; ++p) {
        CHECK(sh.xlen("orders", p) == 0);
        CHECK(sh.zcard("orders", p) == 0);
    }
    CHECK(sh.redis().all_keys().empty());

    auto j = sh.run({"-o", "json", "publish", "orders", "--batch", file});
    REQUIRE_EXIT(j, 2);
    json err = json::parse(j.err)["error"];
    CHECK(err["code"] == "MQ_VALIDATION_ERROR");
    CHECK(err["details"]["invalid_count"] == 1);
    CHECK(err["details"]["invalid_lines"][0]["line"] == 3);
    CHECK(sh.redis().all_keys().empty());
}

TEST_CASE("batch_refuses_lines_with_unknown_fields_or_wrong_types", "[mqctl][batch][invalid]") {
    Shell sh;
    sh.create_queue({"orders"});
    struct Case {
        std::string line;
        std::string says;
    };
    for (const auto& c : std::vector<Case>{
             {R"({"payload":"x","priority":5})", "unknown field \"priority\""},
             {R"({"body":"x"})", "unknown field \"body\""},
             {R"({"key":"k"})", "missing \"payload\""},
             {R"({"payload":"x","headers":{"n":1}})", "header \"n\" must be a string"},
             {R"({"payload":"x","delay":"soon"})", "invalid delay"},
             {R"({"payload":"x","delay_ms":-1})", "non-negative integer"},
             {R"({"payload":"x","deliver_at":"next week"})", "RFC 3339"},
             {R"(["payload","x"])", "expected a JSON object"}}) {
        INFO("line 2: " << c.line);
        std::string file = mqtest::temp_file("{\"payload\":\"ok\"}\n" + c.line + "\n");
        auto r = sh.run({"publish", "orders", "--batch", file});
        REQUIRE_EXIT(r, 2);
        CHECK_THAT(r.err, Catch::Contains("line 2: ") && Catch::Contains(c.says));
    }
    CHECK(sh.xlen("orders", 0) == 0);
}

TEST_CASE("batch_with_skip_invalid_publishes_the_valid_lines_and_reports_the_rest",
          "[mqctl][batch][invalid]") {
    Shell sh;
    sh.create_queue({"orders", "--partitions", "2"});
    std::string file = mqtest::temp_file(
        "{\"payload\":\"one\"}\n"
        "not json at all\n"
        "{\"payload\":\"two\"}\n"
        "{\"payload\":\"three\",\"colour\":\"red\"}\n"
        "{\"payload\":\"four\"}\n");
    auto text = sh.run({"publish", "orders", "--batch", file, "--skip-invalid"});
    REQUIRE_EXIT(text, 0);
    CHECK_THAT(text.out,
               Catch::Contains("published 3 of 5") && Catch::Contains("2 invalid line(s) skipped"));
    CHECK_THAT(text.err, Catch::Contains("skipped line 2: malformed JSON") &&
                             Catch::Contains("skipped line 4: unknown field \"colour\""));
    auto stored = sh.by_payload("orders", 2);
    CHECK(stored.size() == 3);
    CHECK(stored.count("one") == 1);
    CHECK(stored.count("two") == 1);
    CHECK(stored.count("four") == 1);
    CHECK(stored.count("three") == 0);

    json summary = sh.json_of({"publish", "orders", "--batch", file, "--skip-invalid"});
    CHECK(summary["lines"] == 5);
    CHECK(summary["published"] == 3);
    CHECK(summary["skipped"] == 2);
    REQUIRE(summary["invalid"].size() == 2);
    CHECK(summary["invalid"][0]["line"] == 2);
    CHECK(summary["invalid"][1]["line"] == 4);
    CHECK(sh.stream_total("orders", 2) == 6);
}

TEST_CASE("batch_reads_json_lines_from_standard_input", "[mqctl][batch][stdin]") {
    Shell sh;
    sh.create_queue({"orders", "--partitions", "2"});
    std::string input;
    for (int i = 0; i < 50; ++i) input += "{\"payload\":\"m" + std::to_string(i) + "\"}\n";
    json summary = sh.json_of({"publish", "orders", "--batch", "-"}, input);
    CHECK(summary["lines"] == 50);
    CHECK(summary["published"] == 50);
    auto stored = sh.by_payload("orders", 2);
    CHECK(stored.size() == 50);
    CHECK(stored.count("m0") == 1);
    CHECK(stored.count("m49") == 1);

    // Standard input is validated as a whole too: a bad line publishes nothing.
    auto bad = sh.run({"publish", "orders", "--batch", "-"}, {}, "{\"payload\":\"x\"}\n{oops}\n");
    REQUIRE_EXIT(bad, 2);
    CHECK_THAT(bad.err, Catch::Contains("line 2"));
    CHECK(sh.stream_total("orders", 2) == 50);
}

TEST_CASE("batch_idempotency_keys_dedupe_within_and_across_batches",
          "[mqctl][batch][idempotency]") {
    Shell sh;
    sh.create_queue({"payments", "--partitions", "4"});
    std::string file =
        mqtest::temp_file(R"({"payload":"charge A","idempotency_key":"pay-1"})"
                          "\n"
                          R"({"payload":"charge B","idempotency_key":"pay-2"})"
                          "\n"
                          R"({"payload":"charge A retried","idempotency_key":"pay-1"})"
                          "\n"
                          R"({"payload":"no key"})"
                          "\n");
    json first = sh.json_of({"publish", "payments", "--batch", file});
    CHECK(first["lines"] == 4);
    CHECK(first["published"] == 3);
    CHECK(first["duplicates"] == 1);
    auto stored = sh.by_payload("payments", 4);
    CHECK(stored.size() == 3);
    CHECK(stored.count("charge A") == 1);
    CHECK(stored.count("charge A retried") == 0);

    json again = sh.json_of({"publish", "payments", "--batch", file});
    CHECK(again["published"] == 1);  // only the line without a key
    CHECK(again["duplicates"] == 3);
    CHECK(sh.stream_total("payments", 4) == 4);

    // A single publish with the same key sees the batch's message.
    json single = sh.json_of({"publish", "payments", "x", "-i", "pay-2"});
    CHECK(single["duplicate"] == true);
    CHECK(single["id"] == stored["charge B"]["id"]);
}

TEST_CASE("batch_lines_with_delay_or_deliver_at_go_to_the_delayed_set", "[mqctl][batch][delay]") {
    Shell sh;
    sh.create_queue({"reminders", "--partitions", "2"});
    std::string file = mqtest::temp_file(
        R"({"payload":"in an hour","delay":"1h","key":"a"})"
        "\n"
        R"({"payload":"in a day","delay_ms":86400000,"key":"b"})"
        "\n"
        R"({"payload":"next century","deliver_at":"2099-01-01T00:00:00Z","key":"a"})"
        "\n"
        R"({"payload":"overdue","deliver_at":"2001-01-01T00:00:00Z","key":"b"})"
        "\n"
        R"({"payload":"now","key":"a"})"
        "\n");
    json summary = sh.json_of({"publish", "reminders", "--batch", file});
    CHECK(summary["published"] == 5);
    CHECK(sh.delayed_total("reminders", 2) == 3);
    CHECK(sh.stream_total("reminders", 2) == 2);
    auto stored = sh.by_payload("reminders", 2);
    CHECK(stored.count("now") == 1);
    CHECK(stored.count("overdue") == 1);
    // Keys route delayed entries as well: "a" and "b" hash to different partitions.
    const int pa = static_cast<int>(mq::fnv1a_64("a") % 2);
    CHECK(sh.zcard("reminders", pa) == 2);
    CHECK(sh.zcard("reminders", 1 - pa) == 1);
}

TEST_CASE("batch_into_a_full_queue_exits_1_and_reports_what_was_rejected",
          "[mqctl][batch][limits]") {
    Shell sh;
    sh.create_queue({"bounded", "--max-length", "2"});
    // Line numbers are file lines: the blank line 2 counts.
    std::string file = mqtest::temp_file(
        "{\"payload\":\"1\"}\n"
        "\n"
        "{\"payload\":\"2\"}\n"
        "{\"payload\":\"3\"}\n"
        "{\"payload\":\"4\"}\n"
        "{\"payload\":\"5\"}\n");
    auto r = sh.run({"-o", "json", "publish", "bounded", "--batch", file});
    REQUIRE_EXIT(r, 1);
    json summary = json::parse(r.out);
    CHECK(summary["lines"] == 5);
    CHECK(summary["published"] == 2);
    CHECK(summary["rejected"] == 3);
    CHECK(summary["first_rejected_line"] == 4);
    json err = json::parse(r.err)["error"];
    CHECK(err["code"] == "MQ_QUEUE_FULL");
    CHECK_THAT(err["message"].get<std::string>(),
               Catch::Contains("3 message(s) were not published, from line 4"));
    auto stored = sh.by_payload("bounded", 1);
    CHECK(stored.size() == 2);
    CHECK(stored.count("1") == 1);
    CHECK(stored.count("2") == 1);

    auto text = sh.run({"publish", "bounded", "--batch", file});
    REQUIRE_EXIT(text, 1);
    CHECK_THAT(text.out, Catch::Contains("published 0 of 5") && Catch::Contains("5 rejected"));
    CHECK_THAT(text.err, Catch::Contains("from line 1") && Catch::Contains("is full"));
    CHECK(sh.xlen("bounded", 0) == 2);
}

TEST_CASE("batch_refuses_per_message_flags_and_unreadable_files", "[mqctl][batch][usage]") {
    Shell sh;
    sh.create_queue({"orders"});
    std::string file = mqtest::temp_file("{\"payload\":\"x\"}\n");
    for (const auto& extra : std::vector<std::vector<std::string>>{
             {"--key", "k"}, {"-H", "a=b"}, {"-i", "id"}, {"--delay", "1h"}, {"payload"}}) {
        std::vector<std::string> args{"publish", "orders", "--batch", file};
        args.insert(args.end(), extra.begin(), extra.end());
        INFO("with " << extra[0]);
        auto r = sh.run(args);
        REQUIRE_EXIT(r, 2);
        CHECK_THAT(r.err, Catch::Contains("do not combine it"));
    }
    auto missing = sh.run({"publish", "orders", "--batch", "/nonexistent/batch.jsonl"});
    REQUIRE_EXIT(missing, 2);
    CHECK_THAT(missing.err, Catch::Contains("cannot read batch file"));
    CHECK(sh.xlen("orders", 0) == 0);
}

TEST_CASE("batch_with_an_oversize_line_names_it_and_publishes_nothing", "[mqctl][batch][limits]") {
    Shell sh;
    sh.create_queue({"orders"});
    std::string file = mqtest::temp_file(
        "{\"payload\":\"short\"}\n"
        "{\"payload\":\"far too long for the limit\"}\n");
    auto r = sh.run({"publish", "orders", "--batch", file}, {{"MAX_MESSAGE_SIZE", "10"}});
    REQUIRE_EXIT(r, 2);
    CHECK_THAT(r.err, Catch::Contains("line 2: payload is 26 bytes; the limit is 10"));
    CHECK(sh.redis().all_keys().empty());
}

TEST_CASE("batch_of_a_large_input_prints_progress_on_stderr", "[mqctl][batch][progress]") {
    Shell sh;
    sh.create_queue({"bulk", "--partitions", "4"});
    std::string input;
    input.reserve(12000 * 24);
    for (int i = 0; i < 12000; ++i) input += "{\"payload\":\"m" + std::to_string(i) + "\"}\n";
    auto r = sh.run({"publish", "bulk", "--batch", mqtest::temp_file(input)});
    REQUIRE_EXIT(r, 0);
    CHECK_THAT(r.out, Catch::StartsWith("published 12000 of 12000 message(s) to bulk"));
    // Not a terminal: whole lines, the last one at 100%.
    CHECK_THAT(r.err,
               Catch::Contains("published 12000/12000 (100%,") && Catch::Contains(" msg/s)\n"));
    CHECK(r.err.find('\r') == std::string::npos);
    CHECK(sh.stream_total("bulk", 4) == 12000);
    // Unkeyed lines are spread round-robin over the partitions.
    for (int p = 0; p < 4; ++p) CHECK(sh.xlen("bulk", p) == 3000);
}
