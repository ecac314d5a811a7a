// core/codec: hex, base64 (standard and url-safe), digests, HMAC, constant-time compare
// and JSON string escaping, including hostile input.
#include "mq/core/codec.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace mq::codec;
using namespace std::string_literals;

TEST_CASE("hex_round_trips_every_byte_and_reads_either_case", "[codec]") {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    std::string text = hex_encode(all);
    CHECK(text.size() == 512);
    CHECK(text.substr(0, 8) == "00010203");
    CHECK(text.substr(text.size() - 4) == "feff");
    CHECK(hex_decode(text) == all);
    CHECK(hex_decode("DEADbeef") == "\xde\xad\xbe\xef"s);
    CHECK(hex_encode("") == "");
    CHECK(hex_decode("") == ""s);
    std::string out;
    append_hex_byte(out, 0xAB, true);
    append_hex_byte(out, 0x0c);
    CHECK(out == "AB0c");
}

TEST_CASE("hex_decode_refuses_odd_length_and_non_hex_characters", "[codec]") {
    CHECK_FALSE(hex_decode("abc").has_value());
    CHECK_FALSE(hex_decode("0g").has_value());
    CHECK_FALSE(hex_decode("zz").has_value());
    CHECK_FALSE(hex_decode(" 00").has_value());
    CHECK_FALSE(hex_decode("0x00").has_value());
    CHECK_FALSE(hex_decode("00\n"s).has_value());
    CHECK_FALSE(hex_decode("\0\0"s).has_value());
}

TEST_CASE("base64_matches_rfc4648_test_vectors_with_padding", "[codec]") {
    const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                           {"f", "Zg=="},
                                                           {"fo", "Zm8="},
                                                           {"foo", "Zm9v"},
                                                           {"foob", "Zm9vYg=="},
                                                           {"fooba", "Zm9vYmE="},
                                                           {"foobar", "Zm9vYmFy"}};
    for (auto [plain, encoded] : vectors) {
        INFO(plain);
        CHECK(base64_encode(plain) == encoded);
        CHECK(base64_decode(encoded) == std::string(plain));
    }
    std::string binary = "\x00\xff\xfe\x01\x80"s;
    CHECK(base64_decode(base64_encode(binary)) == binary);
    CHECK(base64_encode("\xfb\xff"s) == "+/8=");
}

TEST_CASE("base64_decode_refuses_bad_characters_and_misplaced_padding", "[codec]") {
    for (const char* bad : {"Zg=", "Zg", "Z", "Zm9v!A==", "Zm9v\nYg==", " Zm9v", "Zm9v ",
                            "Z===", "=Zg=", "Zg==Zg==", "Zm=v", "-_8=", "Zm9vYg=\x01"}) {
        INFO(bad);
        CHECK_FALSE(base64_decode(bad).has_value());
    }
    CHECK_FALSE(base64_decode("Zm9v\0AAA"s).has_value());
}

TEST_CASE("base64url_has_no_padding_and_the_url_safe_alphabet", "[codec]") {
    CHECK(base64url_encode("\xfb\xff"s) == "-_8");
    CHECK(base64url_encode("f") == "Zg");
    CHECK(base64url_encode("fo") == "Zm8");
    CHECK(base64url_encode("foo") == "Zm9v");
    CHECK(base64url_decode("-_8") == "\xfb\xff"s);
    CHECK(base64url_decode("Zg") == "f"s);
    CHECK(base64url_decode("") == ""s);
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(255 - i);
    CHECK(base64url_decode(base64url_encode(all)) == all);
}

TEST_CASE("base64url_decode_refuses_padding_other_alphabets_and_a_second_text_for_a_value",
          "[codec]") {
    CHECK_FALSE(base64url_decode("Zg==").has_value());  // padding
    CHECK_FALSE(base64url_decode("+/8").has_value());   // standard alphabet
    CHECK_FALSE(base64url_decode("Z").has_value());     // 6 bits cannot be a byte
    CHECK_FALSE(
        base64url_decode("Zh").has_value());  // non-zero unused bits: "Zg" is the text of "f"
    CHECK_FALSE(base64url_decode("Zg.").has_value());
}

TEST_CASE("sha256_and_hmac_match_published_test_vectors", "[codec]") {
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256("abc").size() == 32);
    CHECK(hex_encode(sha256("abc")) == sha256_hex("abc"));
    CHECK(sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
    // RFC 4231 test case 2.
    CHECK(hex_encode(hmac_sha256("Jefe", "what do ya want for nothing?")) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    // Parts are fed in order, as one message.
    CHECK(hmac_sha256("Jefe", {"what do ya ", "", "want for nothing?"}) ==
          hmac_sha256("Jefe", "what do ya want for nothing?"));
    // An empty key is a valid HMAC key (RFC 2104 pads it with zeros).
    CHECK(hex_encode(hmac_sha256("", "")) ==
          "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST_CASE("constant_time_equal_compares_content_and_length", "[codec]") {
    CHECK(constant_time_equal("", ""));
    CHECK(constant_time_equal("abc", "abc"));
    CHECK_FALSE(constant_time_equal("abc", "abd"));
    CHECK_FALSE(constant_time_equal("abc", "abcd"));
    CHECK_FALSE(constant_time_equal("", "a"));
    CHECK(constant_time_equal("a\0b"s, "a\0b"s));
    CHECK_FALSE(constant_time_equal("a\0b"s, "a\0c"s));
}

TEST_CASE("json_string_escapes_controls_and_replaces_invalid_utf8_so_the_output_always_parses",
          "[codec]") {
    CHECK(json_string("plain") == "\"plain\"");
    CHECK(json_string("q\"b\\") == "\"q\\\"b\\\\\"");
    CHECK(json_string("\n\r\t\b\f") == "\"\\n\\r\\t\\b\\f\"");
    CHECK(json_string("\x01\x1f"s) == "\"\\u0001\\u001f\"");
    CHECK(json_string("\0"s) == "\"\\u0000\"");
    CHECK(json_string("h\xc3\xa9llo \xf0\x9f\x98\x80") == "\"h\xc3\xa9llo \xf0\x9f\x98\x80\"");
    // Invalid: lone continuation, truncated sequence, overlong, surrogate, above U+10FFFF.
    for (std::string bad :
         {"\x80"s, "\xc3"s, "\xc0\xaf"s, "\xed\xa0\x80"s, "\xf4\x90\x80\x80"s, "\xff"s}) {
        std::string out = json_string(bad);
        INFO(hex_encode(bad));
        CHECK(out.find("\xef\xbf\xbd") != std::string::npos);
        auto parsed = nlohmann::json::parse(out);
        CHECK(parsed.is_string());
    }
    std::string hostile;
    for (int i = 0; i < 256; ++i) hostile += static_cast<char>(i);
    auto parsed = nlohmann::json::parse(json_string(hostile));
    REQUIRE(parsed.is_string());
    CHECK(parsed.get<std::string>().substr(0, 32) == hostile.substr(0, 32));
    std::string appended = "x=";
    append_json_string(appended, "y");
    CHECK(appended == "x=\"y\"");
}
