// mqctl sub create|list|show|update|delete|pause|resume, pending, claim, ack, consumers and
// the subscription part of stats, run as an operator would against the fixture's
// redis-server and PostgreSQL. Each test has its own tenant and key prefix.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>

#include "harness.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/publish/publisher.hpp"
#include "mqctl_shell.hpp"

using namespace std::chrono_literals;

namespace {

using nlohmann::json;

// An operator's shell for one test: every command acts for the test's tenant and key
// prefix, and Redis can be inspected under that prefix.
class Shell : public mqtest::MqctlShell {
  public:
    /// XINFO GROUPS of a partition: group name -> its fields.
    std::map<std::string, std::map<std::string, mq::redis::Reply>> groups(const std::string& queue,
                                                                          int p) {
        std::map<std::string, std::map<std::string, mq::redis::Reply>> out;
        auto r = redis_.redis().command_raw({"XINFO", "GROUPS", stream(queue, p)});
        if (!r.is_array()) return out;  // no stream yet
        for (const auto& g : r.elements) {
            std::map<std::string, mq::redis::Reply> fields;
            for (std::size_t i = 0; i + 1 < g.elements.size(); i += 2)
                fields[g.elements[i].str] = g.elements[i + 1];
            out[fields["name"].str] = fields;
        }
        return out;
    }
    /// Publishes `payload` straight through the library. One publisher for the whole
    /// test, so unkeyed messages alternate over the partitions (round-robin).
    mq::PublishOutcome publish(const std::string& queue, const std::string& payload) {
        mq::PublishRequest r;
        r.payload = payload;
        return publisher_.publish(this->queue(queue), r);
    }
    /// XREADGROUP GROUP g consumer COUNT n STREAMS s > on one partition, as a worker
    /// would; returns the stream ids it got.
    std::vector<std::string> read_as(const std::string& queue, const std::string& group,
                                     const std::string& consumer, int p, int count = 100) {
        auto r = redis_.redis().command({"XREADGROUP", "GROUP", group, consumer, "COUNT",
                                         std::to_string(count), "STREAMS", stream(queue, p), ">"});
        std::vector<std::string> ids;
        if (r.is_nil() || r.elements.empty()) return ids;
        for (const auto& e : r.elements[0].elements.at(1).elements)
            ids.push_back(e.elements.at(0).str);
        return ids;
    }
    /// Whether the subscription row exists in PostgreSQL.
    bool has_row(const std::string& queue, const std::string& name) {
        return mq::SubscriptionCatalog(tenant_.db()).find(tenant(), queue, name).has_value();
    }

  private:
    mq::Publisher publisher_{redis_.redis(), redis_.keys()};
};

std::string dead_redis_url() { return "redis://127.0.0.1:" + std::to_string(mqtest::dead_port()); }

}  // namespace

// ---------------------------------------------------------------- sub lifecycle

TEST_CASE("sub_create_stores_every_setting_and_list_and_show_report_them", "[mqctl][sub]") {
    Shell sh;
    sh.ok({"queue", "create", "orders", "--partitions", "3"});
    json s = sh.json_of({"sub",
                         "create",
                         "orders",
                         "billing",
                         "--url",
                         "https://billing.example/hooks/orders",
                         "--max-attempts",
                         "7",
                         "--initial-backoff",
                         "2s",
                         "--max-backoff",
                         "1m",
                         "--multiplier",
                         "3",
                         "--jitter",
                         "0.1",
                         "--visibility-timeout",
                         "45s",
                         "--filter",
                         R"({"headers":{"region":"eu"}})",
                         "--concurrency",
                         "4",
                         "--batch-size",
                         "20",
                         "--rate-limit",
                         "50",
                         "--description",
                         "Invoices"});
    CHECK(s["name"] == "billing");
    CHECK(s["queue"] == "orders");
    CHECK(s["tenant"] == sh.tenant());
    CHECK(s["type"] == "webhook");
    CHECK(s["handler"] == json{{"url", "https://billing.example/hooks/orders"}});
    CHECK(s["start_from"] == "latest");
    CHECK(s["max_attempts"] == 7);
    CHECK(s["initial_backoff_ms"] == 2000);
    CHECK(s["max_backoff_ms"] == 60000);
    CHECK(s["backoff_multiplier"] == 3.0);
    CHECK(s["jitter"] == 0.1);
    CHECK(s["visibility_timeout_ms"] == 45000);
    CHECK(s["dead_letter"] == true);
    CHECK(s["filter"] == json::parse(R"({"headers":{"region":"eu"}})"));
    CHECK(s["concurrency"] == 4);
    CHECK(s["batch_size"] == 20);
    CHECK(s["rate_limit_per_s"] == 50.0);
    CHECK(s["description"] == "Invoices");
    CHECK(s["status"] == "active");

    // A consumer group of the subscription's name on every partition.
    for (int p = 0; p < 3; ++p) {
        INFO("partition " << p);
        CHECK(sh.groups("orders", p).count("billing") == 1);
    }

    json list = sh.json_of({"sub", "list", "orders"});
    REQUIRE(list.size() == 1);
    CHECK(list[0] == s);
    CHECK(sh.json_of({"sub", "list"}).size() == 1);
    auto table = sh.run({"sub", "list"});
    REQUIRE_EXIT(table, 0);
    CHECK_THAT(table.out, Catch::StartsWith("QUEUE") && Catch::Contains("billing") &&
                              Catch::Contains("https://billing.example/hooks/orders") &&
                              Catch::Contains("Invoices"));

    json shown = sh.json_of({"sub", "show", "orders", "billing"});
    CHECK(shown["id"] == s["id"]);
    CHECK(shown["pending"] == 0);
    CHECK(shown["lag"] == 0);
    REQUIRE(shown["partitions"].size() == 3);
    for (const auto& p : shown["partitions"]) {
        CHECK(p["group"] == true);
        CHECK(p["pending"] == 0);
    }
    auto human = sh.run({"sub", "show", "orders", "billing"});
    REQUIRE_EXIT(human, 0);
    CHECK_THAT(human.out, Catch::Contains("type:") && Catch::Contains("webhook") &&
                              Catch::Contains("visibility timeout:") && Catch::Contains("45s") &&
                              Catch::Contains("PARTITION"));
}

TEST_CASE("sub_create_without_settings_is_a_pull_subscription_with_documented_defaults",
          "[mqctl][sub]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    auto r = sh.run({"sub", "create", "orders", "audit"});
    REQUIRE_EXIT(r, 0);
    CHECK_THAT(r.out, Catch::Contains("created subscription audit on queue orders"));
    json s = sh.json_of({"sub", "show", "orders", "audit"});
    CHECK(s["type"] == "pull");
    CHECK(s["handler"] == json::object());
    CHECK(s["start_from"] == "latest");
    CHECK(s["max_attempts"] == 5);
    CHECK(s["initial_backoff_ms"] == 1000);
    CHECK(s["max_backoff_ms"] == 300000);
    CHECK(s["visibility_timeout_ms"] == 30000);
    CHECK(s["filter"].is_null());
    CHECK(s["rate_limit_per_s"].is_null());

    // CONSUMER_TIMEOUT is the default visibility timeout.
    auto env = sh.run({"-o", "json", "sub", "create", "orders", "slow", "--command", "cat"},
                      {{"CONSUMER_TIMEOUT", "120000"}});
    REQUIRE_EXIT(env, 0);
    json slow = json::parse(env.out);
    CHECK(slow["visibility_timeout_ms"] == 120000);
    CHECK(slow["type"] == "exec");
    CHECK(slow["handler"] == json{{"command", "cat"}});
}

TEST_CASE("sub_create_from_earliest_sees_messages_published_before_it_and_latest_does_not",
          "[mqctl][sub]") {
    Shell sh;
    sh.ok({"queue", "create", "orders", "--partitions", "2"});
    for (int i = 0; i < 4; ++i) sh.publish("orders", "old-" + std::to_string(i));
    sh.ok({"sub", "create", "orders", "replayer", "--from", "earliest"});
    sh.ok({"sub", "create", "orders", "fresh"});

    std::int64_t lag_earliest = 0, lag_latest = 0;
    for (int p = 0; p < 2; ++p) {
        auto g = sh.groups("orders", p);
        REQUIRE(g.count("replayer") == 1);
        REQUIRE(g.count("fresh") == 1);
        CHECK(g["replayer"]["last-delivered-id"].str == "0-0");
        lag_earliest += g["replayer"]["lag"].as_integer();
        lag_latest += g["fresh"]["lag"].as_integer();
    }
    CHECK(lag_earliest == 4);
    CHECK(lag_latest == 0);
    CHECK(sh.json_of({"sub", "show", "orders", "replayer"})["lag"] == 4);

    std::size_t seen_earliest = 0, seen_latest = 0;
    for (int p = 0; p < 2; ++p) {
        seen_earliest += sh.read_as("orders", "replayer", "w", p).size();
        seen_latest += sh.read_as("orders", "fresh", "w", p).size();
    }
    CHECK(seen_earliest == 4);
    CHECK(seen_latest == 0);
}

TEST_CASE("sub_update_changes_only_the_given_settings", "[mqctl][sub]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    json before = sh.json_of({"sub", "create", "orders", "billing", "--url", "https://a.example/h",
                              "--handler", R"({"timeout":"5s"})", "--max-attempts", "3",
                              "--description", "old", "--rate-limit", "10"});
    CHECK(before["handler"] == json{{"url", "https://a.example/h"}, {"timeout", "5s"}});

    auto up = sh.run({"sub", "update", "orders", "billing", "--max-attempts", "9", "--description",
                      "new", "--url", "https://b.example/h"});
    REQUIRE_EXIT(up, 0);
    CHECK_THAT(up.out, Catch::Contains("updated subscription billing"));
    json after = sh.json_of({"sub", "show", "orders", "billing"});
    CHECK(after["id"] == before["id"]);
    CHECK(after["max_attempts"] == 9);
    CHECK(after["description"] == "new");
    // The same kind of handler keeps its other settings.
    CHECK(after["handler"] == json{{"url", "https://b.example/h"}, {"timeout", "5s"}});
    CHECK(after["initial_backoff_ms"] == before["initial_backoff_ms"]);
    CHECK(after["visibility_timeout_ms"] == before["visibility_timeout_ms"]);
    CHECK(after["rate_limit_per_s"] == 10.0);

    // Another kind of handler starts from its own settings.
    json exec = sh.json_of({"sub", "update", "orders", "billing", "--command", "./handle.sh",
                            "--no-rate-limit", "--no-dead-letter"});
    CHECK(exec["type"] == "exec");
    CHECK(exec["handler"] == json{{"command", "./handle.sh"}});
    CHECK(exec["rate_limit_per_s"].is_null());
    CHECK(exec["dead_letter"] == false);
    CHECK(sh.json_of({"sub", "update", "orders", "billing", "--dead-letter"})["dead_letter"] ==
          true);
    json filtered = sh.json_of(
        {"sub", "update", "orders", "billing", "--filter", R"({"headers":{"a":["1","2"]}})"});
    CHECK(filtered["filter"]["headers"]["a"] == json{"1", "2"});
    CHECK(sh.json_of({"sub", "update", "orders", "billing", "--no-filter"})["filter"].is_null());
}

TEST_CASE("sub_pause_and_resume_change_the_status_and_print_it", "[mqctl][sub]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    sh.ok({"sub", "create", "orders", "billing"});
    auto paused = sh.run({"sub", "pause", "orders", "billing"});
    REQUIRE_EXIT(paused, 0);
    CHECK_THAT(paused.out, Catch::Contains("billing") && Catch::Contains("paused"));
    CHECK(sh.json_of({"sub", "show", "orders", "billing"})["status"] == "paused");
    // Pausing keeps the group: messages keep arriving in it.
    sh.publish("orders", "while-paused");
    CHECK(sh.groups("orders", 0)["billing"]["lag"].as_integer() == 1);

    json resumed = sh.json_of({"sub", "resume", "orders", "billing"});
    CHECK(resumed["status"] == "active");
    CHECK(sh.json_of({"sub", "list", "orders"})[0]["status"] == "active");
}

TEST_CASE("sub_pause_resume_update_and_delete_announce_on_the_control_channel", "[mqctl][sub]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    sh.ok({"sub", "create", "orders", "billing"});

    // A second connection listens like a worker does. In subscribed mode a PING is
    // answered after every message already queued for this client, so the reply read
    // after it is the announcement if there was one (and the PING's "pong" otherwise).
    auto listener = sh.redis().connect();
    listener->set_command_timeout(3000ms);
    auto sub = listener->command({"SUBSCRIBE", sh.redis().prefix() + "control"});
    REQUIRE(sub.elements.at(0).str == "subscribe");
    // Each message read this way leaves one "pong" unread, so skip pongs first.
    auto next_event = [&]() -> json {
        for (int tries = 0; tries < 10; ++tries) {
            auto r = listener->command({"PING"});
            REQUIRE(r.is_array());
            if (r.elements.at(0).str == "message") return json::parse(r.elements.at(2).str);
        }
        FAIL("no announcement on " << sh.redis().prefix() << "control");
        return {};
    };

    sh.ok({"sub", "pause", "orders", "billing"});
    json e = next_event();
    CHECK(e["event"] == "pause");
    CHECK(e["tenant"] == sh.tenant());
    CHECK(e["queue"] == "orders");
    CHECK(e["subscription"] == "billing");

    sh.ok({"sub", "resume", "orders", "billing"});
    CHECK(next_event()["event"] == "resume");
    sh.ok({"sub", "update", "orders", "billing", "--max-attempts", "2"});
    CHECK(next_event()["event"] == "changed");
    sh.ok({"sub", "delete", "orders", "billing", "--yes"});
    CHECK(next_event()["event"] == "deleted");
}

TEST_CASE("sub_delete_removes_the_row_and_the_groups_of_every_partition", "[mqctl][sub]") {
    Shell sh;
    sh.ok({"queue", "create", "orders", "--partitions", "2"});
    sh.ok({"sub", "create", "orders", "billing", "--from", "earliest"});
    sh.ok({"sub", "create", "orders", "audit"});
    sh.publish("orders", "x");

    // Off a terminal, delete needs --yes and changes nothing without it.
    auto refused = sh.run({"sub", "delete", "orders", "billing"});
    REQUIRE_EXIT(refused, 2);
    CHECK_THAT(refused.err, Catch::Contains("--yes"));
    CHECK(sh.has_row("orders", "billing"));

    auto r = sh.run({"sub", "delete", "orders", "billing", "--yes"});
    REQUIRE_EXIT(r, 0);
    CHECK_THAT(r.out, Catch::Contains("deleted subscription billing"));
    CHECK_FALSE(sh.has_row("orders", "billing"));
    for (int p = 0; p < 2; ++p) {
        auto g = sh.groups("orders", p);
        CHECK(g.count("billing") == 0);
        CHECK(g.count("audit") == 1);  // the other subscription is untouched
    }
    REQUIRE_EXIT(sh.run({"sub", "show", "orders", "billing"}), 3);
    CHECK(sh.json_of({"sub", "list", "orders"}).size() == 1);
}

// ---------------------------------------------------------------- sub errors

TEST_CASE("sub_create_twice_is_a_conflict_and_keeps_the_first_settings", "[mqctl][sub]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    sh.ok({"sub", "create", "orders", "billing", "--max-attempts", "3"});
    auto again = sh.run({"sub", "create", "orders", "billing", "--max-attempts", "8"});
    REQUIRE_EXIT(again, 4);
    CHECK_THAT(again.err, Catch::Contains("already has a subscription named 'billing'"));
    auto j = sh.run({"-o", "json", "sub", "create", "orders", "billing"});
    REQUIRE_EXIT(j, 4);
    CHECK(json::parse(j.err)["error"]["code"] == "MQ_CONFLICT");
    CHECK(sh.json_of({"sub", "show", "orders", "billing"})["max_attempts"] == 3);
}

TEST_CASE("sub_commands_on_an_unknown_queue_or_subscription_exit_3", "[mqctl][sub]") {
    Shell sh;
    auto r = sh.run({"sub", "create", "nope", "billing"});
    REQUIRE_EXIT(r, 3);
    CHECK_THAT(r.err, Catch::Contains("queue 'nope' not found"));
    REQUIRE_EXIT(sh.run({"sub", "list", "nope"}), 3);
    REQUIRE_EXIT(sh.run({"sub", "show", "nope", "billing"}), 3);

    sh.ok({"queue", "create", "orders"});
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"sub", "show", "orders", "ghost"},
             {"sub", "update", "orders", "ghost", "--max-attempts", "2"},
             {"sub", "delete", "orders", "ghost"},  // before asking for confirmation
             {"sub", "pause", "orders", "ghost"},
             {"sub", "resume", "orders", "ghost"},
             {"pending", "orders", "--sub", "ghost"},
             {"consumers", "orders", "--sub", "ghost"},
             {"ack", "orders", "--sub", "ghost", "0:1-0"},
             {"claim", "orders", "--sub", "ghost", "--consumer", "w", "0:1-0"}}) {
        INFO(args[0] << ' ' << args[1]);
        REQUIRE_EXIT(sh.run(args), 3);
    }
    auto j = sh.run({"-o", "json", "sub", "show", "orders", "ghost"});
    REQUIRE_EXIT(j, 3);
    CHECK(json::parse(j.err)["error"]["code"] == "MQ_SUBSCRIPTION_NOT_FOUND");
    CHECK(sh.json_of({"sub", "list", "orders"}).empty());
}

TEST_CASE("sub_create_refuses_invalid_names_and_settings_with_exit_2_and_stores_nothing",
          "[mqctl][sub]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    // Bad input is a usage error even with Redis down: it is checked before connecting.
    const std::map<std::string, std::string> down{{"REDIS_URL", dead_redis_url()}};
    const std::vector<std::vector<std::string>> bad{
        {"orders", "bad:name"},
        {"orders", "with space"},
        {"bad{queue}", "billing"},
        {"orders", "billing", "--filter", "{not json"},
        {"orders", "billing", "--filter", R"({"payload":{"a":"b"}})"},
        {"orders", "billing", "--jitter", "2"},
        {"orders", "billing", "--multiplier", "0.5"},
        {"orders", "billing", "--max-attempts", "0"},
        {"orders", "billing", "--max-attempts", "many"},
        {"orders", "billing", "--initial-backoff", "soon"},
        {"orders", "billing", "--initial-backoff", "10s", "--max-backoff", "1s"},
        {"orders", "billing", "--visibility-timeout", "10ms"},
        {"orders", "billing", "--concurrency", "0"},
        {"orders", "billing", "--rate-limit", "0"},
        {"orders", "billing", "--type", "carrier-pigeon"},
        {"orders", "billing", "--type", "webhook"},
        {"orders", "billing", "--type", "exec"},
        {"orders", "billing", "--url", "ftp://files.example/x"},
        {"orders", "billing", "--url", "https://a.example", "--command", "cat"},
        {"orders", "billing", "--type", "pull", "--url", "https://a.example"},
        {"orders", "billing", "--handler", "[1,2]"},
        {"orders", "billing", "--from", "yesterday"},
    };
    for (const auto& args : bad) {
        std::vector<std::string> argv{"sub", "create"};
        argv.insert(argv.end(), args.begin(), args.end());
        INFO(argv.back());
        REQUIRE_EXIT(sh.run(argv), 2);
        REQUIRE_EXIT(sh.run(argv, down), 2);
    }
    auto j = sh.run({"-o", "json", "sub", "create", "orders", "billing", "--jitter", "2"});
    REQUIRE_EXIT(j, 2);
    json err = json::parse(j.err)["error"];
    CHECK(err["code"] == "MQ_VALIDATION_ERROR");
    CHECK_THAT(err["message"].get<std::string>(), Catch::Contains("jitter"));
    CHECK(sh.json_of({"sub", "list"}).empty());
    CHECK(sh.groups("orders", 0).empty());

    // update: nothing to change, --from after creation, bad values.
    sh.ok({"sub", "create", "orders", "billing"});
    REQUIRE_EXIT(sh.run({"sub", "update", "orders", "billing"}), 2);
    REQUIRE_EXIT(sh.run({"sub", "update", "orders", "billing", "--from", "earliest"}), 2);
    REQUIRE_EXIT(sh.run({"sub", "update", "orders", "billing", "--jitter", "-1"}), 2);
    REQUIRE_EXIT(sh.run({"sub", "update", "orders", "billing", "--filter", "{", "--no-filter"}), 2);
    CHECK(sh.json_of({"sub", "show", "orders", "billing"})["jitter"] == 0.2);
}

TEST_CASE("sub_create_with_redis_down_exits_5_and_leaves_no_row", "[mqctl][sub][backends]") {
    Shell sh;
    sh.ok({"queue", "create", "orders", "--partitions", "2"});
    const std::map<std::string, std::string> down{{"REDIS_URL", dead_redis_url()}};
    auto r = sh.run({"sub", "create", "orders", "billing"}, down);
    REQUIRE_EXIT(r, 5);
    CHECK_THAT(r.err, Catch::Contains("cannot reach Redis") && Catch::Contains("REDIS_URL"));
    CHECK_FALSE(sh.has_row("orders", "billing"));
    CHECK(sh.json_of({"sub", "list"}).empty());

    // Once Redis is back the same command works: nothing half-exists in the way.
    sh.ok({"sub", "create", "orders", "billing"});
    CHECK(sh.groups("orders", 1).count("billing") == 1);

    // pause/resume/delete with Redis down change nothing either.
    REQUIRE_EXIT(sh.run({"sub", "pause", "orders", "billing"}, down), 5);
    CHECK(sh.json_of({"sub", "show", "orders", "billing"})["status"] == "active");
    REQUIRE_EXIT(sh.run({"sub", "update", "orders", "billing", "--max-attempts", "2"}, down), 5);
    CHECK(sh.json_of({"sub", "show", "orders", "billing"})["max_attempts"] == 5);
    REQUIRE_EXIT(sh.run({"sub", "delete", "orders", "billing", "--yes"}, down), 5);
    CHECK(sh.has_row("orders", "billing"));
    // sub list needs only PostgreSQL.
    REQUIRE_EXIT(sh.run({"sub", "list"}, down), 0);
}

// ---------------------------------------------------------------- pending, ack, claim

TEST_CASE("pending_lists_entries_a_consumer_read_oldest_first_and_ack_removes_them",
          "[mqctl][pending][ack]") {
    Shell sh;
    sh.ok({"queue", "create", "orders", "--partitions", "2"});
    sh.ok({"sub", "create", "orders", "billing"});
    for (int i = 0; i < 6; ++i) sh.publish("orders", "m" + std::to_string(i));
    std::vector<std::string> handles;
    for (int p = 0; p < 2; ++p)
        for (const auto& id : sh.read_as("orders", "billing", "w1", p))
            handles.push_back(std::to_string(p) + ":" + id);
    REQUIRE(handles.size() == 6);

    json pending = sh.json_of({"pending", "orders", "--sub", "billing"});
    CHECK(pending["pending"] == 6);
    CHECK(pending["subscription"] == "billing");
    REQUIRE(pending["partitions"].size() == 2);
    for (const auto& p : pending["partitions"]) {
        CHECK(p["pending"] == 3);
        REQUIRE(p["consumers"].size() == 1);
        CHECK(p["consumers"][0]["consumer"] == "w1");
        CHECK(p["consumers"][0]["pending"] == 3);
    }
    const json& entries = pending["entries"];
    REQUIRE(entries.size() == 6);
    std::set<std::string> listed;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        CHECK(entries[i]["consumer"] == "w1");
        CHECK(entries[i]["deliveries"] == 1);
        CHECK(entries[i]["idle_ms"].get<std::int64_t>() >= 0);
        CHECK(entries[i]["id"] == std::to_string(entries[i]["partition"].get<int>()) + ":" +
                                      entries[i]["stream_id"].get<std::string>());
        listed.insert(entries[i]["id"].get<std::string>());
        if (i > 0) CHECK(entries[i - 1]["stream_id"] <= entries[i]["stream_id"]);  // oldest first
    }
    CHECK(listed == std::set<std::string>(handles.begin(), handles.end()));
    CHECK(sh.json_of({"pending", "orders", "--sub", "billing", "--count", "2"})["entries"].size() ==
          2);

    auto table = sh.run({"pending", "orders", "--sub", "billing"});
    REQUIRE_EXIT(table, 0);
    CHECK_THAT(table.out, Catch::Contains("6 pending") && Catch::Contains("PARTITION") &&
                              Catch::Contains("DELIVERIES") && Catch::Contains(handles[0]) &&
                              Catch::Contains("w1"));

    auto ack = sh.run({"ack", "orders", "--sub", "billing", handles[0], handles[3]});
    REQUIRE_EXIT(ack, 0);
    CHECK_THAT(ack.out, Catch::Contains("acked 2 of 2"));
    CHECK(sh.json_of({"pending", "orders", "--sub", "billing"})["pending"] == 4);
    // Acking again is harmless and says nothing was pending.
    json again = sh.json_of({"ack", "orders", "--sub", "billing", handles[0]});
    CHECK(again["acked"] == 0);
    CHECK(again["not_pending"] == 1);
    CHECK(sh.groups("orders", 0)["billing"]["pending"].as_integer() +
              sh.groups("orders", 1)["billing"]["pending"].as_integer() ==
          4);

    // Ids are checked before anything connects.
    REQUIRE_EXIT(sh.run({"ack", "orders", "--sub", "billing", "not-an-id"}), 2);
    REQUIRE_EXIT(sh.run({"ack", "orders", "--sub", "billing", "0:abc"}), 2);
    REQUIRE_EXIT(sh.run({"ack", "orders", "--sub", "billing"}), 2);
}

TEST_CASE("pending_of_a_subscription_with_nothing_in_flight_says_so", "[mqctl][pending]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    sh.ok({"sub", "create", "orders", "billing"});
    auto r = sh.run({"pending", "orders", "--sub", "billing"});
    REQUIRE_EXIT(r, 0);
    CHECK_THAT(r.out, Catch::Contains("nothing pending"));
    json j = sh.json_of({"pending", "orders", "--sub", "billing"});
    CHECK(j["pending"] == 0);
    CHECK(j["entries"].empty());
}

TEST_CASE("claim_moves_pending_entries_to_another_consumer_and_consumers_lists_them",
          "[mqctl][claim][consumers]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    sh.ok({"sub", "create", "orders", "billing"});
    for (int i = 0; i < 3; ++i) sh.publish("orders", "m" + std::to_string(i));
    auto ids = sh.read_as("orders", "billing", "w1", 0);
    REQUIRE(ids.size() == 3);

    auto claim = sh.run(
        {"claim", "orders", "--sub", "billing", "--consumer", "w2", "0:" + ids[0], "0:" + ids[1]});
    REQUIRE_EXIT(claim, 0);
    CHECK_THAT(claim.out, Catch::Contains("claimed 2 of 2"));

    json w2 = sh.json_of({"pending", "orders", "--sub", "billing", "--consumer", "w2"});
    CHECK(w2["pending"] == 2);
    for (const auto& e : w2["entries"]) {
        CHECK(e["consumer"] == "w2");
        CHECK(e["deliveries"] == 1);  // a claim by hand is not a delivery
    }

    json consumers = sh.json_of({"consumers", "orders", "--sub", "billing"});
    REQUIRE(consumers.size() == 2);
    CHECK(consumers[0]["consumer"] == "w1");
    CHECK(consumers[0]["pending"] == 1);
    CHECK(consumers[1]["consumer"] == "w2");
    CHECK(consumers[1]["pending"] == 2);
    CHECK(consumers[1]["partitions"] == json::array({0}));
    auto table = sh.run({"consumers", "orders", "--sub", "billing"});
    REQUIRE_EXIT(table, 0);
    CHECK_THAT(table.out,
               Catch::StartsWith("CONSUMER") && Catch::Contains("w1") && Catch::Contains("w2"));

    // An id that is not pending (acked, or never existed) is reported: exit 3.
    sh.ok({"ack", "orders", "--sub", "billing", "0:" + ids[2]});
    auto missing = sh.run({"-o", "json", "claim", "orders", "--sub", "billing", "--consumer", "w2",
                           "0:" + ids[2], "0:" + ids[0]});
    REQUIRE_EXIT(missing, 3);
    json report = json::parse(missing.out);
    CHECK(report["claimed"] == 1);
    CHECK(report["not_pending"] == 1);
    REQUIRE_EXIT(sh.run({"claim", "orders", "--sub", "billing", "0:" + ids[0]}), 2);  // --consumer
    REQUIRE_EXIT(sh.run({"claim", "orders", "--sub", "billing", "--consumer", "w", "x:1-0"}), 2);
}

TEST_CASE("consumers_shows_entries_waiting_for_a_retry_as_such", "[mqctl][consumers]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    sh.ok({"sub", "create", "orders", "billing"});
    sh.publish("orders", "a");
    sh.publish("orders", "b");
    auto ids = sh.read_as("orders", "billing", "w1", 0);
    REQUIRE(ids.size() == 2);
    mq::ConsumerGroups groups(sh.redis().redis(), sh.redis().keys());
    groups.retry_later(sh.queue("orders"), "billing", 0, ids[0], std::nullopt);

    auto table = sh.run({"consumers", "orders", "--sub", "billing"});
    REQUIRE_EXIT(table, 0);
    CHECK_THAT(table.out, Catch::Contains("(waiting for retry)") && Catch::Contains("w1"));
    json j = sh.json_of({"consumers", "orders", "--sub", "billing"});
    REQUIRE(j.size() == 2);
    CHECK(j[0]["consumer"] == "mq-retry");
    CHECK(j[0]["waiting_for_retry"] == true);
    CHECK(sh.run({"pending", "orders", "--sub", "billing"}).out.find("(waiting for retry)") !=
          std::string::npos);
}

// ---------------------------------------------------------------- stats

TEST_CASE("stats_shows_each_subscription_with_pending_and_lag_summed_over_partitions",
          "[mqctl][stats][sub]") {
    Shell sh;
    sh.ok({"queue", "create", "orders", "--partitions", "2"});
    sh.ok({"sub", "create", "orders", "billing"});
    sh.ok({"sub", "create", "orders", "audit"});
    for (int i = 0; i < 6; ++i) sh.publish("orders", "m" + std::to_string(i));
    std::size_t read = 0;
    for (int p = 0; p < 2; ++p) read += sh.read_as("orders", "billing", "w1", p, 2).size();
    REQUIRE(read == 4);

    json stats = sh.json_of({"stats", "orders"});
    const json& subs = stats["subscriptions"];
    REQUIRE(subs.size() == 2);
    CHECK(subs[0]["name"] == "audit");
    CHECK(subs[0]["pending"] == 0);
    CHECK(subs[0]["lag"] == 6);
    CHECK(subs[1]["name"] == "billing");
    CHECK(subs[1]["pending"] == 4);
    CHECK(subs[1]["lag"] == 2);
    CHECK(subs[1]["partitions"] == 2);
    CHECK(stats["partitions"][0]["groups"].size() == 2);

    auto table = sh.run({"stats", "orders"});
    REQUIRE_EXIT(table, 0);
    CHECK_THAT(table.out, Catch::Contains("SUBSCRIPTION") &&
                              Catch::Matches("[\\s\\S]*\nbilling +4 +2 +0 +2/2\n[\\s\\S]*"));
}

TEST_CASE("stats_reports_backlog_as_lag_plus_pending_and_the_slowest_subscription_per_queue",
          "[mqctl][stats][sub][inspector]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    sh.ok({"sub", "create", "orders", "billing"});
    sh.ok({"sub", "create", "orders", "audit"});
    for (int i = 0; i < 6; ++i) sh.publish("orders", "m" + std::to_string(i));
    sh.ok({"publish", "orders", "later", "--delay", "1h"});
    // billing: reads 5, acks 2 by hand, holds 3 pending. audit: reads 1 and acks it.
    auto ids = sh.read_as("orders", "billing", "w1", 0, 5);
    REQUIRE(ids.size() == 5);
    sh.ok({"ack", "orders", "--sub", "billing", "0:" + ids[0], "0:" + ids[1]});
    auto audit = sh.read_as("orders", "audit", "w2", 0, 1);
    REQUIRE(audit.size() == 1);
    sh.ok({"ack", "orders", "--sub", "audit", "0:" + audit[0]});

    json stats = sh.json_of({"stats", "orders"});
    CHECK(stats["length"] == 6);
    CHECK(stats["delayed"] == 1);
    CHECK(stats["pending"] == 3);
    CHECK(stats["lag"] == 1 + 5);
    CHECK(stats["backlog"] == 5);  // audit has 5 to do, billing 4
    REQUIRE(stats["oldest_pending_age_ms"].is_number_integer());
    const json& subs = stats["subscriptions"];
    REQUIRE(subs.size() == 2);
    CHECK(subs[0]["name"] == "audit");
    CHECK(subs[0]["backlog"] == 5);
    CHECK(subs[0]["oldest_pending_age_ms"].is_null());
    CHECK(subs[1]["name"] == "billing");
    CHECK(subs[1]["backlog"] == 4);
    CHECK(subs[1]["pending"] == 3);
    CHECK(subs[1]["lag"] == 1);
    CHECK(subs[1]["expired"] == 0);
    CHECK(stats["partitions"][0]["backlog"] == 5);

    auto table = sh.run({"stats", "orders"});
    REQUIRE_EXIT(table, 0);
    CHECK_THAT(table.out, Catch::Contains("\nbacklog 5 ") && Catch::Contains("oldest pending"));

    // Redis down: exit 5 with the usual message, in JSON too.
    auto down = sh.run({"-o", "json", "stats", "orders"}, {{"REDIS_URL", dead_redis_url()}});
    REQUIRE_EXIT(down, 5);
    CHECK(json::parse(down.err)["error"]["code"] == "MQ_BACKEND_UNAVAILABLE");
}
