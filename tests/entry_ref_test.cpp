// "<partition>:<stream id>" references typed by operators.
#include "mq/consume/entry_ref.hpp"

#include <catch2/catch.hpp>

#include "mq/error.hpp"

TEST_CASE("entry references name a partition and a full stream id", "[entry_ref]") {
    auto r = mq::parse_entry_ref("3:1700000000000-7", "mqctl pending");
    CHECK(r.partition == 3);
    CHECK(r.stream_id == "1700000000000-7");
    CHECK(r.text == "3:1700000000000-7");
    CHECK(mq::parse_entry_ref("0:1700000000000", "x").stream_id == "1700000000000-0");
    CHECK(mq::entry_ref_text(2, "5-1") == "2:5-1");
}

TEST_CASE("malformed entry references say where valid ids are listed", "[entry_ref]") {
    for (const char* bad :
         {"", "1700000000000-0", ":1-0", "-1:1-0", "x:1-0", "0:", "0:abc", "0:1-", "0:1-x"})
        CHECK_THROWS_WITH(mq::parse_entry_ref(bad, "mqctl dlq list"),
                          Catch::Contains("mqctl dlq list"));
    CHECK_THROWS_AS(mq::parse_entry_ref("0:\xff", "x"), mq::ValidationError);
}

// Issue 11: `mqctl ack q --sub s 0:99999999999999999999-1` reached Redis, whose "Invalid
// stream ID" error made it exit 1 instead of 2.
TEST_CASE("entry references whose stream id does not fit 64 bits are refused", "[entry_ref]") {
    CHECK(mq::parse_entry_ref("0:18446744073709551615-18446744073709551615", "x").stream_id ==
          "18446744073709551615-18446744073709551615");
    CHECK_THROWS_AS(mq::parse_entry_ref("0:18446744073709551616-0", "x"), mq::ValidationError);
    CHECK_THROWS_AS(mq::parse_entry_ref("0:1-99999999999999999999", "x"), mq::ValidationError);
    CHECK_THROWS_AS(mq::parse_entry_ref("99999999999:1-1", "x"), mq::ValidationError);
}
