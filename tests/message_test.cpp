// Stream entry wire format (docs/wire-format.md): short field names, empty optional
// fields left out, unknown fields tolerated on read.

#include "mq/core/message.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "mq/error.hpp"

namespace {

mq::Message full_message() {
    mq::Message m;
    m.id = "017f22e2-79b0-7cc3-98c4-dc0c0c07398f";
    m.key = "customer-42";
    m.headers_json = R"({"source":"billing"})";
    m.payload = R"({"amount":10})";
    m.content_type = "application/json";
    m.published_ms = 1'795'255'200'250;
    m.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    m.encryption_key_id = "k1";
    return m;
}

mq::FieldList pairs(const std::vector<std::string>& flat) {
    REQUIRE(flat.size() % 2 == 0);
    mq::FieldList out;
    for (std::size_t i = 0; i < flat.size(); i += 2) out.emplace_back(flat[i], flat[i + 1]);
    return out;
}

void check_same(const mq::Message& a, const mq::Message& b) {
    CHECK(a.id == b.id);
    CHECK(a.key == b.key);
    CHECK(a.headers_json == b.headers_json);
    CHECK(a.payload == b.payload);
    CHECK(a.content_type == b.content_type);
    CHECK(a.published_ms == b.published_ms);
    CHECK(a.trace_id == b.trace_id);
    CHECK(a.encryption_key_id == b.encryption_key_id);
}

}  // namespace

TEST_CASE("wire_field_names_are_the_documented_short_names", "[message]") {
    CHECK(std::string(mq::wire::kId) == "id");
    CHECK(std::string(mq::wire::kKey) == "k");
    CHECK(std::string(mq::wire::kHeaders) == "h");
    CHECK(std::string(mq::wire::kPayload) == "p");
    CHECK(std::string(mq::wire::kContentType) == "ct");
    CHECK(std::string(mq::wire::kPublished) == "t");
    CHECK(std::string(mq::wire::kTrace) == "tr");
    CHECK(std::string(mq::wire::kEncryptionKey) == "ek");
}

TEST_CASE("encode_fields_writes_every_set_field_in_wire_order", "[message]") {
    std::vector<std::string> out;
    mq::encode_fields(full_message(), out);
    const std::vector<std::string> expected = {
        "id", "017f22e2-79b0-7cc3-98c4-dc0c0c07398f",
        "k",  "customer-42",
        "h",  R"({"source":"billing"})",
        "p",  R"({"amount":10})",
        "ct", "application/json",
        "t",  "1795255200250",
        "tr", "4bf92f3577b34da6a3ce929d0e0e4736",
        "ek", "k1",
    };
    CHECK(out == expected);
}

TEST_CASE("encode_fields_omits_empty_optional_fields", "[message]") {
    mq::Message m;
    m.id = "id-1";
    m.payload = "hello";
    m.published_ms = 5;
    std::vector<std::string> out;
    mq::encode_fields(m, out);
    CHECK(out == std::vector<std::string>{"id", "id-1", "p", "hello", "t", "5"});
}

TEST_CASE("encode_fields_keeps_an_empty_payload", "[message]") {
    mq::Message m;
    m.id = "id-1";
    std::vector<std::string> out;
    mq::encode_fields(m, out);
    CHECK(out == std::vector<std::string>{"id", "id-1", "p", "", "t", "0"});
}

TEST_CASE("encode_fields_appends_to_what_is_already_there", "[message]") {
    std::vector<std::string> out = {"XADD", "stream", "*"};
    mq::Message m;
    m.id = "x";
    m.payload = "y";
    mq::encode_fields(m, out);
    REQUIRE(out.size() == 9);
    CHECK(out[0] == "XADD");
    CHECK(out[3] == "id");
    CHECK(out[4] == "x");
}

TEST_CASE("decode_fields_round_trips_encode_fields", "[message]") {
    const mq::Message original = full_message();
    std::vector<std::string> flat;
    mq::encode_fields(original, flat);
    CHECK(flat.size() == 16);  // all eight fields present
    check_same(mq::decode_fields(pairs(flat)), original);
}

TEST_CASE("decode_fields_round_trips_a_minimal_message", "[message]") {
    mq::Message original;
    original.id = "id-1";
    original.payload = "bytes";
    original.published_ms = 42;
    std::vector<std::string> flat;
    mq::encode_fields(original, flat);
    CHECK(flat.size() == 6);  // id, p, t only
    check_same(mq::decode_fields(pairs(flat)), original);
}

TEST_CASE("decode_fields_keeps_binary_payload_bytes", "[message]") {
    mq::Message original;
    original.id = "id-1";
    original.payload = std::string("\0\x01\xff\n\r", 5);
    std::vector<std::string> flat;
    mq::encode_fields(original, flat);
    const mq::Message decoded = mq::decode_fields(pairs(flat));
    CHECK(decoded.payload.size() == 5);
    CHECK(decoded.payload == original.payload);
}

TEST_CASE("decode_fields_ignores_unknown_fields_from_newer_writers", "[message]") {
    const mq::FieldList fields = {
        {"id", "id-1"}, {"future", "x"}, {"p", "hello"}, {"zz", ""}, {"t", "7"}, {"ID", "other"},
    };
    const mq::Message m = mq::decode_fields(fields);
    CHECK(m.id == "id-1");
    CHECK(m.payload == "hello");
    CHECK(m.published_ms == 7);
    CHECK(m.key.empty());
    CHECK(m.headers_json.empty());
}

TEST_CASE("decode_fields_does_not_depend_on_field_order", "[message]") {
    const mq::FieldList fields = {{"t", "9"}, {"p", "body"}, {"k", "key"}, {"id", "id-1"}};
    const mq::Message m = mq::decode_fields(fields);
    CHECK(m.id == "id-1");
    CHECK(m.key == "key");
    CHECK(m.payload == "body");
    CHECK(m.published_ms == 9);
}

TEST_CASE("decode_fields_without_id_is_not_a_message", "[message]") {
    CHECK_THROWS_AS(mq::decode_fields({{"p", "hello"}, {"t", "1"}}), mq::ValidationError);
}

TEST_CASE("decode_fields_without_payload_is_not_a_message", "[message]") {
    CHECK_THROWS_AS(mq::decode_fields({{"id", "id-1"}, {"t", "1"}}), mq::ValidationError);
}

TEST_CASE("decode_fields_of_nothing_is_not_a_message", "[message]") {
    CHECK_THROWS_AS(mq::decode_fields({}), mq::ValidationError);
    CHECK_THROWS_WITH(mq::decode_fields({}), Catch::Matchers::Contains("not an mq message"));
}

TEST_CASE("decode_fields_accepts_an_empty_id_and_payload_when_present", "[message]") {
    const mq::Message m = mq::decode_fields({{"id", ""}, {"p", ""}});
    CHECK(m.id.empty());
    CHECK(m.payload.empty());
    CHECK(m.published_ms == 0);
}
