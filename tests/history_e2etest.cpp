// The message history from an operator's shell: mqctl queue --record-messages, publish,
// `mqctl maintenance run --once` (the history writer), mqctl message show / list.
#include <catch2/catch.hpp>

#include "mqctl_shell.hpp"

using namespace mqtest;

TEST_CASE("mqctl_records_a_queue_and_shows_a_message_timeline_and_list", "[e2e][history]") {
    MqctlShell sh;
    sh.create_queue({"orders", "--record-messages"});
    CHECK(sh.json_of({"queue", "show", "orders"}).at("record_messages") == true);
    auto published = sh.json_of({"publish", "orders", "{\"n\":1}", "--key", "order-42"});
    const std::string id = published.at("id").get<std::string>();
    // Buffered in Redis until the writer runs.
    auto stats = sh.json_of({"stats", "orders"});
    CHECK(stats.at("history_buffered") == 1);
    REQUIRE_EXIT(sh.run({"maintenance", "run", "--once"}), 0);
    CHECK(sh.json_of({"stats", "orders"}).at("history_buffered") == 0);

    auto t = sh.json_of({"message", "show", id});
    REQUIRE(t.at("events").size() == 1);
    CHECK(t.at("events")[0].at("event") == "published");
    CHECK(t.at("events")[0].at("key") == "order-42");
    CHECK(t.at("events")[0].at("producer").get<std::string>().rfind("mqctl", 0) == 0);
    auto text = sh.run({"message", "show", id});
    REQUIRE_EXIT(text, 0);
    CHECK(text.out.find("published") != std::string::npos);

    auto list = sh.json_of({"message", "list", "orders", "--since", "1h"});
    REQUIRE(list.at("messages").size() == 1);
    CHECK(list.at("messages")[0].at("status") == "pending");
    CHECK(list.at("next_cursor").is_null());

    sh.ok({"queue", "update", "orders", "--record-messages=false"});
    CHECK(sh.json_of({"queue", "show", "orders"}).at("record_messages") == false);
    sh.db().exec("DELETE FROM message_events WHERE tenant_id = '" + sh.tenant() + "'");
}

TEST_CASE("mqctl_message_refuses_bad_ids_and_filters_before_connecting", "[e2e][history]") {
    MqctlShell sh;
    const std::map<std::string, std::string> down{{"DATABASE_URL", "postgresql://127.0.0.1:1/x"}};
    CHECK(sh.run({"message", "show", "nope"}, down).status == 2);
    CHECK(sh.run({"message", "list", "orders", "--status", "exploded"}, down).status == 2);
    CHECK(sh.run({"message", "list", "orders", "--since", "yesterday"}, down).status == 2);
    CHECK(sh.run({"message", "list", "orders", "--limit", "0"}, down).status == 2);
    CHECK(sh.run({"message", "list", "orders", "--cursor", "garbage"}, down).status == 2);
    CHECK(sh.run({"message", "show", "0190a5c4-0000-7abc-8def-0123456789ab"}).status == 3);
}
