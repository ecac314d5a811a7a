// The publish envelope as producers send it, and the limits a request must respect.
// Only parsing and validation: nothing here talks to Redis.

#include <catch2/catch.hpp>
#include <string>

#include "mq/core/time.hpp"
#include "mq/error.hpp"
#include "mq/publish/publisher.hpp"

using Catch::Matchers::Contains;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

// The ErrorCode and the "field" detail of whatever `fn` throws.
template <class Fn>
std::pair<mq::ErrorCode, std::string> error_of(Fn&& fn) {
    try {
        fn();
    } catch (const mq::Error& e) {
        std::string field =
            e.details().contains("field") ? e.details()["field"].get<std::string>() : "";
        return {e.code(), field};
    }
    return {mq::ErrorCode::kInternal, "<no error>"};
}

mq::PublishRequest parse(const char* text) { return mq::parse_publish_request(json::parse(text)); }

}  // namespace

// ---- parse_publish_request -------------------------------------------------------------

TEST_CASE("publish_string_payload_is_sent_verbatim_without_content_type", "[publish]") {
    const auto r = parse(R"({"payload": "{\"not\": \"parsed\"}"})");
    CHECK(r.payload == R"({"not": "parsed"})");
    CHECK(r.content_type.empty());
    CHECK(r.key.empty());
    CHECK(r.headers.empty());
    CHECK_FALSE(r.delay.has_value());
    CHECK_FALSE(r.deliver_at_ms.has_value());
}

TEST_CASE("publish_empty_string_payload_is_allowed", "[publish]") {
    CHECK(parse(R"({"payload": ""})").payload.empty());
}

TEST_CASE("publish_object_payload_is_serialised_as_json", "[publish]") {
    const auto r = parse(R"({"payload": {"order": 42, "items": ["a", "b"]}})");
    CHECK(json::parse(r.payload) == json{{"order", 42}, {"items", {"a", "b"}}});
    CHECK(r.content_type == "application/json");
}

TEST_CASE("publish_number_array_and_bool_payloads_are_serialised_as_json", "[publish]") {
    CHECK(parse(R"({"payload": 42})").payload == "42");
    CHECK(parse(R"({"payload": 42})").content_type == "application/json");
    CHECK(parse(R"({"payload": [1,2]})").payload == "[1,2]");
    CHECK(parse(R"({"payload": true})").payload == "true");
}

TEST_CASE("publish_explicit_content_type_wins_over_json_payload", "[publish]") {
    // Whichever order the fields come in.
    CHECK(parse(R"({"payload": {"a": 1}, "content_type": "application/vnd.acme+json"})")
              .content_type == "application/vnd.acme+json");
    CHECK(parse(R"({"content_type": "text/plain", "payload": {"a": 1}})").content_type ==
          "text/plain");
    CHECK(parse(R"({"contentType": "text/csv", "payload": [1]})").content_type == "text/csv");
    CHECK(parse(R"({"payload": "a,b", "content_type": "text/csv"})").content_type == "text/csv");
}

TEST_CASE("publish_reads_every_option_in_snake_case", "[publish]") {
    const auto r = parse(R"({
        "payload": "hello",
        "key": "customer-42",
        "headers": {"source": "billing", "x-empty": ""},
        "idempotency_key": "order-42",
        "content_type": "text/plain",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"
    })");
    CHECK(r.payload == "hello");
    CHECK(r.key == "customer-42");
    CHECK(r.headers == std::map<std::string, std::string>{{"source", "billing"}, {"x-empty", ""}});
    CHECK(r.idempotency_key == "order-42");
    CHECK(r.content_type == "text/plain");
    CHECK(r.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST_CASE("publish_reads_every_option_in_camel_case", "[publish]") {
    const auto r = parse(R"({
        "payload": "hello",
        "idempotencyKey": "order-42",
        "contentType": "text/plain",
        "traceId": "abc",
        "delayMs": 1500
    })");
    CHECK(r.idempotency_key == "order-42");
    CHECK(r.content_type == "text/plain");
    CHECK(r.trace_id == "abc");
    REQUIRE(r.delay.has_value());
    CHECK(*r.delay == milliseconds(1500));
    const auto at = parse(R"({"payload": "x", "deliverAt": "2026-11-21T10:00:00Z"})");
    CHECK(at.deliver_at_ms == std::optional<std::int64_t>(1'795'255'200'000));
}

TEST_CASE("publish_headers_must_be_an_object_of_strings", "[publish]") {
    CHECK(error_of([] { parse(R"({"payload": "x", "headers": {"n": 1}})"); }) ==
          std::pair{mq::ErrorCode::kValidation, std::string("headers")});
    CHECK_THROWS_WITH(parse(R"({"payload": "x", "headers": {"n": 1}})"), Contains("header \"n\""));
    CHECK_THROWS_AS(parse(R"({"payload": "x", "headers": {"n": null}})"), mq::ValidationError);
    CHECK_THROWS_AS(parse(R"({"payload": "x", "headers": {"n": {"a": "b"}}})"),
                    mq::ValidationError);
    CHECK_THROWS_AS(parse(R"({"payload": "x", "headers": ["a", "b"]})"), mq::ValidationError);
    CHECK_THROWS_AS(parse(R"({"payload": "x", "headers": "a=b"})"), mq::ValidationError);
}

TEST_CASE("publish_string_options_must_be_strings", "[publish]") {
    for (const char* text :
         {R"({"payload": "x", "key": 42})", R"({"payload": "x", "key": null})",
          R"({"payload": "x", "idempotency_key": 1})", R"({"payload": "x", "content_type": ["a"]})",
          R"({"payload": "x", "trace_id": true})", R"({"payload": "x", "delay": 5000})",
          R"({"payload": "x", "deliver_at": 1795255200000})"}) {
        INFO(text);
        CHECK_THROWS_AS(parse(text), mq::ValidationError);
    }
}

TEST_CASE("publish_unknown_field_is_refused_naming_it", "[publish]") {
    CHECK(error_of([] { parse(R"({"payload": "x", "delay_seconds": 5})"); }) ==
          std::pair{mq::ErrorCode::kValidation, std::string("delay_seconds")});
    CHECK_THROWS_WITH(parse(R"({"payload": "x", "kye": "typo"})"),
                      Contains("unknown field \"kye\""));
    CHECK_THROWS_AS(parse(R"({"payload": "x", "Payload": "y"})"), mq::ValidationError);
}

TEST_CASE("publish_delay_is_read_as_a_duration", "[publish]") {
    const auto r = parse(R"({"payload": "x", "delay": "5m"})");
    REQUIRE(r.delay.has_value());
    CHECK(*r.delay == milliseconds(300'000));
    CHECK_FALSE(r.deliver_at_ms.has_value());
    CHECK(*parse(R"({"payload": "x", "delay": "250ms"})").delay == milliseconds(250));
}

TEST_CASE("publish_bad_delay_is_refused_naming_delay", "[publish]") {
    CHECK(error_of([] { parse(R"({"payload": "x", "delay": "5x"})"); }) ==
          std::pair{mq::ErrorCode::kValidation, std::string("delay")});
    CHECK_THROWS_AS(parse(R"({"payload": "x", "delay": "-1s"})"), mq::ValidationError);
}

TEST_CASE("publish_delay_ms_is_a_non_negative_integer", "[publish]") {
    const auto r = parse(R"({"payload": "x", "delay_ms": 1500})");
    REQUIRE(r.delay.has_value());
    CHECK(*r.delay == milliseconds(1500));
    CHECK(*parse(R"({"payload": "x", "delay_ms": 0})").delay == milliseconds(0));
    for (const char* text :
         {R"({"payload": "x", "delay_ms": -1})", R"({"payload": "x", "delay_ms": 1.5})",
          R"({"payload": "x", "delay_ms": "1500"})",
          R"({"payload": "x", "delay_ms": 18446744073709551615})"}) {
        INFO(text);
        CHECK_THROWS_AS(parse(text), mq::ValidationError);
    }
}

TEST_CASE("publish_deliver_at_is_read_as_rfc3339", "[publish]") {
    const auto r = parse(R"({"payload": "x", "deliver_at": "2026-11-21T11:00:00.250+01:00"})");
    REQUIRE(r.deliver_at_ms.has_value());
    CHECK(*r.deliver_at_ms == 1'795'255'200'250);
    CHECK_FALSE(r.delay.has_value());
}

TEST_CASE("publish_bad_deliver_at_is_refused_naming_deliver_at", "[publish]") {
    CHECK(error_of([] { parse(R"({"payload": "x", "deliver_at": "tomorrow"})"); }) ==
          std::pair{mq::ErrorCode::kValidation, std::string("deliver_at")});
    CHECK_THROWS_AS(parse(R"({"payload": "x", "deliver_at": "2026-11-21T10:00:00"})"),
                    mq::ValidationError);
}

TEST_CASE("publish_without_payload_is_refused", "[publish]") {
    CHECK(error_of([] { parse(R"({"key": "k"})"); }) ==
          std::pair{mq::ErrorCode::kValidation, std::string("payload")});
    CHECK_THROWS_WITH(parse("{}"), Contains("missing \"payload\""));
}

TEST_CASE("publish_envelope_that_is_not_an_object_is_refused", "[publish]") {
    for (const char* text : {R"("hello")", "[]", R"([{"payload": "x"}])", "42", "null", "true"}) {
        INFO(text);
        CHECK_THROWS_AS(parse(text), mq::ValidationError);
    }
}

// ---- validate --------------------------------------------------------------------------

TEST_CASE("publish_payload_at_the_size_limit_is_accepted", "[publish]") {
    mq::PublishLimits limits;
    limits.max_message_size = 16;
    mq::PublishRequest r;
    r.payload = std::string(16, 'x');
    CHECK_NOTHROW(mq::validate(r, limits));
}

TEST_CASE("publish_payload_over_the_size_limit_is_payload_too_large", "[publish]") {
    mq::PublishLimits limits;
    limits.max_message_size = 16;
    mq::PublishRequest r;
    r.payload = std::string(17, 'x');
    try {
        mq::validate(r, limits);
        FAIL("a 17-byte payload passed a 16-byte limit");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kPayloadTooLarge);
        CHECK(mq::http_status(e.code()) == 413);
        CHECK(e.details()["size"] == 17);
        CHECK(e.details()["limit"] == 16);
        CHECK_THAT(std::string(e.what()), Contains("MAX_MESSAGE_SIZE"));
    }
}

TEST_CASE("publish_default_size_limit_is_one_mebibyte", "[publish]") {
    mq::PublishRequest r;
    r.payload = std::string(1048576, 'x');
    CHECK_NOTHROW(mq::validate(r, {}));
    r.payload.push_back('x');
    CHECK(error_of([&] { mq::validate(r, {}); }).first == mq::ErrorCode::kPayloadTooLarge);
}

TEST_CASE("publish_key_longer_than_the_limit_is_refused", "[publish]") {
    mq::PublishLimits limits;
    limits.max_key_size = 8;
    mq::PublishRequest r;
    r.key = std::string(8, 'k');
    CHECK_NOTHROW(mq::validate(r, limits));
    r.key.push_back('k');
    CHECK(error_of([&] { mq::validate(r, limits); }) ==
          std::pair{mq::ErrorCode::kValidation, std::string("key")});
}

TEST_CASE("publish_idempotency_key_longer_than_the_limit_is_refused", "[publish]") {
    mq::PublishLimits limits;
    limits.max_key_size = 8;
    mq::PublishRequest r;
    r.idempotency_key = std::string(9, 'i');
    CHECK(error_of([&] { mq::validate(r, limits); }) ==
          std::pair{mq::ErrorCode::kValidation, std::string("idempotency_key")});
}

TEST_CASE("publish_too_many_headers_are_refused", "[publish]") {
    mq::PublishLimits limits;
    limits.max_headers = 3;
    mq::PublishRequest r;
    for (int i = 0; i < 3; ++i) r.headers["h" + std::to_string(i)] = "v";
    CHECK_NOTHROW(mq::validate(r, limits));
    r.headers["h3"] = "v";
    CHECK(error_of([&] { mq::validate(r, limits); }) ==
          std::pair{mq::ErrorCode::kValidation, std::string("headers")});
}

TEST_CASE("publish_headers_over_64_kib_in_all_are_refused", "[publish]") {
    mq::PublishRequest r;
    r.headers["a"] = std::string(40000, 'x');
    r.headers["bb"] = std::string(65536 - 40000 - 3, 'y');  // exactly at the limit
    CHECK_NOTHROW(mq::validate(r, {}));
    r.headers["bb"] += "y";
    CHECK(error_of([&] { mq::validate(r, {}); }) ==
          std::pair{mq::ErrorCode::kValidation, std::string("headers")});
}

TEST_CASE("publish_empty_header_name_is_refused", "[publish]") {
    mq::PublishRequest r;
    r.headers[""] = "v";
    CHECK(error_of([&] { mq::validate(r, {}); }) ==
          std::pair{mq::ErrorCode::kValidation, std::string("headers")});
}

TEST_CASE("publish_negative_delay_is_refused", "[publish]") {
    mq::PublishRequest r;
    r.delay = milliseconds(-1);
    CHECK(error_of([&] { mq::validate(r, {}); }) ==
          std::pair{mq::ErrorCode::kValidation, std::string("delay")});
    r.delay = milliseconds(0);
    CHECK_NOTHROW(mq::validate(r, {}));
}

TEST_CASE("publish_delay_and_deliver_at_together_are_refused", "[publish]") {
    mq::PublishRequest r;
    r.delay = milliseconds(1000);
    r.deliver_at_ms = 1'795'255'200'000;
    CHECK(error_of([&] { mq::validate(r, {}); }) ==
          std::pair{mq::ErrorCode::kValidation, std::string("deliver_at")});

    const auto parsed =
        parse(R"({"payload": "x", "delay": "5m", "deliver_at": "2026-11-21T10:00:00Z"})");
    CHECK_THROWS_AS(mq::validate(parsed, {}), mq::ValidationError);
}

TEST_CASE("publish_only_delay_or_only_deliver_at_is_valid", "[publish]") {
    mq::PublishRequest delayed;
    delayed.delay = milliseconds(1000);
    CHECK_NOTHROW(mq::validate(delayed, {}));
    mq::PublishRequest scheduled;
    scheduled.deliver_at_ms = 1'795'255'200'000;
    CHECK_NOTHROW(mq::validate(scheduled, {}));
}

TEST_CASE("publish_parsed_full_envelope_passes_validation", "[publish]") {
    const auto r = parse(R"({"payload": {"a": 1}, "key": "k", "headers": {"h": "v"},
                              "idempotency_key": "i", "delay": "90s"})");
    CHECK_NOTHROW(mq::validate(r, {}));
}

// Issue 11: `--delay 9223372036854775807ms` and `--at 0000-01-01T00:00:00Z` were accepted;
// a delay_ms or deliver_at beyond them in an envelope is refused naming the field.
TEST_CASE("publish_delay_and_delivery_time_out_of_range_are_refused", "[publish][security]") {
    mq::PublishLimits limits;
    auto big = parse(R"({"payload": "x", "delay_ms": 9223372036854775807})");
    CHECK(error_of([&] { mq::validate(big, limits); }) ==
          std::pair{mq::ErrorCode::kValidation, std::string("delay")});
    auto past = parse(R"({"payload": "x", "deliver_at": "0000-01-01T00:00:00Z"})");
    CHECK(error_of([&] { mq::validate(past, limits); }) ==
          std::pair{mq::ErrorCode::kValidation, std::string("deliver_at")});
    auto far = parse(R"({"payload": "x", "deliver_at": "9999-01-01T00:00:00Z"})");
    CHECK(error_of([&] { mq::validate(far, limits); }).second == "deliver_at");
    auto ok = parse(R"({"payload": "x", "delay": "36500d"})");
    CHECK_NOTHROW(mq::validate(ok, limits));
    auto epoch = parse(R"({"payload": "x", "deliver_at": "1970-01-01T00:00:00Z"})");
    CHECK_NOTHROW(mq::validate(epoch, limits));
}
