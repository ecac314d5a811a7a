// RESP replies as hiredis reads them for mq (found by fuzz/fuzz_resp.cpp).
#include <hiredis/hiredis.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "mq/redis/client.hpp"
#include "mq/redis/server_version.hpp"

namespace {

struct ReaderDeleter {
    void operator()(redisReader* r) const { redisReaderFree(r); }
};

}  // namespace

// fuzz_resp timeout: "*2000000000\r\n" made hiredis 0.14 allocate and clear a 16 GB element
// table before any element arrived. Capped readers refuse it at once.
TEST_CASE("a reply announcing a huge array is refused before anything is allocated",
          "[redis][security]") {
    std::unique_ptr<redisReader, ReaderDeleter> reader(redisReaderCreate());
    mq::redis::cap_reply_arrays(reader.get());
    const std::string hostile = "*2000000000\r\n$1\r\nx\r\n";
    auto start = std::chrono::steady_clock::now();
    REQUIRE(redisReaderFeed(reader.get(), hostile.data(), hostile.size()) == REDIS_OK);
    void* raw = nullptr;
    CHECK(redisReaderGetReply(reader.get(), &raw) == REDIS_ERR);
    CHECK(raw == nullptr);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));

    // Ordinary arrays still read, nested ones too, and each reader is capped on its own.
    std::unique_ptr<redisReader, ReaderDeleter> ok(redisReaderCreate());
    mq::redis::cap_reply_arrays(ok.get());
    mq::redis::cap_reply_arrays(ok.get());  // idempotent
    const std::string normal = "*2\r\n:1\r\n*1\r\n$2\r\nab\r\n";
    REQUIRE(redisReaderFeed(ok.get(), normal.data(), normal.size()) == REDIS_OK);
    REQUIRE(redisReaderGetReply(ok.get(), &raw) == REDIS_OK);
    REQUIRE(raw != nullptr);
    mq::redis::Reply r = mq::redis::reply_from_hiredis(raw);
    freeReplyObject(raw);
    REQUIRE(r.is_array());
    CHECK(r.elements.at(0).as_integer() == 1);
    CHECK(r.elements.at(1).elements.at(0).as_string() == "ab");
}

TEST_CASE("parse_info_reads_key_value_lines_and_skips_sections", "[redis]") {
    auto info = mq::redis::parse_info(
        "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:42\r\n\r\n# Memory\r\n"
        "maxmemory_policy:noeviction\r\nused_memory:1024\r\nodd line\r\nurl:a:b\r\n");
    CHECK(info.size() == 5);
    CHECK(info["redis_version"] == "7.0.15");
    CHECK(info["maxmemory_policy"] == "noeviction");
    CHECK(info["used_memory"] == "1024");
    CHECK(info["url"] == "a:b");  // only the first ':' separates
    CHECK(info.count("# Server") == 0);
    CHECK(mq::redis::parse_info("").empty());
    CHECK(mq::redis::parse_info("no_newline:1").at("no_newline") == "1");
}
