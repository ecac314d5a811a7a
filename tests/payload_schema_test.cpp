// Queue payload schemas (JSON Schema draft 7 via valijson): what passes, what fails and
// how the failure names the offending places.

#include "mq/queue/payload_schema.hpp"

#include <catch2/catch.hpp>
#include <thread>

#include "mq/error.hpp"

using Catch::Matchers::Contains;

namespace {

const nlohmann::json kOrderSchema = nlohmann::json::parse(R"({
  "type": "object",
  "required": ["id", "amount"],
  "properties": {
    "id": {"type": "string", "minLength": 1},
    "amount": {"type": "number", "minimum": 0},
    "items": {"type": "array", "items": {"type": "object", "required": ["sku"],
              "properties": {"sku": {"type": "string"}}}},
    "customer": {"type": "object", "properties": {"email": {"type": "string", "pattern": "@"}}}
  },
  "additionalProperties": false
})");

// The error a payload causes; fails the test when it passes.
mq::Error failure_of(const mq::PayloadSchema& s, const std::string& payload) {
    try {
        s.check(payload);
    } catch (const mq::Error& e) {
        return e;
    }
    FAIL("payload was accepted: " << payload);
    throw std::logic_error("unreachable");
}

std::vector<std::string> paths_of(const mq::Error& e) {
    std::vector<std::string> out;
    for (const auto& err : e.details().at("errors"))
        out.push_back(err.at("path").get<std::string>());
    return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST_CASE("a_payload_matching_the_schema_passes", "[schema]") {
    mq::PayloadSchema s(kOrderSchema);
    CHECK_NOTHROW(s.check(R"({"id":"o-1","amount":12.5})"));
    CHECK_NOTHROW(
        s.check(R"({"id":"o-1","amount":0,"items":[{"sku":"a"}],"customer":{"email":"a@b"}})"));
}

TEST_CASE("a_mismatch_is_a_schema_validation_error_naming_the_deepest_paths", "[schema]") {
    mq::PayloadSchema s(kOrderSchema);
    auto e = failure_of(s, R"({"id":"o-1","amount":-1,"items":[{"sku":7}]})");
    CHECK(e.code() == mq::ErrorCode::kSchemaValidation);
    CHECK_THAT(e.what(), Contains("payload does not match the queue's schema"));
    auto paths = paths_of(e);
    CHECK(has(paths, "/amount"));
    CHECK(has(paths, "/items/0/sku"));
    // Deepest first: the error that says what to fix leads.
    CHECK(paths.front() == "/items/0/sku");
    for (const auto& err : e.details().at("errors"))
        CHECK_FALSE(err.at("message").get<std::string>().empty());
}

TEST_CASE("a_missing_required_field_and_an_unknown_field_are_reported", "[schema]") {
    mq::PayloadSchema s(kOrderSchema);
    auto missing = failure_of(s, R"({"id":"o-1"})");
    CHECK(missing.code() == mq::ErrorCode::kSchemaValidation);
    CHECK_THAT(missing.details().dump(), Contains("amount"));
    auto extra = failure_of(s, R"({"id":"o-1","amount":1,"colour":"red"})");
    CHECK(extra.code() == mq::ErrorCode::kSchemaValidation);
}

TEST_CASE("at_most_twenty_errors_are_listed", "[schema]") {
    mq::PayloadSchema s(nlohmann::json::parse(R"({"type":"array","items":{"type":"integer"}})"));
    std::string many = "[";
    for (int i = 0; i < 50; ++i) many += std::string(i ? "," : "") + "\"x\"";
    many += "]";
    auto e = failure_of(s, many);
    CHECK(e.details().at("errors").size() == 20);
}

TEST_CASE("a_payload_that_is_not_json_fails_schema_validation", "[schema]") {
    mq::PayloadSchema s(kOrderSchema);
    for (std::string bad : {"not json", "{\"id\":", "", "\xff\xfe"}) {
        auto e = failure_of(s, bad);
        CHECK(e.code() == mq::ErrorCode::kSchemaValidation);
        CHECK_THAT(e.what(), Contains("not JSON"));
    }
}

TEST_CASE("an_invalid_schema_is_refused_with_field_schema", "[schema]") {
    const char* bad[] = {
        R"({"type": 5})",
        R"({"type": "no-such-type"})",
        R"({"minimum": "zero"})",
        R"({"required": "id"})",
        R"({"properties": []})",
        R"({"$ref": "https://example.com/remote.json"})",
        R"({"$ref": "#/definitions/missing"})",
        R"([1, 2])",
        R"("string")",
    };
    for (const char* text : bad) {
        INFO(text);
        try {
            mq::PayloadSchema s(nlohmann::json::parse(text));
            FAIL("schema was accepted");
        } catch (const mq::SchemaInvalid& e) {
            CHECK(e.details().value("field", "") == "schema");
            CHECK(e.code() == mq::ErrorCode::kSchemaInvalid);
        }
    }
}

TEST_CASE("local_refs_and_definitions_compile_and_apply", "[schema]") {
    mq::PayloadSchema s(nlohmann::json::parse(R"({
      "definitions": {"pos": {"type": "integer", "minimum": 1}},
      "type": "object", "properties": {"n": {"$ref": "#/definitions/pos"}}})"));
    CHECK_NOTHROW(s.check(R"({"n": 3})"));
    CHECK(paths_of(failure_of(s, R"({"n": 0})")).front() == "/n");
}

TEST_CASE("the_cache_compiles_once_per_queue_version_and_skips_queues_without_schema", "[schema]") {
    mq::PayloadSchemaCache cache;
    mq::Queue q;
    q.id = "00000000-0000-0000-0000-000000000001";
    q.updated_at = "2026-01-01T00:00:00.000Z";
    CHECK(cache.get(q) == nullptr);
    q.schema = nlohmann::json::parse(R"({"type":"integer"})");
    auto a = cache.get(q);
    REQUIRE(a);
    CHECK(cache.get(q) == a);
    CHECK_NOTHROW(a->check("5"));
    q.schema = nlohmann::json::parse(R"({"type":"string"})");
    q.updated_at = "2026-01-01T00:00:01.000Z";
    auto b = cache.get(q);
    REQUIRE(b);
    CHECK(b != a);
    CHECK_NOTHROW(b->check("\"five\""));
    CHECK_THROWS_AS(b->check("5"), mq::Error);
}

TEST_CASE("one_schema_checks_payloads_from_many_threads", "[schema]") {
    auto s = std::make_shared<const mq::PayloadSchema>(kOrderSchema);
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 200; ++i) {
                bool good = (i + t) % 2 == 0;
                try {
                    s->check(good ? R"({"id":"a","amount":1})" : R"({"id":"a","amount":"x"})");
                    if (!good) wrong++;
                } catch (const mq::Error&) {
                    if (good) wrong++;
                }
            }
        });
    for (auto& th : threads) th.join();
    CHECK(wrong == 0);
}
