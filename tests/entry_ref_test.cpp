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
