// mqctl dlq list|show|replay|purge, run as an operator would against the fixture's
// redis-server and PostgreSQL. Dead letters are made the way a worker makes them
// (ConsumerGroups::dead_letter). Each test has its own tenant and key prefix.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>

#include "harness.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/consume/dead_letters.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/crypto/keyring.hpp"
#include "mq/publish/publish_use_case.hpp"
#include "mq/publish/publisher.hpp"
#include "mqctl_shell.hpp"

using namespace std::chrono_literals;

namespace {

using nlohmann::json;

/// One stream entry's fields.
using Fields = std::map<std::string, std::string>;

// An operator's shell for one test: every command acts for the test's tenant and key
// prefix; a worker's side (publish, read, dead-letter) runs through the library.
class Shell : public mqtest::MqctlShell {
  public:
    /// Publishes `n` messages (payload "<stem>-<i>", key "k<i>", header source=test),
    /// lets consumer "w1" of `sub` read every partition and dead-letters what it read,
    /// as a worker does after the last attempt. Returns the message ids.
    std::vector<std::string> dead_letters(const std::string& queue, const std::string& sub, int n,
                                          const std::string& stem = "payload") {
        mq::Queue q = this->queue(queue);
        mq::Subscription s = mq::SubscriptionCatalog(tenant_.db()).get(tenant(), queue, sub);
        std::vector<std::string> ids;
        for (int i = 0; i < n; ++i) {
            mq::PublishRequest r;
            r.payload = stem + "-" + std::to_string(i);
            r.key = "k" + std::to_string(i);
            r.headers = {{"source", "test"}};
            ids.push_back(publisher_.publish(q, r).message_id);
        }
        mq::ConsumerGroups groups(redis_.redis(), redis_.keys());
        for (int p = 0; p < q.partition_count; ++p)
            for (const auto& f : groups.read_new(q, s, "w1", p, 100, 0ms))
                REQUIRE(groups.dead_letter(q, sub, p, f.stream_id, "max_attempts",
                                           "HTTP 503 from billing", 5));
        return ids;
    }
    /// Every entry of every partition stream of `queue`.
    std::vector<Fields> entries(const std::string& queue) {
        std::vector<Fields> out;
        for (int p = 0; p < this->queue(queue).partition_count; ++p) {
            auto r = redis_.redis().command(
                {"XRANGE", redis_.keys().stream(tenant(), queue, p), "-", "+"});
            for (const auto& e : r.elements) {
                Fields f;
                const auto& kv = e.elements.at(1).elements;
                for (std::size_t i = 0; i + 1 < kv.size(); i += 2) f[kv[i].str] = kv[i + 1].str;
                out.push_back(std::move(f));
            }
        }
        return out;
    }
    /// Entries of `queue` that are replays (carry the mq-replayed-from header).
    std::vector<Fields> replays(const std::string& queue) {
        std::vector<Fields> out;
        for (auto& f : entries(queue))
            if (f.count("h") && json::parse(f["h"]).contains("mq-replayed-from")) out.push_back(f);
        return out;
    }
    /// Dead-letters whatever `sub` has not read yet (messages published with mqctl).
    void dead_letter_unread(const std::string& queue, const std::string& sub) {
        mq::Queue q = this->queue(queue);
        mq::Subscription s = mq::SubscriptionCatalog(tenant_.db()).get(tenant(), queue, sub);
        mq::ConsumerGroups groups(redis_.redis(), redis_.keys());
        for (int p = 0; p < q.partition_count; ++p)
            for (const auto& f : groups.read_new(q, s, "w1", p, 100, 0ms))
                REQUIRE(groups.dead_letter(q, sub, p, f.stream_id, "max_attempts", "HTTP 500", 5));
    }
    std::size_t dlq_size(const std::string& queue) {
        return json_of({"dlq", "list", queue, "--limit", "1000"}).size();
    }

  private:
    mq::Publisher publisher_{redis_.redis(), redis_.keys()};
};

/// A queue "orders" with 2 partitions and a subscription "billing" reading from the start.
void orders_with_billing(Shell& sh) {
    sh.ok({"queue", "create", "orders", "--partitions", "2"});
    sh.ok({"sub", "create", "orders", "billing", "--from", "earliest"});
}

}  // namespace

TEST_CASE("dlq_list_and_show_report_dead_letters_with_reason_error_and_payload", "[mqctl][dlq]") {
    Shell sh;
    orders_with_billing(sh);
    auto ids = sh.dead_letters("orders", "billing", 3);

    json list = sh.json_of({"dlq", "list", "orders"});
    REQUIRE(list.size() == 3);
    std::set<std::string> message_ids;
    for (const auto& d : list) {
        CHECK(d["subscription"] == "billing");
        CHECK(d["reason"] == "max_attempts");
        CHECK(d["error"] == "HTTP 503 from billing");
        CHECK(d["attempts"] == 5);
        CHECK(d["headers"] == json{{"source", "test"}});
        CHECK_THAT(d["payload"].get<std::string>(), Catch::StartsWith("payload-"));
        CHECK_THAT(d["id"].get<std::string>(), Catch::Matches("[01]:[0-9]+-[0-9]+"));
        message_ids.insert(d["message_id"].get<std::string>());
    }
    CHECK(message_ids == std::set<std::string>(ids.begin(), ids.end()));
    CHECK(sh.json_of({"stats", "orders"})["dead_letters"] == 3);

    auto table = sh.run({"dlq", "list", "orders"});
    REQUIRE_EXIT(table, 0);
    CHECK_THAT(table.out, Catch::StartsWith("ID") && Catch::Contains("billing") &&
                              Catch::Contains("max_attempts") &&
                              Catch::Contains("HTTP 503 from billing") &&
                              Catch::Contains(list[0]["id"].get<std::string>()));

    const std::string id = list[1]["id"];
    json shown = sh.json_of({"dlq", "show", "orders", id});
    CHECK(shown["id"] == id);
    CHECK(shown["payload"] == list[1]["payload"]);
    CHECK(shown["message_id"] == list[1]["message_id"]);
    CHECK(shown["key"] == list[1]["key"]);
    CHECK_FALSE(shown["original_stream_id"].get<std::string>().empty());
    auto human = sh.run({"dlq", "show", "orders", id});
    REQUIRE_EXIT(human, 0);
    CHECK_THAT(human.out,
               Catch::Contains("reason:") && Catch::Contains("max_attempts") &&
                   Catch::Contains("HTTP 503 from billing") && Catch::Contains("\"source\"") &&
                   Catch::Contains("payload:\n" + list[1]["payload"].get<std::string>()));

    // Filters: subscription, age, time, count.
    CHECK(sh.json_of({"dlq", "list", "orders", "--sub", "audit"}).empty());
    CHECK(sh.json_of({"dlq", "list", "orders", "--sub", "billing"}).size() == 3);
    CHECK(sh.json_of({"dlq", "list", "orders", "--limit", "2"}).size() == 2);
    CHECK(sh.json_of({"dlq", "list", "orders", "--since", "1h"}).size() == 3);
    CHECK(sh.json_of({"dlq", "list", "orders", "--since", "2100-01-01T00:00:00Z"}).empty());
    REQUIRE_EXIT(sh.run({"dlq", "list", "orders", "--since", "yesterday"}), 2);
    REQUIRE_EXIT(sh.run({"dlq", "list", "orders", "--limit", "0"}), 2);

    REQUIRE_EXIT(sh.run({"dlq", "show", "orders", "0:1-0"}), 3);
    REQUIRE_EXIT(sh.run({"dlq", "show", "orders", "9:" + id.substr(2)}), 3);
    REQUIRE_EXIT(sh.run({"dlq", "show", "orders", "not-an-id"}), 2);
}

TEST_CASE("dlq_replay_by_id_publishes_again_and_then_removes_the_dead_letter", "[mqctl][dlq]") {
    Shell sh;
    orders_with_billing(sh);
    auto ids = sh.dead_letters("orders", "billing", 2);
    json list = sh.json_of({"dlq", "list", "orders"});
    REQUIRE(list.size() == 2);
    const std::string id = list[0]["id"];

    auto r = sh.run({"dlq", "replay", "orders", id});
    REQUIRE_EXIT(r, 0);
    CHECK_THAT(r.out, Catch::Contains("replayed " + id) && Catch::Contains("replayed 1 of 1"));

    json left = sh.json_of({"dlq", "list", "orders"});
    REQUIRE(left.size() == 1);
    CHECK(left[0]["id"] != id);
    auto replays = sh.replays("orders");
    REQUIRE(replays.size() == 1);
    CHECK(replays[0]["p"] == list[0]["payload"]);
    CHECK(replays[0]["id"] != list[0]["message_id"]);  // a new message, pointing at the old
    CHECK(json::parse(replays[0]["h"])["mq-replayed-from"] == list[0]["message_id"]);
    CHECK(json::parse(replays[0]["h"])["source"] == "test");

    // The subscription gets it again: it is pending-free and one entry behind.
    json sub = sh.json_of({"sub", "show", "orders", "billing"});
    CHECK(sub["lag"] == 1);
    CHECK(sub["pending"] == 0);

    // Replaying the same id again finds nothing: exit 3.
    auto again = sh.run({"dlq", "replay", "orders", id});
    REQUIRE_EXIT(again, 3);
    CHECK_THAT(again.err, Catch::Contains("not found"));
    CHECK(sh.replays("orders").size() == 1);
}

TEST_CASE("dlq_replay_all_and_since_replay_every_matching_dead_letter_oldest_first",
          "[mqctl][dlq]") {
    Shell sh;
    orders_with_billing(sh);
    sh.dead_letters("orders", "billing", 4, "bill");
    sh.ok({"sub", "create", "orders", "audit"});  // from latest: it sees only the next two
    sh.dead_letters("orders", "audit", 2, "audit");
    REQUIRE(sh.dlq_size("orders") == 6);

    // --all asks first; off a terminal it needs --yes and replays nothing without it.
    auto refused = sh.run({"dlq", "replay", "orders", "--all"});
    REQUIRE_EXIT(refused, 2);
    CHECK_THAT(refused.err, Catch::Contains("--yes"));
    CHECK(sh.dlq_size("orders") == 6);

    json audit = sh.json_of({"dlq", "replay", "orders", "--all", "--yes", "--sub", "audit"});
    CHECK(audit["replayed"] == 2);
    CHECK(audit["failed"] == 0);
    CHECK(sh.json_of({"dlq", "list", "orders", "--sub", "audit"}).empty());
    CHECK(sh.dlq_size("orders") == 4);

    json since = sh.json_of({"dlq", "replay", "orders", "--since", "1h"});
    CHECK(since["replayed"] == 4);
    REQUIRE(since["results"].size() == 4);
    CHECK(sh.dlq_size("orders") == 0);
    CHECK(sh.replays("orders").size() == 6);

    auto nothing = sh.run({"dlq", "replay", "orders", "--all", "--yes"});
    REQUIRE_EXIT(nothing, 0);
    CHECK_THAT(nothing.out, Catch::Contains("nothing to replay"));
}

TEST_CASE("dlq_replay_to_another_queue_publishes_there", "[mqctl][dlq]") {
    Shell sh;
    orders_with_billing(sh);
    sh.ok({"queue", "create", "parking"});
    sh.dead_letters("orders", "billing", 2);
    json list = sh.json_of({"dlq", "list", "orders"});

    REQUIRE_EXIT(sh.run({"dlq", "replay", "orders", list[0]["id"], "--to", "nowhere"}), 3);
    CHECK(sh.dlq_size("orders") == 2);

    json out =
        sh.json_of({"dlq", "replay", "orders", list[0]["id"], list[1]["id"], "--to", "parking"});
    CHECK(out["to"] == "parking");
    CHECK(out["replayed"] == 2);
    CHECK(sh.dlq_size("orders") == 0);
    CHECK(sh.replays("parking").size() == 2);
    CHECK(sh.replays("orders").empty());
}

TEST_CASE("dlq_replay_that_fails_keeps_the_dead_letter_and_exits_1", "[mqctl][dlq]") {
    Shell sh;
    orders_with_billing(sh);
    sh.ok({"queue", "create", "full", "--max-length", "1"});
    sh.ok({"publish", "full", "occupant"});
    sh.dead_letters("orders", "billing", 1);
    const std::string id = sh.json_of({"dlq", "list", "orders"})[0]["id"];

    auto r = sh.run({"dlq", "replay", "orders", id, "--to", "full"});
    REQUIRE_EXIT(r, 1);
    CHECK_THAT(r.out, Catch::Contains("failed") && Catch::Contains(id));
    CHECK_THAT(r.err, Catch::Contains("kept"));
    CHECK(sh.dlq_size("orders") == 1);
    CHECK(sh.replays("full").empty());

    auto j = sh.run({"-o", "json", "dlq", "replay", "orders", id, "--to", "full"});
    REQUIRE_EXIT(j, 1);
    json report = json::parse(j.out);
    CHECK(report["failed"] == 1);
    CHECK(report["results"][0]["status"] == "failed");
    CHECK_THAT(report["results"][0]["error"].get<std::string>(), Catch::Contains("full"));
}

TEST_CASE("dlq_replay_of_unknown_ids_exits_3_and_bad_requests_exit_2", "[mqctl][dlq]") {
    Shell sh;
    orders_with_billing(sh);
    sh.dead_letters("orders", "billing", 1);
    const std::string id = sh.json_of({"dlq", "list", "orders"})[0]["id"];

    auto unknown = sh.run({"dlq", "replay", "orders", "0:1-0"});
    REQUIRE_EXIT(unknown, 3);
    CHECK_THAT(unknown.out + unknown.err, Catch::Contains("0:1-0"));

    // A mix: the known one is replayed, the unknown one reported, exit 3.
    auto mixed = sh.run({"-o", "json", "dlq", "replay", "orders", id, "1:1-0"});
    REQUIRE_EXIT(mixed, 3);
    json report = json::parse(mixed.out);
    CHECK(report["replayed"] == 1);
    CHECK(report["not_found"] == 1);
    CHECK(sh.dlq_size("orders") == 0);

    for (const auto& args : std::vector<std::vector<std::string>>{
             {"dlq", "replay", "orders"},                               // nothing chosen
             {"dlq", "replay", "orders", "0:1-0", "--all", "--yes"},    // two ways at once
             {"dlq", "replay", "orders", "--all", "--since", "1h"},     // two ways at once
             {"dlq", "replay", "orders", "garbage"},                    // malformed id
             {"dlq", "replay", "orders", "0:1-0", "--sub", "billing"},  // --sub is a filter
             {"dlq", "replay", "orders", "--since", "later"},           // bad time
             {"dlq", "replay", "bad:queue", "--all", "--yes"}}) {
        INFO(args.back());
        REQUIRE_EXIT(sh.run(args), 2);
    }
    REQUIRE_EXIT(sh.run({"dlq", "replay", "nope", "--all", "--yes"}), 3);
    REQUIRE_EXIT(sh.run({"dlq", "list", "nope"}), 3);
    REQUIRE_EXIT(sh.run({"dlq", "purge", "nope", "--yes"}), 3);
}

TEST_CASE("dlq_purge_removes_dead_letters_after_confirmation_and_before_a_cutoff", "[mqctl][dlq]") {
    Shell sh;
    orders_with_billing(sh);
    sh.dead_letters("orders", "billing", 3);

    auto refused = sh.run({"dlq", "purge", "orders"});
    REQUIRE_EXIT(refused, 2);
    CHECK_THAT(refused.err, Catch::Contains("--yes"));
    CHECK(sh.dlq_size("orders") == 3);

    // They died just now: none died more than an hour ago.
    json none = sh.json_of({"dlq", "purge", "orders", "--before", "1h", "--yes"});
    CHECK(none["removed"] == 0);
    CHECK(sh.dlq_size("orders") == 3);
    json cutoff =
        sh.json_of({"dlq", "purge", "orders", "--before", "2100-01-01T00:00:00Z", "--yes"});
    CHECK(cutoff["removed"] == 3);
    CHECK(sh.dlq_size("orders") == 0);

    sh.dead_letters("orders", "billing", 2);
    auto all = sh.run({"dlq", "purge", "orders", "--yes"});
    REQUIRE_EXIT(all, 0);
    CHECK_THAT(all.out, Catch::Contains("purged 2 dead letter(s) from queue orders"));
    CHECK(sh.dlq_size("orders") == 0);
    CHECK(sh.json_of({"stats", "orders"})["dead_letters"] == 0);
    REQUIRE_EXIT(sh.run({"dlq", "purge", "orders", "--before", "soonish", "--yes"}), 2);
}

namespace {

std::string keyring_file() {
    std::string path = mqtest::temp_file(
        "current: k1\nkeys:\n  - id: k1\n    key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
    ::chmod(path.c_str(), 0600);
    return path;
}

}  // namespace

TEST_CASE("dlq_replay_dry_run_prints_what_would_happen_and_changes_nothing",
          "[mqctl][dlq][replay]") {
    Shell sh;
    orders_with_billing(sh);
    sh.dead_letters("orders", "billing", 3);
    const auto before = sh.entries("orders").size();

    auto human = sh.run(
        {"dlq", "replay", "orders", "--all", "--dry-run"});  // no --yes needed: it changes nothing
    REQUIRE_EXIT(human, 0);
    CHECK_THAT(human.out,
               Catch::Contains("would replay") && Catch::Contains("nothing was changed"));
    json j = sh.json_of({"dlq", "replay", "orders", "--since", "1h", "--dry-run"});
    CHECK(j["dry_run"] == true);
    CHECK(j["would_replay"] == 3);
    CHECK(j["replayed"] == 0);
    CHECK(j["results"][0]["status"] == "would_replay");
    CHECK(sh.dlq_size("orders") == 3);
    CHECK(sh.entries("orders").size() == before);
    CHECK(sh.replays("orders").empty());
}

TEST_CASE("dlq_replay_rate_paces_the_replays", "[mqctl][dlq][replay]") {
    Shell sh;
    orders_with_billing(sh);
    sh.dead_letters("orders", "billing", 4);
    auto t0 = std::chrono::steady_clock::now();
    json j = sh.json_of({"dlq", "replay", "orders", "--all", "--yes", "--rate", "10/s"});
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(j["replayed"] == 4);
    CHECK(took >= 280ms);  // 4 at 10/s: the last starts 300 ms after the first
    CHECK(took < 10s);
    for (const char* bad : {"0", "fast", "10/d", "-5"}) {
        INFO(bad);
        REQUIRE_EXIT(sh.run({"dlq", "replay", "orders", "--all", "--yes", "--rate", bad}), 2);
    }
}

TEST_CASE("dlq_replay_checks_the_queues_current_schema_and_keeps_what_it_refuses",
          "[mqctl][dlq][replay]") {
    Shell sh;
    orders_with_billing(sh);
    sh.ok({"publish", "orders", R"({"id":1})"});
    sh.ok({"publish", "orders", "not json at all"});
    sh.dead_letter_unread("orders", "billing");
    REQUIRE(sh.dlq_size("orders") == 2);
    sh.ok(
        {"queue", "update", "orders", "--schema-file", mqtest::temp_file(R"({"type":"object"})")});

    auto dry = sh.run({"-o", "json", "dlq", "replay", "orders", "--all", "--dry-run"});
    REQUIRE_EXIT(dry, 1);
    CHECK(json::parse(dry.out)["failed"] == 1);
    CHECK(sh.dlq_size("orders") == 2);

    auto r = sh.run({"dlq", "replay", "orders", "--all", "--yes"});
    REQUIRE_EXIT(r, 1);
    CHECK_THAT(r.out, Catch::Contains("failed") && Catch::Contains("schema"));
    CHECK_THAT(r.err, Catch::Contains("kept"));
    json left = sh.json_of({"dlq", "list", "orders"});
    REQUIRE(left.size() == 1);
    CHECK(left[0]["payload"] == "not json at all");
    CHECK(sh.replays("orders").size() == 1);
}

TEST_CASE("dlq_replay_reseals_for_another_encrypted_queue", "[mqctl][dlq][replay]") {
    Shell sh;
    const std::string ring = keyring_file();
    sh.ok({"queue", "create", "secrets", "--encryption", "aes-256-gcm"});
    sh.ok({"queue", "create", "vault", "--encryption", "aes-256-gcm"});
    sh.ok({"sub", "create", "secrets", "billing", "--from", "earliest"});
    REQUIRE_EXIT(sh.run({"publish", "secrets", "pin 1234"}, {{"MQ_KEYRING_FILE", ring}}), 0);
    sh.dead_letter_unread("secrets", "billing");
    const std::string id = sh.json_of({"dlq", "list", "secrets"})[0]["id"];

    auto no_ring = sh.run({"dlq", "replay", "secrets", id, "--to", "vault"});
    REQUIRE_EXIT(no_ring, 1);
    CHECK(sh.dlq_size("secrets") == 1);

    REQUIRE_EXIT(
        sh.run({"dlq", "replay", "secrets", id, "--to", "vault"}, {{"MQ_KEYRING_FILE", ring}}), 0);
    CHECK(sh.dlq_size("secrets") == 0);
    auto moved = sh.entries("vault");
    REQUIRE(moved.size() == 1);
    CHECK(moved[0]["p"] != "pin 1234");
    mq::Message m;
    m.payload = moved[0]["p"];
    m.encryption_key_id = moved[0]["ek"];
    auto keys = mq::Keyring::load(ring);
    CHECK(mq::open_payload(m, keys, sh.queue("vault")) == "pin 1234");
}

TEST_CASE("dlq_replay_after_a_crash_between_publish_and_removal_publishes_once",
          "[mqctl][dlq][replay]") {
    Shell sh;
    orders_with_billing(sh);
    sh.dead_letters("orders", "billing", 1);
    mq::Queue q = sh.queue("orders");
    mq::DeadLetterStore store(sh.redis().redis(), sh.redis().keys());
    auto d = store.select(q, {}, 10).at(0);
    // What a replay killed after its publish left behind: the message, and the dead letter.
    mq::PublishUseCase use_case({}, nullptr, nullptr);
    auto r = use_case.republish_request(q, d.message, q);
    r.idempotency_key = "mq-replay:" + q.tenant + "/" + q.name + ":" + d.handle();
    mq::Publisher(sh.redis().redis(), sh.redis().keys()).publish(q, r);
    REQUIRE(sh.dlq_size("orders") == 1);

    json j = sh.json_of({"dlq", "replay", "orders", d.handle()});
    CHECK(j["replayed"] == 1);
    CHECK(j["results"][0]["duplicate"] == true);
    CHECK(sh.dlq_size("orders") == 0);
    CHECK(sh.replays("orders").size() == 1);
}
