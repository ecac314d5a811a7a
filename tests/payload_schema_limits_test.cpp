// Queue schemas from tenants: what is refused when a schema is stored ($ref cycles, remote
// refs, size, depth, patterns RE2 cannot run), and that checking a payload stays bounded
// (RE2 instead of std::regex, uniqueItems size, payload depth, a step budget) while ordinary
// schemas keep their meaning.

#include <catch2/catch.hpp>
#include <chrono>

#include "mq/error.hpp"
#include "mq/queue/payload_schema.hpp"

using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

// The SchemaInvalid a schema causes; fails the test when it compiles.
mq::Error refusal_of(const std::string& text) {
    try {
        mq::PayloadSchema s(json::parse(text));
    } catch (const mq::Error& e) {
        return e;
    }
    FAIL("schema was accepted: " << text);
    throw std::logic_error("unreachable");
}

// How a payload fares: "ok", or the error code name.
std::string outcome(const mq::PayloadSchema& s, const std::string& payload) {
    try {
        s.check(payload);
        return "ok";
    } catch (const mq::Error& e) {
        return std::string(mq::code_name(e.code()));
    }
}

std::string nested_properties(int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += R"({"type":"object","properties":{"a":)";
    s += "{}";
    for (int i = 0; i < depth; ++i) s += "}}";
    return s;
}

template <class F>
long long millis_of(F&& f) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0)
        .count();
}

}  // namespace

TEST_CASE("schema_ref_cycles_are_refused_with_the_cycle_named", "[schema][security]") {
    auto self = refusal_of(R"({"$ref": "#"})");
    CHECK(self.code() == mq::ErrorCode::kSchemaInvalid);
    CHECK(mq::code_name(self.code()) == "MQ_SCHEMA_INVALID");
    CHECK(mq::http_status(self.code()) == 422);
    CHECK(mq::exit_status(self.code()) == 2);
    CHECK_THAT(self.what(), Contains("$ref cycle"));
    CHECK(self.details().at("field") == "schema");

    auto loop = refusal_of(R"({"definitions": {"a": {"$ref": "#/definitions/b"},
                                               "b": {"$ref": "#/definitions/a"}},
                               "$ref": "#/definitions/a"})");
    CHECK_THAT(loop.what(), Contains("#/definitions/a -> #/definitions/b -> #/definitions/a"));
    // A loop nobody refers to, a ref that leads into one, a self ref below the root, and a
    // cycle through allOf/not back to an ancestor (same value, no descent) are all refused.
    for (
        const char* text : {
            R"({"definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}}})",
            R"({"properties": {"x": {"$ref": "#/definitions/c"}},
                 "definitions": {"c": {"$ref": "#/definitions/d"}, "d": {"allOf": [{"$ref": "#/definitions/c"}]}}})",
            R"({"properties": {"x": {"$ref": "#/properties/x"}}})",
            R"({"allOf": [{"$ref": "#"}]})",
            R"({"not": {"anyOf": [{"$ref": "#"}]}})",
            R"({"if": {"$ref": "#"}, "then": true})",
            R"({"dependencies": {"a": {"$ref": "#"}}})",
        }) {
        INFO(text);
        auto e = refusal_of(text);
        CHECK(e.code() == mq::ErrorCode::kSchemaInvalid);
        CHECK_THAT(e.what(), Contains("$ref cycle"));
    }
}

TEST_CASE("schema_remote_and_non_pointer_refs_are_refused", "[schema][security]") {
    for (const char* text :
         {R"({"$ref": "https://example.com/s.json"})", R"({"$ref": "other.json#/a"})",
          R"({"$ref": "#anchor"})", R"({"properties": {"a": {"$ref": "http://169.254.169.254/"}}})",
          R"({"$ref": "#/definitions/missing"})", R"({"$ref": 5})",
          R"({"$ref": "#/properties"})"}) {
        INFO(text);
        auto e = refusal_of(text);
        CHECK(e.code() == mq::ErrorCode::kSchemaInvalid);
        CHECK(e.details().contains("pointer"));
    }
    CHECK_THAT(refusal_of(R"({"properties": {"a": {"$ref": "http://x/"}}})").details().dump(),
               Contains("/properties/a/$ref"));
}

TEST_CASE("schema_size_depth_and_fan_out_are_limited", "[schema][security]") {
    auto deep = refusal_of(nested_properties(200));
    CHECK_THAT(deep.what(), Contains("deeper than"));
    // Deep enough to overflow a recursive walker: refused without recursion.
    std::string very_deep(200000, '[');
    very_deep = R"({"enum": )" + very_deep + std::string(200000, ']') + "}";
    CHECK(refusal_of(very_deep).code() == mq::ErrorCode::kSchemaInvalid);
    CHECK_NOTHROW(mq::PayloadSchema(json::parse(nested_properties(10))));

    json big = {{"type", "object"}, {"properties", json::object()}};
    for (int i = 0; i < 3000; ++i)
        big["properties"]["p" + std::to_string(i)] = {{"type", "string"}};
    CHECK_THAT(refusal_of(big.dump()).what(), Contains("larger than 64 KiB"));

    // Exponential expansion through shared definitions (a "billion laughs" for schemas).
    json laughs = {{"definitions", json::object()}};
    laughs["definitions"]["l0"] = {{"type", "string"}};
    for (int i = 1; i < 30; ++i) {
        std::string prev = "#/definitions/l" + std::to_string(i - 1);
        laughs["definitions"]["l" + std::to_string(i)] = {
            {"allOf", {{{"$ref", prev}}, {{"$ref", prev}}}}};
    }
    laughs["$ref"] = "#/definitions/l29";
    CHECK_THAT(refusal_of(laughs.dump()).what(), Contains("more than 1000 subschemas"));
}

TEST_CASE("schema_patterns_must_compile_under_re2", "[schema][security]") {
    auto backref = refusal_of(R"({"properties": {"a": {"pattern": "^(a)\\1$"}}})");
    CHECK_THAT(backref.what(), Contains("RE2"));
    CHECK(backref.details().at("pointer") == "/properties/a/pattern");
    CHECK_THAT(refusal_of(R"j({"pattern": "foo(?=bar)"})j").what(), Contains("RE2"));
    CHECK(refusal_of(R"({"patternProperties": {"(?<=x)y": {}}})").details().at("pointer") ==
          "/patternProperties/(?<=x)y");
    CHECK(refusal_of(R"({"pattern": "[unclosed"})").code() == mq::ErrorCode::kSchemaInvalid);
    CHECK(refusal_of(R"({"x-mq-budget": 0})").code() == mq::ErrorCode::kSchemaInvalid);
}

TEST_CASE("parse_payload_schema_checks_text_depth_before_parsing", "[schema][security]") {
    std::string deep = std::string(100000, '{') + std::string(100000, '}');
    try {
        mq::parse_payload_schema(deep, "deep.json");
        FAIL("accepted");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kSchemaInvalid);
        CHECK_THAT(e.what(), Contains("deep.json") && Contains("deeper than"));
    }
    CHECK_THROWS_AS(mq::parse_payload_schema("{not json", "x.json"), mq::ValidationError);
    CHECK(mq::parse_payload_schema(R"({"type": "string"})") == json{{"type", "string"}});
    CHECK_THROWS_AS(mq::parse_payload_schema(R"({"$ref": "#"})"), mq::SchemaInvalid);
}

TEST_CASE("patterns_run_on_re2_in_linear_time", "[schema][security]") {
    mq::PayloadSchema lower(json::parse(
        R"({"type": "object", "properties": {"s": {"type": "string", "pattern": "^[a-z]*$"}}})"));
    // 900 KB: std::regex recursed once per character and crashed here.
    std::string big(900 * 1024, 'a');
    CHECK(millis_of([&] { CHECK(outcome(lower, R"({"s": ")" + big + R"("})") == "ok"); }) < 2000);
    CHECK(outcome(lower, R"({"s": ")" + big + R"(A"})") == "MQ_SCHEMA_VALIDATION_ERROR");

    mq::PayloadSchema evil(json::parse(R"({"type": "string", "pattern": "^(a+)+$"})"));
    std::string attack = "\"" + std::string(31, 'a') + "!\"";
    CHECK(millis_of([&] { CHECK(outcome(evil, attack) == "MQ_SCHEMA_VALIDATION_ERROR"); }) < 500);
    CHECK(outcome(evil, "\"" + std::string(31, 'a') + "\"") == "ok");
}

TEST_CASE("ordinary_patterns_formats_and_pattern_properties_keep_their_meaning", "[schema]") {
    mq::PayloadSchema s(json::parse(R"({
      "type": "object",
      "properties": {
        "name": {"type": "string", "pattern": "^[a-z]+$"},
        "phone": {"type": "string", "pattern": "^\\d{3}-\\d{4}$"},
        "at": {"type": "string", "format": "date-time"},
        "day": {"type": "string", "format": "date"},
        "clock": {"type": "string", "format": "time"},
        "mail": {"type": "string", "format": "email"},
        "n": {"format": "date-time"},
        "tags": {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}}
      }})"));
    CHECK(outcome(s, R"({"name": "abc", "phone": "555-1234", "at": "2026-12-03T12:00:00Z",
                         "day": "2024-02-29", "clock": "23:59:60.5+01:00", "mail": "x",
                         "n": 5, "tags": {"ok": 1}})") == "ok");
    CHECK(outcome(s, R"({"name": "Abc"})") == "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(outcome(s, R"({"phone": "5551234"})") == "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(outcome(s, R"({"at": "2026-12-03 12:00:00"})") == "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(outcome(s, R"({"at": "2026-02-30T12:00:00Z"})") == "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(outcome(s, R"({"day": "2023-02-29"})") == "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(outcome(s, R"({"clock": "24:00:00Z"})") == "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(outcome(s, R"({"tags": {"Bad": 1}})") == "MQ_SCHEMA_VALIDATION_ERROR");
    try {
        s.check(R"({"name": "ABC"})");
    } catch (const mq::Error& e) {
        CHECK(e.details().at("errors").at(0).at("path") == "/name");
        CHECK_THAT(e.what(), Contains("pattern"));
    }

    // patternProperties with properties and additionalProperties, and a $ref inside.
    mq::PayloadSchema pp(json::parse(R"({
      "type": "object",
      "definitions": {"pos": {"type": "integer", "minimum": 1}},
      "properties": {"id": {"type": "string"}},
      "patternProperties": {"^n_": {"$ref": "#/definitions/pos"}, "_s$": {"type": "string"}},
      "additionalProperties": false})"));
    CHECK(outcome(pp, R"({"id": "x", "n_a": 3, "b_s": "y", "n_s": "q"})") ==
          "MQ_SCHEMA_VALIDATION_ERROR");  // n_s must be both a positive integer and a string
    CHECK(outcome(pp, R"({"id": "x", "n_a": 3, "b_s": "y"})") == "ok");
    CHECK(outcome(pp, R"({"n_a": 0})") == "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(outcome(pp, R"({"other": 1})") == "MQ_SCHEMA_VALIDATION_ERROR");
    try {
        pp.check(R"({"n_a": 0})");
        FAIL("accepted");
    } catch (const mq::Error& e) {
        CHECK(e.details().at("errors").at(0).at("path") == "/n_a");
    }
    mq::PayloadSchema extra(json::parse(R"({
      "patternProperties": {"^x": {"type": "integer"}},
      "additionalProperties": {"type": "string"}})"));
    CHECK(outcome(extra, R"({"x1": 1, "y": "s"})") == "ok");
    CHECK(outcome(extra, R"({"y": 1})") == "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(outcome(extra, R"({"x1": "s"})") == "MQ_SCHEMA_VALIDATION_ERROR");
    // Inside anyOf the rules still count as one alternative.
    mq::PayloadSchema any(
        json::parse(R"({"anyOf": [{"type": "string", "pattern": "^a"}, {"type": "integer"}]})"));
    CHECK(outcome(any, R"("abc")") == "ok");
    CHECK(outcome(any, "5") == "ok");
    CHECK(outcome(any, R"("bcd")") == "MQ_SCHEMA_VALIDATION_ERROR");
    // allOf with a $ref into allOf (its indexes move behind our step counter).
    mq::PayloadSchema all(json::parse(
        R"({"allOf": [{"type": "object"}, {"required": ["a"]}],
            "properties": {"b": {"$ref": "#/allOf/1"}}})"));
    CHECK(outcome(all, R"({"a": 1, "b": {"a": 2}})") == "ok");
    CHECK(outcome(all, R"({"a": 1, "b": {}})") == "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(outcome(all, R"({"b": {"a": 1}})") == "MQ_SCHEMA_VALIDATION_ERROR");
}

TEST_CASE("recursive_schemas_through_properties_still_work", "[schema]") {
    mq::PayloadSchema tree(json::parse(R"({
      "type": "object", "required": ["v"],
      "properties": {"v": {"type": "integer"},
                     "children": {"type": "array", "items": {"$ref": "#"}}}})"));
    CHECK(outcome(tree, R"({"v": 1, "children": [{"v": 2, "children": [{"v": 3}]}]})") == "ok");
    CHECK(outcome(tree, R"({"v": 1, "children": [{"v": "x"}]})") == "MQ_SCHEMA_VALIDATION_ERROR");
}

TEST_CASE("unique_items_is_bounded_and_fast", "[schema][security]") {
    mq::PayloadSchema s(json::parse(R"({"type": "array", "uniqueItems": true})"));
    CHECK(outcome(s, "[1, 2, 3]") == "ok");
    CHECK(outcome(s, R"([1, {"a": [1]}, 2, {"a": [1]}])") == "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(outcome(s, "[1, 1.0]") == "MQ_SCHEMA_VALIDATION_ERROR");
    std::string many = "[";
    for (int i = 0; i < 10000; ++i) many += (i ? "," : "") + std::to_string(i);
    many += "]";
    CHECK(millis_of([&] { CHECK(outcome(s, many) == "ok"); }) < 2000);
    std::string huge = "[";
    for (int i = 0; i < 120000; ++i) huge += (i ? "," : "") + std::to_string(i);
    huge += "]";
    CHECK(millis_of([&] {
              try {
                  s.check(huge);
                  FAIL("accepted");
              } catch (const mq::Error& e) {
                  CHECK(e.code() == mq::ErrorCode::kSchemaValidation);
                  CHECK_THAT(e.what(), Contains("at most 10000"));
              }
          }) < 2000);
}

TEST_CASE("payload_depth_and_work_are_bounded", "[schema][security]") {
    mq::PayloadSchema s(json::parse(R"({"type": "array", "items": {"type": "array"}})"));
    std::string deep = std::string(100000, '[') + std::string(100000, ']');
    try {
        s.check(deep);
        FAIL("accepted");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kValidation);
        CHECK(e.details().at("field") == "payload");
    }
    CHECK_THROWS_AS(s.check_value(json::parse(std::string(100, '[') + std::string(100, ']'))),
                    mq::ValidationError);

    // Every element against ~1000 alternatives that all fail: the step budget ends it.
    json fan = {{"type", "array"}, {"contains", {{"anyOf", json::array()}}}};
    for (int i = 0; i < 900; ++i)
        fan["contains"]["anyOf"].push_back({{"type", "string"}, {"minLength", i}});
    mq::PayloadSchema wide(fan);
    std::string ints = "[";
    for (int i = 0; i < 100000; ++i) ints += (i ? "," : "") + std::to_string(i % 10);
    ints += "]";
    auto ms = millis_of([&] {
        try {
            wide.check(ints);
            FAIL("accepted");
        } catch (const mq::Error& e) {
            CHECK(e.code() == mq::ErrorCode::kSchemaValidation);
            CHECK_THAT(e.what(), Contains("steps") || Contains("longer than"));
        }
    });
    CHECK(ms < 4000);
}
