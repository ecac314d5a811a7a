// redis/stream_commands: typed XREADGROUP, XPENDING, XINFO, XCLAIM and XAUTOCLAIM against a
// real redis-server, including the odd replies: empty and missing streams, no groups,
// entries deleted while pending, a group whose lag Redis cannot tell, and malformed replies.
#include <catch2/catch.hpp>
#include <thread>

#include "harness.hpp"
#include "mq/redis/stream_commands.hpp"

using namespace mq::redis;
using namespace std::chrono_literals;

namespace {

struct Stream {
    mqtest::RedisScope rs;
    std::string key = rs.prefix() + "{t:q:0}:s";
    Connection& r() { return rs.redis(); }
    void add(const std::string& id, const std::string& value) {
        r().command({"XADD", key, id, "v", value});
    }
    void group(const std::string& name, const std::string& from = "0") {
        r().command({"XGROUP", "CREATE", key, name, from, "MKSTREAM"});
    }
    std::vector<StreamEntry> read(const std::string& group, const std::string& consumer, int count,
                                  const std::string& id = ">") {
        return parse_xreadgroup(
            r().command_raw(xreadgroup_command(group, consumer, key, count, 0ms, id)));
    }
};

Reply text(std::string s) {
    Reply r;
    r.type = Reply::Type::kString;
    r.str = std::move(s);
    return r;
}
Reply integer(std::int64_t v) {
    Reply r;
    r.type = Reply::Type::kInteger;
    r.integer = v;
    return r;
}
Reply array(std::vector<Reply> elements) {
    Reply r;
    r.type = Reply::Type::kArray;
    r.elements = std::move(elements);
    return r;
}

}  // namespace

TEST_CASE("xreadgroup_returns_typed_entries_and_nothing_when_the_stream_is_drained",
          "[redis][streams]") {
    Stream s;
    s.add("1-0", "a");
    s.add("2-0", "b");
    s.add("3-0", "c");
    s.group("g");
    CHECK(xreadgroup_command("g", "c", "k", 5, 250ms) ==
          std::vector<std::string>{"XREADGROUP", "GROUP", "g", "c", "COUNT", "5", "BLOCK", "250",
                                   "STREAMS", "k", ">"});

    auto first = s.read("g", "c1", 2);
    REQUIRE(first.size() == 2);
    CHECK(first[0].id == "1-0");
    CHECK(first[0].fields == std::vector<std::pair<std::string, std::string>>{{"v", "a"}});
    CHECK_FALSE(first[0].deleted);
    CHECK(first[1].id == "2-0");
    CHECK(s.read("g", "c1", 10).size() == 1);
    CHECK(s.read("g", "c1", 10).empty());  // nil reply: nothing new
}

TEST_CASE("xreadgroup_history_marks_an_entry_deleted_while_pending", "[redis][streams]") {
    Stream s;
    s.add("1-0", "a");
    s.add("2-0", "b");
    s.group("g");
    REQUIRE(s.read("g", "c1", 2).size() == 2);
    s.r().command({"XDEL", s.key, "1-0"});
    auto history = s.read("g", "c1", 10, "0");
    REQUIRE(history.size() == 2);
    CHECK(history[0].id == "1-0");
    CHECK(history[0].deleted);
    CHECK(history[0].fields.empty());
    CHECK_FALSE(history[1].deleted);
}

TEST_CASE("xreadgroup_on_a_missing_group_is_subscription_not_found", "[redis][streams]") {
    Stream s;
    s.add("1-0", "a");
    try {
        s.read("nope", "c1", 1);
        FAIL("expected an error");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kSubscriptionNotFound);
    }
}

TEST_CASE("xpending_summary_and_extended_form_are_parsed_with_idle_and_consumer_filters",
          "[redis][streams]") {
    Stream s;
    for (int i = 1; i <= 4; ++i) s.add(std::to_string(i) + "-0", "x");
    s.group("g");

    auto empty = parse_xpending_summary(s.r().command_raw(xpending_summary_command(s.key, "g")));
    CHECK(empty.count == 0);
    CHECK(empty.smallest_id.empty());
    CHECK(empty.consumers.empty());
    CHECK(parse_xpending(s.r().command_raw(xpending_command(s.key, "g", 10))).empty());

    s.read("g", "alice", 3);
    s.read("g", "bob", 1);
    auto sum = parse_xpending_summary(s.r().command_raw(xpending_summary_command(s.key, "g")));
    CHECK(sum.count == 4);
    CHECK(sum.smallest_id == "1-0");
    CHECK(sum.greatest_id == "4-0");
    CHECK(sum.consumers ==
          std::vector<std::pair<std::string, std::int64_t>>{{"alice", 3}, {"bob", 1}});

    auto rows = parse_xpending(s.r().command_raw(xpending_command(s.key, "g", 10, 0ms, "bob")));
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].id == "4-0");
    CHECK(rows[0].consumer == "bob");
    CHECK(rows[0].deliveries == 1);
    CHECK(rows[0].idle_ms >= 0);
    // IDLE filter: nothing has been idle for an hour.
    CHECK(xpending_command("k", "g", 5, 3600000ms) ==
          std::vector<std::string>{"XPENDING", "k", "g", "IDLE", "3600000", "-", "+", "5"});
    CHECK(parse_xpending(s.r().command_raw(xpending_command(s.key, "g", 10, 3600000ms))).empty());
    std::this_thread::sleep_for(20ms);
    CHECK(parse_xpending(s.r().command_raw(xpending_command(s.key, "g", 10, 10ms))).size() == 4);

    CHECK_THROWS_AS(
        parse_xpending_summary(s.r().command_raw(xpending_summary_command(s.key, "nope"))),
        mq::Error);
}

TEST_CASE("xinfo_groups_of_a_missing_stream_or_a_stream_without_groups_is_empty",
          "[redis][streams]") {
    Stream s;
    CHECK(parse_xinfo_groups(s.r().command_raw(xinfo_groups_command(s.key))).empty());
    CHECK_FALSE(parse_xinfo_stream(s.r().command_raw(xinfo_stream_command(s.key))).has_value());
    CHECK(parse_xinfo_consumers(s.r().command_raw(xinfo_consumers_command(s.key, "g"))).empty());
    s.add("1-0", "a");
    CHECK(parse_xinfo_groups(s.r().command_raw(xinfo_groups_command(s.key))).empty());
    CHECK(parse_xinfo_consumers(s.r().command_raw(xinfo_consumers_command(s.key, "g"))).empty());
    auto info = parse_xinfo_stream(s.r().command_raw(xinfo_stream_command(s.key)));
    REQUIRE(info);
    CHECK(info->length == 1);
    CHECK(info->groups == 0);
    CHECK(info->last_generated_id == "1-0");
    REQUIRE(info->first_entry);
    CHECK(info->first_entry->id == "1-0");
    CHECK(info->entries_added == 1);

    // An emptied stream still exists, with no first entry.
    s.r().command({"XDEL", s.key, "1-0"});
    auto emptied = parse_xinfo_stream(s.r().command_raw(xinfo_stream_command(s.key)));
    REQUIRE(emptied);
    CHECK(emptied->length == 0);
    CHECK_FALSE(emptied->first_entry.has_value());
}

TEST_CASE("xinfo_groups_reports_lag_and_leaves_it_unknown_after_a_deletion", "[redis][streams]") {
    Stream s;
    s.add("1-0", "a");
    s.add("2-0", "b");
    s.add("3-0", "c");
    s.group("known", "0");
    s.read("known", "c1", 1);
    auto groups = parse_xinfo_groups(s.r().command_raw(xinfo_groups_command(s.key)));
    REQUIRE(groups.size() == 1);
    CHECK(groups[0].name == "known");
    CHECK(groups[0].pending == 1);
    CHECK(groups[0].consumers == 1);
    CHECK(groups[0].last_delivered_id == "1-0");
    CHECK(groups[0].lag == 2);
    CHECK(groups[0].entries_read == 1);

    // A group created at 0 after an entry was deleted: Redis cannot count what is left.
    s.r().command({"XDEL", s.key, "2-0"});
    s.group("unknown", "0");
    groups = parse_xinfo_groups(s.r().command_raw(xinfo_groups_command(s.key)));
    REQUIRE(groups.size() == 2);
    CHECK(groups[1].name == "unknown");
    CHECK_FALSE(groups[1].lag.has_value());

    auto consumers =
        parse_xinfo_consumers(s.r().command_raw(xinfo_consumers_command(s.key, "known")));
    REQUIRE(consumers.size() == 1);
    CHECK(consumers[0].name == "c1");
    CHECK(consumers[0].pending == 1);
    CHECK(consumers[0].idle_ms >= 0);
}

TEST_CASE("xclaim_returns_entries_ids_with_justid_and_drops_entries_deleted_while_pending",
          "[redis][streams]") {
    Stream s;
    s.add("1-0", "a");
    s.add("2-0", "b");
    s.group("g");
    s.read("g", "c1", 2);
    CHECK(xclaim_command("k", "g", "c2", 0ms, {"1-0"}, ClaimOptions{60000ms, 3, true}) ==
          std::vector<std::string>{"XCLAIM", "k", "g", "c2", "0", "1-0", "IDLE", "60000",
                                   "RETRYCOUNT", "3", "JUSTID"});

    auto claimed = parse_xclaim(s.r().command_raw(xclaim_command(s.key, "g", "c2", 0ms, {"1-0"})));
    REQUIRE(claimed.size() == 1);
    CHECK(claimed[0].id == "1-0");
    CHECK(claimed[0].fields == std::vector<std::pair<std::string, std::string>>{{"v", "a"}});

    auto ids = parse_xclaim(
        s.r().command_raw(xclaim_command(s.key, "g", "c2", 0ms, {"2-0"}, {std::nullopt, 5, true})));
    REQUIRE(ids.size() == 1);
    CHECK(ids[0].id == "2-0");
    CHECK(ids[0].fields.empty());
    auto rows = parse_xpending(s.r().command_raw(xpending_command(s.key, "g", 10)));
    REQUIRE(rows.size() == 2);
    CHECK(rows[1].deliveries == 5);

    // Min idle not reached: nothing claimed.
    CHECK(parse_xclaim(s.r().command_raw(xclaim_command(s.key, "g", "c3", 3600000ms, {"1-0"})))
              .empty());
    // Deleted while pending: Redis 7 removes it from the PEL and returns nothing.
    s.r().command({"XDEL", s.key, "1-0"});
    CHECK(parse_xclaim(s.r().command_raw(xclaim_command(s.key, "g", "c3", 0ms, {"1-0"}))).empty());
}

TEST_CASE("xautoclaim_pages_with_a_cursor_and_reports_deleted_ids", "[redis][streams]") {
    Stream s;
    for (int i = 1; i <= 3; ++i) s.add(std::to_string(i) + "-0", "x" + std::to_string(i));
    s.group("g");
    s.read("g", "dead", 3);
    s.r().command({"XDEL", s.key, "2-0"});

    auto page =
        parse_xautoclaim(s.r().command_raw(xautoclaim_command(s.key, "g", "me", 0ms, "0-0", 1)));
    REQUIRE(page.entries.size() == 1);
    CHECK(page.entries[0].id == "1-0");
    CHECK(page.next_cursor != "0-0");
    auto rest = parse_xautoclaim(
        s.r().command_raw(xautoclaim_command(s.key, "g", "me", 0ms, page.next_cursor, 10)));
    CHECK(rest.next_cursor == "0-0");
    REQUIRE(rest.entries.size() == 1);
    CHECK(rest.entries[0].id == "3-0");
    CHECK(rest.deleted_ids == std::vector<std::string>{"2-0"});

    auto just = parse_xautoclaim(
        s.r().command_raw(xautoclaim_command(s.key, "g", "other", 0ms, "0-0", 10, true)));
    REQUIRE(just.entries.size() == 2);
    CHECK(just.entries[0].fields.empty());
    CHECK_THROWS_AS(
        parse_xautoclaim(s.r().command_raw(xautoclaim_command(s.key, "nope", "me", 0ms, "0-0", 1))),
        mq::Error);
}

TEST_CASE("malformed_replies_raise_one_reply_shape_error", "[redis][streams]") {
    CHECK_THROWS_AS(parse_xpending_summary(text("OK")), ReplyShapeError);
    CHECK_THROWS_AS(parse_xpending_summary(array({integer(1)})), ReplyShapeError);
    CHECK_THROWS_AS(parse_xpending(array({array({text("1-0"), text("c")})})), ReplyShapeError);
    CHECK_THROWS_AS(
        parse_xpending(array({array({text("1-0"), text("c"), text("soon"), integer(1)})})),
        ReplyShapeError);
    CHECK_THROWS_AS(parse_xinfo_groups(array({array({text("name")})})), ReplyShapeError);
    CHECK_THROWS_AS(parse_xinfo_groups(array({array({text("pending"), integer(1)})})),
                    ReplyShapeError);  // no name
    CHECK_THROWS_AS(parse_xinfo_groups(integer(3)), ReplyShapeError);
    CHECK_THROWS_AS(parse_xreadgroup(array({array({text("k")})})), ReplyShapeError);
    CHECK_THROWS_AS(parse_xreadgroup(array(
                        {array({text("k"), array({array({text("1-0"), array({text("f")})})})})})),
                    ReplyShapeError);  // odd field list
    CHECK_THROWS_AS(parse_xclaim(integer(1)), ReplyShapeError);
    CHECK_THROWS_AS(parse_xautoclaim(array({text("0-0")})), ReplyShapeError);
    CHECK_THROWS_AS(parse_xinfo_consumers(array({array({text("idle"), text("long")})})),
                    ReplyShapeError);
    // A ReplyShapeError is an mq::Error with the internal code, so apps map it like any failure.
    try {
        parse_xpending(text("?"));
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kInternal);
        CHECK_THAT(e.what(), Catch::Contains("XPENDING"));
    }
    CHECK(stream_id_millis("1700000000000-3") == 1700000000000);
    CHECK(stream_id_millis("42") == 42);
    CHECK_FALSE(stream_id_millis("x-1").has_value());
    CHECK_FALSE(stream_id_millis("").has_value());
    CHECK_FALSE(stream_id_millis("12x").has_value());
}
