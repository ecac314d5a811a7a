// The one parser for untrusted JSON (mq::parse_json) and the bounded file reader
// (mq::read_input_file): depth, numbers out of range, invalid UTF-8, huge and odd files.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "mq/core/input_file.hpp"
#include "mq/core/json.hpp"
#include "mq/error.hpp"

namespace {

// The ValidationError parse_json throws for `text`, or FAIL.
mq::Error refusal(const std::string& text, mq::JsonLimits limits = {}) {
    try {
        mq::parse_json(text, "request body", limits);
    } catch (const mq::Error& e) {
        return e;
    }
    FAIL("accepted: " << text.substr(0, 80));
    return mq::Error(mq::ErrorCode::kInternal, "unreachable");
}

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

TEST_CASE("parse_json builds the same value as nlohmann for ordinary documents", "[json]") {
    const std::string doc =
        R"({"a":[1,-2,3.5,"x",null,true,{"b":{}}],"c":{"d":[[],[{}]]},"e":18446744073709551615})";
    CHECK(mq::parse_json(doc) == nlohmann::json::parse(doc));
    CHECK(mq::parse_json("  \"s\" ") == "s");
    CHECK(mq::parse_json("[]") == nlohmann::json::array());
}

TEST_CASE("parse_json refuses nesting past the limit without recursing", "[json][security]") {
    CHECK_NOTHROW(mq::parse_json(nested(mq::kMaxJsonDepth)));
    auto e = refusal(nested(mq::kMaxJsonDepth + 1));
    CHECK(e.code() == mq::ErrorCode::kValidation);
    CHECK(std::string(e.what()).find("nested deeper than 64") != std::string::npos);
    // A million open brackets: refused at level 65, never a stack overflow.
    CHECK(refusal(std::string(1000000, '[')).code() == mq::ErrorCode::kValidation);
    CHECK(refusal(std::string(500000, '{') + "").code() == mq::ErrorCode::kValidation);
    CHECK_THROWS_AS(mq::parse_json(nested(10), "x", {5, 0}), mq::ValidationError);
}

TEST_CASE("parse_json names the field of a number out of range", "[json][security]") {
    auto e = refusal(R"({"receipt": 1e400})");
    CHECK(e.details()["field"] == "receipt");
    CHECK(std::string(e.what()).find("number out of range") != std::string::npos);
    auto nested_e = refusal(R"({"messages":[{"payload":"x"},{"delay_ms": -1e400}]})");
    CHECK(nested_e.details()["field"] == "messages[1].delay_ms");
    CHECK(refusal("[1e400]").details()["field"] == "[0]");
    CHECK(refusal("1e400").details()["field"] == "request body");
}

TEST_CASE("parse_json refuses invalid UTF-8, trailing text and binary junk", "[json][security]") {
    auto e = refusal("{\"name\": \"a\xff\xfe\"}");
    CHECK(e.details()["field"] == "name");
    // The message is printable: it can go into a JSON answer or a terminal.
    std::string msg = e.what();
    for (unsigned char c : msg) CHECK((c >= 0x20 && c < 0x7f));
    REQUIRE_NOTHROW(e.to_json().dump());
    CHECK_THROWS_AS(mq::parse_json("{} {}"), mq::ValidationError);
    CHECK_THROWS_AS(mq::parse_json(std::string("\0\0", 2)), mq::ValidationError);
    CHECK_THROWS_AS(mq::parse_json(""), mq::ValidationError);
    CHECK_THROWS_AS(mq::parse_json("{\"a\":"), mq::ValidationError);
    CHECK_THROWS_AS(mq::parse_json("\"\\ud800\""), mq::ValidationError);
}

TEST_CASE("parse_json refuses a document over its size limit before parsing", "[json]") {
    auto e = refusal(std::string(100, ' ') + "1", {64, 50});
    CHECK(std::string(e.what()).find("over the limit of 50") != std::string::npos);
}

TEST_CASE("read_input_file bounds what it reads and names the file", "[files][security]") {
    auto dir =
        std::filesystem::temp_directory_path() / ("mq-input-file-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto file = dir / "small.json";
    std::ofstream(file) << "{\"a\":1}";
    CHECK(mq::read_input_file(file.string(), "--schema-file") == "{\"a\":1}");

    auto dir_e = [&] {
        try {
            mq::read_input_file(dir.string(), "--schema-file");
        } catch (const mq::Error& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    }();
    CHECK(dir_e.find("is a directory") != std::string::npos);
    CHECK_THROWS_WITH(mq::read_input_file((dir / "missing").string(), "--file"),
                      Catch::Contains("cannot read --file") && Catch::Contains("No such file"));
    CHECK_THROWS_AS(mq::read_input_file("", "--file"), mq::ValidationError);
    // /dev/zero never ends: refused after max_bytes + at most one buffer.
    CHECK_THROWS_WITH(mq::read_input_file("/dev/zero", "--file", 1 << 20),
                      Catch::Contains("over the limit"));
    CHECK(mq::read_input_file("/dev/null", "--file").empty());
    CHECK_THROWS_WITH(mq::read_input_file(file.string(), "--file", 3),
                      Catch::Contains("over the limit of 3"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("is_valid_utf8 accepts well-formed text and refuses every malformed form", "[json]") {
    CHECK(mq::is_valid_utf8(""));
    CHECK(mq::is_valid_utf8("plain ascii"));
    CHECK(mq::is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    CHECK(mq::is_valid_utf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
    for (const char* bad : {"\xff", "\xc3", "\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                            "\xf4\x90\x80\x80", "\xf0\x9f\x98", "a\xc3(b"}) {
        INFO(mq::printable(bad));
        CHECK_FALSE(mq::is_valid_utf8(bad));
    }
}
