// mqctl queue create|list|show|update|delete|purge, run as an operator would, against the
// fixture's redis-server and PostgreSQL. Each test has its own tenant and key prefix.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "mqctl_shell.hpp"

namespace {

using nlohmann::json;

// An operator's shell for one test: every command acts for the test's tenant and key
// prefix, and Redis can be inspected under that prefix.
// Nothing beyond the common shell.
class Shell : public mqtest::MqctlShell {};

void publish_ok(Shell& sh, const std::vector<std::string>& args) {
    std::vector<std::string> argv{"publish"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = sh.run(argv);
    REQUIRE_EXIT(r, 0);
}

}  // namespace

TEST_CASE("queue_create_stores_every_setting_and_list_and_show_report_them", "[mqctl][queue]") {
    Shell sh;
    auto created = sh.run({"queue", "create", "orders", "--partitions", "4", "--retention", "2d",
                           "--max-length", "1000", "--dedup-window", "1h", "--description",
                           "Order events from checkout"});
    REQUIRE_EXIT(created, 0);
    CHECK_THAT(created.out, Catch::Contains("created queue orders"));
    CHECK_THAT(created.out, Catch::Contains("partitions:   4"));

    json list = sh.json_of({"queue", "list"});
    REQUIRE(list.is_array());
    REQUIRE(list.size() == 1);
    const json& q = list[0];
    CHECK(q["name"] == "orders");
    CHECK(q["tenant"] == sh.tenant());
    CHECK(q["partitions"] == 4);
    CHECK(q["retention_ms"] == 2 * 86400000LL);
    CHECK(q["max_length"] == 1000);
    CHECK(q["dedup_window_ms"] == 3600000);
    CHECK(q["description"] == "Order events from checkout");
    CHECK(q["status"] == "active");
    CHECK_FALSE(q["id"].get<std::string>().empty());

    auto table = sh.run({"queue", "list"});
    REQUIRE_EXIT(table, 0);
    CHECK_THAT(table.out, Catch::StartsWith("NAME"));
    CHECK_THAT(table.out, Catch::Contains("orders") &&
                              Catch::Contains("Order events from checkout") &&
                              Catch::Contains("2d") && Catch::Contains("1000"));

    json shown = sh.json_of({"queue", "show", "orders"});
    CHECK(shown == q);
}

TEST_CASE("queue_create_without_settings_takes_documented_defaults_and_environment",
          "[mqctl][queue]") {
    Shell sh;
    json plain = sh.json_of({"queue", "create", "plain"});
    CHECK(plain["partitions"] == 1);
    CHECK(plain["retention_ms"] == 7 * 86400000LL);  // DEFAULT_TTL 604800 s
    CHECK(plain["max_length"].is_null());            // unlimited
    CHECK(plain["dedup_window_ms"] == 86400000);
    CHECK(plain["description"] == "");

    auto r = sh.run({"-o", "json", "queue", "create", "from-env"},
                    {{"DEFAULT_TTL", "3600"}, {"MAX_QUEUE_LENGTH", "50"}});
    REQUIRE_EXIT(r, 0);
    json env = json::parse(r.out);
    CHECK(env["retention_ms"] == 3600000);
    CHECK(env["max_length"] == 50);
}

TEST_CASE("queue_update_changes_only_the_given_settings", "[mqctl][queue]") {
    Shell sh;
    REQUIRE_EXIT(sh.run({"queue", "create", "billing", "--partitions", "2", "--max-length", "10",
                         "--description", "old"}),
                 0);
    json before = sh.json_of({"queue", "show", "billing"});

    auto up = sh.run({"queue", "update", "billing", "--max-length", "5000", "--description",
                      "Invoices", "--retention", "12h"});
    REQUIRE_EXIT(up, 0);
    CHECK_THAT(up.out, Catch::Contains("updated queue billing"));
    json after = sh.json_of({"queue", "show", "billing"});
    CHECK(after["max_length"] == 5000);
    CHECK(after["description"] == "Invoices");
    CHECK(after["retention_ms"] == 12 * 3600000LL);
    CHECK(after["partitions"] == 2);
    CHECK(after["dedup_window_ms"] == before["dedup_window_ms"]);
    CHECK(after["id"] == before["id"]);
    CHECK(after["created_at"] == before["created_at"]);
    CHECK(after["updated_at"].get<std::string>() >= before["updated_at"].get<std::string>());

    REQUIRE_EXIT(sh.run({"queue", "update", "billing", "--no-max-length"}), 0);
    CHECK(sh.json_of({"queue", "show", "billing"})["max_length"].is_null());

    REQUIRE_EXIT(
        sh.run({"queue", "update", "billing", "--partitions", "8", "--dedup-window", "90s"}), 0);
    json grown = sh.json_of({"queue", "show", "billing"});
    CHECK(grown["partitions"] == 8);
    CHECK(grown["dedup_window_ms"] == 90000);
    CHECK(grown["description"] == "Invoices");
}

TEST_CASE("queue_update_refuses_to_reduce_partitions", "[mqctl][queue]") {
    Shell sh;
    REQUIRE_EXIT(sh.run({"queue", "create", "events", "--partitions", "4"}), 0);
    auto r = sh.run({"queue", "update", "events", "--partitions", "2"});
    REQUIRE_EXIT(r, 2);
    CHECK_THAT(r.err,
               Catch::Contains("cannot reduce partitions") && Catch::Contains("from 4 to 2"));
    CHECK(sh.json_of({"queue", "show", "events"})["partitions"] == 4);
}

TEST_CASE("queue_update_without_changes_or_with_bad_values_is_a_usage_error", "[mqctl][queue]") {
    Shell sh;
    REQUIRE_EXIT(sh.run({"queue", "create", "events", "--max-length", "7"}), 0);

    auto nothing = sh.run({"queue", "update", "events"});
    REQUIRE_EXIT(nothing, 2);
    CHECK_THAT(nothing.err, Catch::Contains("nothing to update"));

    REQUIRE_EXIT(sh.run({"queue", "update", "events", "--max-length", "0"}), 2);
    REQUIRE_EXIT(sh.run({"queue", "update", "events", "--retention", "forever"}), 2);
    REQUIRE_EXIT(sh.run({"queue", "update", "events", "--partitions", "257"}), 2);
    CHECK(sh.json_of({"queue", "show", "events"})["max_length"] == 7);
}

TEST_CASE("queue_create_refuses_out_of_range_settings", "[mqctl][queue]") {
    Shell sh;
    auto zero = sh.run({"queue", "create", "q1", "--partitions", "0"});
    REQUIRE_EXIT(zero, 2);
    CHECK_THAT(zero.err, Catch::Contains("partitions must be from 1 to 256"));
    REQUIRE_EXIT(sh.run({"queue", "create", "q1", "--partitions", "257"}), 2);
    REQUIRE_EXIT(sh.run({"queue", "create", "q1", "--retention", "0s"}), 2);
    auto weeks = sh.run({"queue", "create", "q1", "--retention", "2w"});
    REQUIRE_EXIT(weeks, 2);
    CHECK_THAT(weeks.err, Catch::Contains("invalid retention '2w'"));
    REQUIRE_EXIT(sh.run({"queue", "create", "q1", "--dedup-window", "soon"}), 2);
    REQUIRE_EXIT(sh.run({"queue", "create", "q1", "--max-length", "0"}), 2);
    REQUIRE_EXIT(sh.run({"queue", "create", "q1", "--description", std::string(1025, 'x')}), 2);
    CHECK(sh.json_of({"queue", "list"}).empty());
}

TEST_CASE("queue_create_twice_is_a_conflict_and_keeps_the_first_settings", "[mqctl][queue]") {
    Shell sh;
    REQUIRE_EXIT(sh.run({"queue", "create", "orders", "--partitions", "3"}), 0);
    auto again = sh.run({"queue", "create", "orders", "--partitions", "5"});
    REQUIRE_EXIT(again, 4);
    CHECK_THAT(again.err, Catch::Contains("queue 'orders' already exists"));

    auto j = sh.run({"-o", "json", "queue", "create", "orders"});
    REQUIRE_EXIT(j, 4);
    CHECK(json::parse(j.err)["error"]["code"] == "MQ_CONFLICT");

    CHECK(sh.json_of({"queue", "show", "orders"})["partitions"] == 3);
    CHECK(sh.json_of({"queue", "list"}).size() == 1);
}

TEST_CASE("queue_commands_on_an_unknown_queue_exit_3", "[mqctl][queue]") {
    Shell sh;
    for (const auto& args :
         std::vector<std::vector<std::string>>{{"queue", "show", "ghost"},
                                               {"queue", "update", "ghost", "--description", "x"},
                                               {"queue", "delete", "ghost", "--yes"},
                                               {"queue", "purge", "ghost", "--yes"},
                                               {"stats", "ghost"}}) {
        auto r = sh.run(args);
        INFO(args[0] << ' ' << args[1]);
        REQUIRE_EXIT(r, 3);
        CHECK_THAT(r.err, Catch::Contains("queue 'ghost' not found") &&
                              Catch::Contains("mqctl queue list"));
    }
    auto j = sh.run({"-o", "json", "queue", "show", "ghost"});
    REQUIRE_EXIT(j, 3);
    json err = json::parse(j.err)["error"];
    CHECK(err["code"] == "MQ_QUEUE_NOT_FOUND");
    CHECK(err["details"]["queue"] == "ghost");
}

TEST_CASE("queue_delete_of_an_unknown_queue_exits_3_before_asking_for_confirmation",
          "[mqctl][queue]") {
    Shell sh;
    auto r = sh.run({"queue", "delete", "ghost"});  // no --yes, not a terminal
    REQUIRE_EXIT(r, 3);
    CHECK_THAT(r.err, !Catch::Contains("--yes"));
}

TEST_CASE("invalid_queue_names_are_refused_with_the_naming_rule", "[mqctl][queue]") {
    Shell sh;
    for (const std::string name : {"bad name!", ".hidden", "-dash-first", "a/b", "ü-umlaut"}) {
        INFO("name: " << name);
        auto r = sh.run({"queue", "create", "--", name});  // "--": "-dash-first" is no flag
        REQUIRE_EXIT(r, 2);
        CHECK_THAT(r.err, Catch::Contains("invalid queue name") &&
                              Catch::Contains("use 1-64 of A-Z a-z 0-9 . _ - starting with a "
                                              "letter or digit"));
    }
    auto long_name = sh.run({"queue", "create", std::string(65, 'q')});
    REQUIRE_EXIT(long_name, 2);
    CHECK_THAT(long_name.err, Catch::Contains("longer than 64 characters"));
    REQUIRE_EXIT(sh.run({"queue", "create", std::string(64, 'q')}), 0);

    auto show = sh.run({"queue", "show", "bad name!"});
    REQUIRE_EXIT(show, 2);
    auto pub = sh.run({"publish", "bad name!", "x"});
    REQUIRE_EXIT(pub, 2);
    CHECK(sh.json_of({"queue", "list"}).size() == 1);
    CHECK(sh.redis().all_keys().empty());
}

TEST_CASE("another_tenant_cannot_see_or_touch_the_queue", "[mqctl][queue][tenancy]") {
    Shell owner;
    Shell other;
    REQUIRE_EXIT(owner.run({"queue", "create", "private", "--partitions", "2"}), 0);
    publish_ok(owner, {"private", "secret", "--key", "k"});

    // The other tenant uses the same key prefix, so only the tenant separates them.
    auto as_other = [&](std::vector<std::string> args) {
        std::vector<std::string> argv{"--tenant", other.tenant(), "--key-prefix",
                                      owner.redis().prefix()};
        argv.insert(argv.end(), args.begin(), args.end());
        return mqtest::mqctl(argv);
    };
    REQUIRE_EXIT(as_other({"queue", "show", "private"}), 3);
    REQUIRE_EXIT(as_other({"publish", "private", "intrusion"}), 3);
    REQUIRE_EXIT(as_other({"queue", "purge", "private", "--yes"}), 3);
    REQUIRE_EXIT(as_other({"queue", "delete", "private", "--yes"}), 3);
    REQUIRE_EXIT(as_other({"stats", "private"}), 3);
    auto list = as_other({"-o", "json", "queue", "list"});
    REQUIRE_EXIT(list, 0);
    CHECK(json::parse(list.out).empty());

    // The owner's queue and message are untouched.
    json q = owner.json_of({"queue", "show", "private"});
    CHECK(q["partitions"] == 2);
    CHECK(owner.xlen("private", 0) + owner.xlen("private", 1) == 1);

    // The same name is free in the other tenant, with keys of its own.
    REQUIRE_EXIT(as_other({"queue", "create", "private"}), 0);
    REQUIRE_EXIT(as_other({"publish", "private", "mine"}), 0);
    auto& r = owner.redis().redis();
    CHECK(r.command({"XLEN", owner.redis().keys().stream(other.tenant(), "private", 0)})
              .as_integer() == 1);
    CHECK(owner.xlen("private", 0) + owner.xlen("private", 1) == 1);
}

TEST_CASE("queue_delete_refuses_without_yes_when_not_on_a_terminal", "[mqctl][queue][delete]") {
    Shell sh;
    REQUIRE_EXIT(sh.run({"queue", "create", "orders"}), 0);
    publish_ok(sh, {"orders", "keep me"});

    auto r = sh.run({"queue", "delete", "orders"}, {}, "y\n");  // stdin is a file, not a tty
    REQUIRE_EXIT(r, 2);
    CHECK_THAT(r.err, Catch::Contains("Refusing without --yes"));
    CHECK(sh.json_of({"queue", "show", "orders"})["name"] == "orders");
    CHECK(sh.xlen("orders", 0) == 1);
}

TEST_CASE("queue_delete_refuses_a_queue_with_subscriptions_unless_forced",
          "[mqctl][queue][delete]") {
    Shell sh;
    REQUIRE_EXIT(sh.run({"queue", "create", "orders"}), 0);
    publish_ok(sh, {"orders", "m1"});
    std::string id = sh.json_of({"queue", "show", "orders"})["id"];
    sh.db().exec(
        "INSERT INTO message_subscriptions (tenant_id, topic_id, name, consumer_group) "
        "VALUES ('" +
        sh.tenant() + "', '" + id + "', 'billing', 'billing')");

    auto refused = sh.run({"queue", "delete", "orders", "--yes"});
    REQUIRE_EXIT(refused, 4);
    CHECK_THAT(refused.err, Catch::Contains("1 subscription(s)") && Catch::Contains("--force"));
    json still = sh.json_of({"queue", "show", "orders"});
    CHECK(still["id"] == id);
    CHECK(still["status"] == "active");
    CHECK(sh.xlen("orders", 0) == 1);

    json deleted = sh.json_of({"queue", "delete", "orders", "--yes", "--force"});
    CHECK(deleted["deleted"] == "orders");
    CHECK(deleted["subscriptions_deleted"] == 1);
    REQUIRE_EXIT(sh.run({"queue", "show", "orders"}), 3);
    int subs = sh.db().db().transact([&](pqxx::work& tx) {
        return tx
            .exec_params("SELECT count(*) FROM message_subscriptions WHERE topic_id = $1", id)[0][0]
            .as<int>();
    });
    CHECK(subs == 0);
    CHECK(sh.redis().all_keys().empty());
}

TEST_CASE("queue_delete_removes_streams_delayed_sets_dead_letters_and_idempotency_keys",
          "[mqctl][queue][delete]") {
    Shell sh;
    REQUIRE_EXIT(sh.run({"queue", "create", "orders", "--partitions", "2"}), 0);
    REQUIRE_EXIT(sh.run({"queue", "create", "bystander"}), 0);
    for (const std::string key : {"a", "b", "c", "d", "e", "f"})
        publish_ok(sh, {"orders", "now-" + key, "--key", key});
    publish_ok(sh, {"orders", "later", "--key", "a", "--delay", "1h"});
    publish_ok(sh, {"orders", "once", "--idempotency-key", "order-17"});
    publish_ok(sh, {"bystander", "stays"});
    // A dead letter as the worker would leave it.
    sh.redis().redis().command({"XADD", sh.redis().keys().dead_letters(sh.tenant(), "orders", 1),
                                "*", "id", "x", "p", "y"});

    std::int64_t stored = sh.xlen("orders", 0) + sh.xlen("orders", 1);
    REQUIRE(stored == 7);
    REQUIRE(sh.zcard("orders", 0) + sh.zcard("orders", 1) == 1);
    const std::string orders_tag = "{" + sh.tenant() + ":orders:";
    std::size_t orders_keys = 0;
    for (const auto& k : sh.redis().all_keys())
        if (k.find(orders_tag) != std::string::npos) ++orders_keys;
    REQUIRE(orders_keys == 5);  // 2 streams, 1 delayed set, 1 dead-letter stream, 1 idempotency key

    auto r = sh.run({"queue", "delete", "orders", "--yes"});
    REQUIRE_EXIT(r, 0);
    CHECK_THAT(r.out, Catch::Contains("deleted queue orders") && Catch::Contains("5 Redis key(s)"));

    for (const auto& k : sh.redis().all_keys()) CHECK(k.find(orders_tag) == std::string::npos);
    CHECK(sh.xlen("bystander", 0) == 1);
    REQUIRE_EXIT(sh.run({"queue", "show", "orders"}), 3);
    CHECK(sh.json_of({"queue", "list"}).size() == 1);

    // The name is free again and the new queue starts empty (no stale idempotency key).
    REQUIRE_EXIT(sh.run({"queue", "create", "orders"}), 0);
    auto again =
        sh.run({"-o", "json", "publish", "orders", "once", "--idempotency-key", "order-17"});
    REQUIRE_EXIT(again, 0);
    CHECK(json::parse(again.out)["duplicate"] == false);
}

TEST_CASE("queue_purge_refuses_without_yes_when_not_on_a_terminal", "[mqctl][queue][purge]") {
    Shell sh;
    REQUIRE_EXIT(sh.run({"queue", "create", "orders"}), 0);
    publish_ok(sh, {"orders", "m1"});
    publish_ok(sh, {"orders", "m2", "--delay", "1h"});
    auto r = sh.run({"queue", "purge", "orders"});
    REQUIRE_EXIT(r, 2);
    CHECK_THAT(r.err, Catch::Contains("Purge every message of queue 'orders'?") &&
                          Catch::Contains("--yes"));
    CHECK(sh.xlen("orders", 0) == 1);
    CHECK(sh.zcard("orders", 0) == 1);
}

TEST_CASE("queue_purge_empties_streams_and_delayed_sets_and_reports_counts",
          "[mqctl][queue][purge]") {
    Shell sh;
    REQUIRE_EXIT(sh.run({"queue", "create", "orders", "--partitions", "3"}), 0);
    for (const std::string key : {"a", "b", "c", "d", "e"})
        publish_ok(sh, {"orders", "m", "-k", key});
    publish_ok(sh, {"orders", "later-1", "--delay", "1h", "-k", "a"});
    publish_ok(sh, {"orders", "later-2", "--at", "2099-01-01T00:00:00Z", "-k", "b"});
    REQUIRE(sh.xlen("orders", 0) + sh.xlen("orders", 1) + sh.xlen("orders", 2) == 5);

    json purged = sh.json_of({"queue", "purge", "orders", "--yes"});
    CHECK(purged["queue"] == "orders");
    CHECK(purged["entries_removed"] == 5);
    CHECK(purged["delayed_removed"] == 2);
    for (int p = 0; p < 3; ++p) {
        CHECK(sh.xlen("orders", p) == 0);
        CHECK(sh.zcard("orders", p) == 0);
    }
    // The queue stays and takes new messages.
    CHECK(sh.json_of({"queue", "show", "orders"})["partitions"] == 3);
    publish_ok(sh, {"orders", "after purge", "-k", "a"});

    auto text = sh.run({"queue", "purge", "orders", "-y"});
    REQUIRE_EXIT(text, 0);
    CHECK_THAT(text.out, Catch::Contains("purged queue orders: 1 entries, 0 delayed"));
}

TEST_CASE("queue_purge_leaves_consumer_groups_with_nothing_pending", "[mqctl][queue][purge]") {
    Shell sh;
    REQUIRE_EXIT(sh.run({"queue", "create", "orders"}), 0);
    publish_ok(sh, {"orders", "m1"});
    publish_ok(sh, {"orders", "m2"});
    auto& redis = sh.redis().redis();
    const std::string s = sh.stream("orders", 0);
    redis.command({"XGROUP", "CREATE", s, "billing", "0"});
    auto read = redis.command(
        {"XREADGROUP", "GROUP", "billing", "worker-1", "COUNT", "10", "STREAMS", s, ">"});
    REQUIRE(read.elements.at(0).elements.at(1).elements.size() == 2);
    REQUIRE(redis.command({"XPENDING", s, "billing"}).elements.at(0).as_integer() == 2);

    json purged = sh.json_of({"queue", "purge", "orders", "--yes"});
    CHECK(purged["entries_removed"] == 2);
    CHECK(redis.command({"XPENDING", s, "billing"}).elements.at(0).as_integer() == 0);
    auto groups = redis.command({"XINFO", "GROUPS", s});
    REQUIRE(groups.elements.size() == 1);

    // A message published after the purge is delivered to the group, none of the old ones.
    publish_ok(sh, {"orders", "fresh"});
    auto next = redis.command(
        {"XREADGROUP", "GROUP", "billing", "worker-1", "COUNT", "10", "STREAMS", s, ">"});
    const auto& entries = next.elements.at(0).elements.at(1).elements;
    REQUIRE(entries.size() == 1);
    const auto& fields = entries[0].elements.at(1).elements;
    bool fresh = false;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2)
        if (fields[i].str == "p") fresh = fields[i + 1].str == "fresh";
    CHECK(fresh);
}

// A delete interrupted after the row was marked 'deleting' (Redis lost mid-way, Ctrl-C)
// is finished by running the same command again.
TEST_CASE("queue_delete_finishes_a_delete_that_was_interrupted", "[mqctl][queue][delete]") {
    Shell sh;
    REQUIRE_EXIT(sh.run({"queue", "create", "orders"}), 0);
    publish_ok(sh, {"orders", "left behind"});
    sh.db().exec("UPDATE message_topics SET status = 'deleting' WHERE tenant_id = '" + sh.tenant() +
                 "' AND name = 'orders'");
    auto r = sh.run({"queue", "delete", "orders", "--yes"});
    CHECK(r.status == 0);
    CHECK(sh.redis().all_keys().empty());
    auto again = sh.run({"queue", "create", "orders"});
    CHECK(again.status == 0);
}
