// Edge cases of user input found in review: each once misbehaved.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

#include "mq/config/config.hpp"
#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/error.hpp"
#include "mq/pg/database.hpp"
#include "mq/publish/envelope.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

TEST_CASE("describe_url never shows a password, however the URL is written", "[pg][security]") {
    CHECK(mq::pg::describe_url("postgresql://u:pa/ss@db.internal:5433/mq") == "db.internal:5433");
    CHECK(mq::pg::describe_url("postgresql://u:pa?ss@db/mq") == "db:5432");
    CHECK(mq::pg::describe_url("password=xhost=secret host=db") == "db:5432");
    CHECK(mq::pg::describe_url("host=db password=report=secret") == "db:5432");
    CHECK(mq::pg::describe_url("host=db port=6543 password='a b port=1'") == "db:6543");
    CHECK(mq::pg::describe_url("postgresql://u:secret@h:notaport/mq").find("secret") ==
          std::string::npos);
}

TEST_CASE("invalid UTF-8 in a name still yields a printable JSON error", "[errors]") {
    try {
        mq::validate_name("queue name", "bad\xff\xfe");
        FAIL("accepted");
    } catch (const mq::Error& e) {
        std::string body;
        REQUIRE_NOTHROW(body = e.to_json().dump());
        CHECK(body.find("bad\\\\xff\\\\xfe") != std::string::npos);
    }
    CHECK(mq::printable("a\nb\x01") == "a\\x0ab\\x01");
    CHECK_THROWS_WITH(mq::parse_duration("5\xff"), Catch::Contains("5\\xff"));
}

TEST_CASE("a max length beyond what Lua counts exactly is refused, and splits never overflow",
          "[queue]") {
    mq::QueueSpec s;
    s.name = "q";
    s.max_length = std::int64_t{1} << 53;
    CHECK_NOTHROW(mq::validate(s));
    s.max_length = (std::int64_t{1} << 53) + 1;
    CHECK_THROWS_AS(mq::validate(s), mq::ValidationError);
    mq::Queue q;
    q.partition_count = 2;
    q.max_length = INT64_MAX;
    CHECK(*q.max_length_per_partition() > 0);
    q.max_length = 5;
    CHECK(*q.max_length_per_partition() == 3);
}

TEST_CASE("29 February exists only in leap years", "[time]") {
    CHECK_THROWS_AS(mq::parse_rfc3339("2026-02-29T00:00:00Z"), mq::ValidationError);
    CHECK_THROWS_AS(mq::parse_rfc3339("2100-02-29T00:00:00Z"), mq::ValidationError);
    CHECK(mq::parse_rfc3339("2028-02-29T00:00:00Z") == 1835395200000);
    CHECK(mq::parse_rfc3339("2000-02-29T00:00:00Z") == 951782400000);
}

TEST_CASE("a percent sign not followed by two hex digits is kept in a Redis password", "[redis]") {
    CHECK(mq::redis::parse_url("redis://:a%-1b@h").password == "a%-1b");
    CHECK(mq::redis::parse_url("redis://:a%2Fb@h").password == "a/b");
}

TEST_CASE(
    "a Redis host with control bytes or delimiters is refused, and the error hides the "
    "password",
    "[redis]") {
    for (std::string url :
         {std::string("redis://ho\x01st:6379"), std::string("redis://ho st"),
          std::string("redis://host\r\nFLUSHALL:6379"), std::string("redis://h\x7fst"),
          std::string("redis://[::1\n]:6379"), std::string("redis://:pw@h\"x:1")}) {
        INFO(url);
        try {
            mq::redis::parse_url(url);
            FAIL("accepted");
        } catch (const mq::ValidationError& e) {
            std::string what = e.what();
            CHECK(what.find("host") != std::string::npos);
            for (char c : what) CHECK((c >= 0x20 && c < 0x7f));
        }
    }
    try {
        mq::redis::parse_url("redis://user:s3cret@h:99999");
        FAIL("accepted");
    } catch (const mq::ValidationError& e) {
        CHECK(std::string(e.what()).find("s3cret") == std::string::npos);
        CHECK(std::string(e.what()).find("redis://***@h:99999") != std::string::npos);
    }
    CHECK(mq::redis::parse_url("redis://[::1]:6380").host == "::1");
    CHECK(mq::redis::parse_url("redis://redis-0.mq.svc.cluster.local").host ==
          "redis-0.mq.svc.cluster.local");
}

TEST_CASE("YAML config: an empty value means unset, a complex key is an error with file:line",
          "[config]") {
    char path[] = "/tmp/mqcfg-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    std::ofstream(path) << "max_queue_length:\nredis_url: redis://h:1/0\n";
    auto c = mq::load_config(path, {});
    CHECK_FALSE(c.max_queue_length);
    CHECK(c.redis_url == "redis://h:1/0");
    std::ofstream(path) << "redis_url: redis://h:1/0\n? [a, b]\n: 1\n";
    CHECK_THROWS_WITH(mq::load_config(path, {}), Catch::Contains(std::string(path) + ":2"));
    std::remove(path);
}

TEST_CASE("an envelope refuses two delays and a null payload", "[publish]") {
    mq::EnvelopeParser p;
    CHECK_THROWS_WITH(p.parse(R"({"payload":"x","delay":"5s","delay_ms":10})"),
                      Catch::Contains("not both"));
    CHECK_THROWS_WITH(p.parse(R"({"payload":null})"), Catch::Contains("must not be null"));
    auto r = p.parse(R"({"payload": {"b":1, "a":1.50e1} , "key":"k"})");
    CHECK(r.payload == R"({"b":1, "a":1.50e1})");  // exact bytes, not re-serialised
}

TEST_CASE("durations are shown without losing milliseconds", "[time]") {
    CHECK(mq::format_duration(std::chrono::milliseconds(61500)) == "61.5s");
    CHECK(mq::format_duration(std::chrono::milliseconds(1999)) == "1.999s");
    CHECK(mq::format_duration(std::chrono::milliseconds(250)) == "250ms");
    CHECK(mq::format_duration(std::chrono::hours(26)) == "1d2h");
}
