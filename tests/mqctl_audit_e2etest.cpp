// mqctl and the audit log, as an operator meets it: every admin command leaves exactly one
// row naming the OS user (source mqctl, or apply for `mqctl apply`), `mqctl audit list`
// filters and pages it, malformed filters exit 2 naming the flag, and with PostgreSQL down
// an admin command exits 5 having changed nothing (docs/audit.md).
#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/consume/dead_letters.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mqctl_shell.hpp"

namespace {

using nlohmann::json;

class Shell : public mqtest::MqctlShell {
  public:
    // Commands run as OS user "alice" (mqctl takes the user from $USER).
    mqtest::Run as_alice(const std::vector<std::string>& args) {
        return run(args, {{"USER", "alice"}});
    }
    void ok_as_alice(const std::vector<std::string>& args) { REQUIRE_EXIT(as_alice(args), 0); }
    json audit(const std::vector<std::string>& filters = {}) {
        std::vector<std::string> args{"audit", "list", "--limit", "500"};
        args.insert(args.end(), filters.begin(), filters.end());
        return json_of(args);
    }
    /// Dead-letters every message `sub` of `queue` can read, as a worker does after the
    /// last attempt.
    int dead_letter_all(const std::string& queue, const std::string& sub) {
        mq::Queue q = this->queue(queue);
        mq::Subscription s = mq::SubscriptionCatalog(tenant_.db()).get(tenant(), queue, sub);
        mq::ConsumerGroups groups(redis_.redis(), redis_.keys());
        int n = 0;
        for (const auto& f : groups.read_new(q, s, "w1", 0, 100, std::chrono::milliseconds(0))) {
            REQUIRE(groups.dead_letter(q, sub, 0, f.stream_id, "max_attempts", "HTTP 503", 5));
            ++n;
        }
        return n;
    }
    std::int64_t dead_letter_count(const std::string& queue) {
        return mq::DeadLetterStore(redis_.redis(), redis_.keys()).count(this->queue(queue));
    }
    json rows_of(const std::string& action) { return audit({"--action", action})["records"]; }
};

}  // namespace

TEST_CASE("every_mqctl_admin_command_leaves_one_row_naming_the_os_user", "[mqctl][audit]") {
    Shell sh;
    sh.ok_as_alice({"queue", "create", "orders"});
    sh.ok_as_alice({"queue", "update", "orders", "--description", "paid orders"});
    sh.ok_as_alice({"sub", "create", "orders", "billing", "--type", "pull"});
    sh.ok_as_alice({"sub", "pause", "orders", "billing"});
    sh.ok_as_alice({"sub", "resume", "orders", "billing"});
    sh.ok_as_alice({"sub", "update", "orders", "billing", "--max-attempts", "9"});
    sh.ok_as_alice({"publish", "orders", "{\"n\":1}"});
    sh.ok_as_alice({"queue", "purge", "orders", "--yes"});
    sh.ok_as_alice({"dlq", "purge", "orders", "--yes"});
    sh.ok_as_alice({"schedule", "create", "nightly", "-q", "orders", "--cron", "0 3 * * *",
                    "--payload", "{}"});
    sh.ok_as_alice({"schedule", "pause", "nightly"});
    sh.ok_as_alice({"schedule", "delete", "nightly", "--yes"});
    sh.ok_as_alice({"token", "create", "--role", "producer", "--principal", "shop"});
    sh.ok_as_alice({"tenant", "update", sh.tenant(), "--publish-rate", "50"});
    sh.ok_as_alice({"sub", "delete", "orders", "billing", "--yes"});
    sh.ok_as_alice({"queue", "delete", "orders", "--yes"});

    for (const char* action :
         {"queue.create", "queue.update", "subscription.create", "subscription.pause",
          "subscription.resume", "subscription.update", "queue.purge", "dead_letter.purge",
          "schedule.create", "schedule.pause", "schedule.delete", "token.create", "tenant.update",
          "subscription.delete", "queue.delete"}) {
        INFO(action);
        auto rows = sh.rows_of(action);
        REQUIRE(rows.size() == 1);
        CHECK(rows[0]["principal"] == "alice");
        CHECK(rows[0]["source"] == "mqctl");
        CHECK(rows[0]["tenant"] == sh.tenant());
        CHECK(rows[0]["token_id"].is_null());
    }
    auto update = sh.rows_of("queue.update")[0];
    CHECK(update["target"] == json{{"kind", "queue"}, {"name", "orders"}});
    CHECK(update["change"]["before"]["description"] == "");
    CHECK(update["change"]["after"]["description"] == "paid orders");
    CHECK(sh.rows_of("queue.purge")[0]["change"]["after"]["entries"] == 1);
    CHECK(sh.rows_of("subscription.update")[0]["change"]["after"]["max_attempts"] == 9);
    CHECK(sh.rows_of("subscription.pause")[0]["target"]["name"] == "orders/billing");
    // publishing is not an admin action
    CHECK(sh.audit({"--action", "publish"})["records"].empty());

    // the table for people
    auto table = sh.as_alice({"audit", "list", "--since", "1h", "--target", "orders"});
    REQUIRE_EXIT(table, 0);
    CHECK_THAT(table.out, Catch::Contains("ACTION") && Catch::Contains("queue.delete") &&
                              Catch::Contains("alice"));
    auto yaml = sh.run({"-o", "yaml", "audit", "list", "--action", "queue.create"});
    REQUIRE_EXIT(yaml, 0);
    CHECK_THAT(yaml.out, Catch::Contains("action: queue.create"));
}

TEST_CASE("apply_rows_say_apply_and_a_failed_command_leaves_none", "[mqctl][audit]") {
    Shell sh;
    sh.ok_as_alice({"queue", "create", "orders"});
    const std::string file = mqtest::temp_file(
        "scope: team-a\nsubscriptions:\n  - queue: orders\n    name: audit\n"
        "    handler:\n      type: pull\n");
    REQUIRE_EXIT(sh.as_alice({"apply", "-f", file}), 0);
    auto rows = sh.rows_of("subscription.create");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["source"] == "apply");
    CHECK(rows[0]["principal"] == "alice");
    CHECK(rows[0]["change"]["after"]["managed_by"] == "apply:team-a");
    // a second apply changes nothing and records nothing
    REQUIRE_EXIT(sh.as_alice({"apply", "-f", file}), 0);
    CHECK(sh.audit({"--action", "subscription"})["records"].size() == 1);

    // conflict, validation, not found: no row
    REQUIRE_EXIT(sh.as_alice({"queue", "create", "orders"}), 4);
    REQUIRE_EXIT(sh.as_alice({"queue", "update", "orders", "--partitions", "0"}), 2);
    REQUIRE_EXIT(sh.as_alice({"sub", "pause", "orders", "nope"}), 3);
    CHECK(sh.rows_of("queue").size() == 1);
    CHECK(sh.rows_of("subscription").size() == 1);
}

TEST_CASE("audit_list_pages_with_a_cursor_and_refuses_malformed_filters", "[mqctl][audit]") {
    Shell sh;
    for (int i = 0; i < 5; ++i) sh.ok_as_alice({"queue", "create", "q" + std::to_string(i)});
    std::vector<std::string> names;
    std::string cursor;
    for (int page = 0; page < 10; ++page) {
        std::vector<std::string> args{"audit", "list", "--action", "queue.create", "--limit", "2"};
        if (!cursor.empty()) args.insert(args.end(), {"--cursor", cursor});
        auto j = sh.json_of(args);
        CHECK(j["records"].size() <= 2);
        for (const auto& r : j["records"]) names.push_back(r["target"]["name"]);
        if (j["next_cursor"].is_null()) break;
        cursor = j["next_cursor"];
    }
    CHECK(names == std::vector<std::string>{"q4", "q3", "q2", "q1", "q0"});
    auto more = sh.run({"audit", "list", "--limit", "2"});
    REQUIRE_EXIT(more, 0);
    CHECK_THAT(more.out, Catch::Contains("--cursor"));

    for (auto [flag, value] :
         std::vector<std::pair<std::string, std::string>>{{"--since", "yesterday"},
                                                          {"--action", "DROP TABLE"},
                                                          {"--limit", "0"},
                                                          {"--cursor", "not-a-cursor"}}) {
        INFO(flag << " " << value);
        auto r = sh.run({"-o", "json", "audit", "list", flag, value});
        REQUIRE_EXIT(r, 2);
        CHECK_THAT(r.err, Catch::Contains(flag.substr(2)));
    }
    // no command changes the log
    CHECK(sh.run({"audit", "delete"}).status == 2);
}

TEST_CASE("audit_list_shows_one_tenant_unless_all_tenants_is_asked", "[mqctl][audit]") {
    Shell a;
    Shell b;
    a.ok_as_alice({"queue", "create", "shared-name"});
    b.ok_as_alice({"queue", "create", "shared-name"});
    auto mine = a.audit({"--target", "shared-name"})["records"];
    REQUIRE(mine.size() == 1);
    CHECK(mine[0]["tenant"] == a.tenant());
    auto all = a.audit({"--target", "shared-name", "--all-tenants"})["records"];
    std::set<std::string> tenants;
    for (const auto& r : all) tenants.insert(r["tenant"].get<std::string>());
    CHECK(tenants.count(a.tenant()) == 1);
    CHECK(tenants.count(b.tenant()) == 1);
}

TEST_CASE("postgres_down_fails_admin_commands_with_exit_5_and_changes_nothing", "[mqctl][audit]") {
    Shell sh;
    sh.ok_as_alice({"queue", "create", "orders"});
    sh.ok_as_alice({"publish", "orders", "{\"n\":1}"});
    const std::string down =
        "postgresql://127.0.0.1:" + std::to_string(mqtest::dead_port()) + "/mq?connect_timeout=2";
    // purge lives in Redis only: refused before anything is removed, as it cannot be audited
    auto purge = sh.run({"queue", "purge", "orders", "--yes"}, {{"DATABASE_URL", down}});
    REQUIRE_EXIT(purge, 5);
    CHECK(sh.xlen("orders", 0) == 1);
    auto create = sh.run({"queue", "create", "other"}, {{"DATABASE_URL", down}});
    REQUIRE_EXIT(create, 5);
    CHECK(sh.rows_of("queue.purge").empty());
    CHECK(sh.rows_of("queue.create").size() == 1);
    CHECK_FALSE(sh.db().catalog().find_queue(sh.tenant(), "other"));
}

TEST_CASE("dlq_replay_leaves_one_row_with_the_handles_and_a_dry_run_none", "[mqctl][audit]") {
    Shell sh;
    sh.ok_as_alice({"queue", "create", "orders"});
    sh.ok_as_alice({"sub", "create", "orders", "billing", "--type", "pull", "--from", "earliest"});
    sh.ok_as_alice({"publish", "orders", "{\"n\":1}"});
    sh.ok_as_alice({"publish", "orders", "{\"n\":2}"});
    REQUIRE(sh.dead_letter_all("orders", "billing") == 2);

    sh.ok_as_alice({"dlq", "replay", "orders", "--all", "--dry-run", "--yes"});
    CHECK(sh.rows_of("dead_letter.replay").empty());
    CHECK(sh.dead_letter_count("orders") == 2);

    // PostgreSQL gone: the replay is refused and every dead letter stays
    const std::string down =
        "postgresql://127.0.0.1:" + std::to_string(mqtest::dead_port()) + "/mq?connect_timeout=2";
    REQUIRE_EXIT(sh.run({"dlq", "replay", "orders", "--all", "--yes"}, {{"DATABASE_URL", down}}),
                 5);
    CHECK(sh.dead_letter_count("orders") == 2);

    sh.ok_as_alice({"dlq", "replay", "orders", "--all", "--yes"});
    CHECK(sh.dead_letter_count("orders") == 0);
    auto rows = sh.rows_of("dead_letter.replay");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["principal"] == "alice");
    CHECK(rows[0]["target"] == json{{"kind", "queue"}, {"name", "orders"}});
    CHECK(rows[0]["change"]["after"]["replayed"] == 2);
    CHECK(rows[0]["change"]["after"]["to"] == "orders");
    CHECK(rows[0]["change"]["after"]["dead_letters"].size() == 2);
}

TEST_CASE("audit_list_table_escapes_control_characters_a_tenant_stored", "[mqctl][audit]") {
    Shell sh;
    sh.ok_as_alice({"queue", "create", "orders"});
    // A tenant-admin may store any text in a description; the operator's terminal must not
    // receive it raw (OSC 52 would write the clipboard, CSI 2K erase the line).
    sh.ok_as_alice(
        {"queue", "update", "orders", "--description", "Z\xc3\xbcrich \x1b]52;c;eA==\x07\x1b[2K"});
    auto table = sh.run({"audit", "list"});
    REQUIRE_EXIT(table, 0);
    CHECK(table.out.find('\x1b') == std::string::npos);
    CHECK(table.out.find('\x07') == std::string::npos);
    CHECK_THAT(table.out, Catch::Contains("Z\xc3\xbcrich \\x1b]52;c;eA==\\x07\\x1b[2K"));
    auto queues = sh.run({"queue", "list"});
    REQUIRE_EXIT(queues, 0);
    CHECK(queues.out.find('\x1b') == std::string::npos);
    // -o json keeps the exact text (escaped by JSON itself).
    auto rows = sh.rows_of("queue.update");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["change"]["after"]["description"] == "Z\xc3\xbcrich \x1b]52;c;eA==\x07\x1b[2K");
}
