// Live subscriptions against a running `mq-worker --from-db`: it starts with nothing to
// run and follows subscription create, update, pause, resume and delete, a queue growing
// its partitions under load (0 messages lost), REST-created webhooks, and skips a row with
// a broken handler while the others keep running. Waits are bounded (about 5 s).

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "api_process.hpp"
#include "child_process.hpp"
#include "eventually.hpp"
#include "harness.hpp"
#include "http_sink.hpp"
#include "mq/publish/publisher.hpp"
#include "mqctl_shell.hpp"

using namespace std::chrono_literals;
using mqtest::eventually;

namespace {

// `mq-worker --from-db --tenant T` (plus `extra`) on a key prefix; SIGKILLed if still
// running at the end of the scope.
struct LiveWorker : mqtest::ChildProcess {
    LiveWorker(const std::string& tenant, const std::string& prefix,
               const std::vector<std::string>& extra = {}, bool from_db = true) {
        std::vector<std::string> args{"--metrics-port", "0", "--consumer-name", "live-1"};
        // These tests create exec subscriptions with mqctl: an operator's, run only with
        // the flag (docs/security.md).
        if (from_db)
            args.insert(args.end(), {"--from-db", "--tenant", tenant, "--allow-operator-handlers"});
        args.insert(args.end(), extra.begin(), extra.end());
        start(MQ_WORKER_PATH, args,
              mqtest::service_env({{"REDIS_KEY_PREFIX", prefix},
                                   {"MQ_TENANT", tenant},
                                   // Webhooks made through the API reach the test's
                                   // loopback sinks only when allowed.
                                   {"WEBHOOK_ALLOWED_CIDRS", "127.0.0.0/8"}}));
    }
};

std::vector<std::string> lines_of(const std::string& path) {
    std::vector<std::string> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back(line);
    return out;
}

struct Live : mqtest::MqctlShell {
    std::string dir = "/tmp/" + mqtest::unique_name("mq-live");
    Live() { std::filesystem::create_directories(dir); }
    ~Live() { std::filesystem::remove_all(dir); }
    std::string file(const std::string& name) const { return dir + "/" + name; }
    // An exec handler appending each message id to `out`.
    static std::string append_to(const std::string& out) { return "echo $MQ_MESSAGE_ID >> " + out; }
    std::set<std::string> publish(const std::string& queue, int n) {
        mq::Publisher pub(redis().redis(), redis().keys());
        std::vector<mq::PublishRequest> batch(static_cast<std::size_t>(n));
        for (auto& r : batch) r.payload = "job";
        std::set<std::string> ids;
        for (auto& o : pub.publish_batch(this->queue(queue), batch)) ids.insert(o.message_id);
        return ids;
    }
    std::set<std::string> delivered(const std::string& path) {
        auto v = lines_of(path);
        return {v.begin(), v.end()};
    }
};

}  // namespace

TEST_CASE("worker_from_db_started_empty_waits_and_follows_create_update_pause_resume_delete",
          "[worker][live]") {
    Live sh;
    sh.create_queue({"jobs", "--partitions", "2"});
    LiveWorker w(sh.tenant(), sh.redis().prefix());
    INFO(w.log());
    // Nothing to run yet: it waits instead of exiting 2.
    REQUIRE(w.wait_exit(1500ms) == std::nullopt);
    CHECK(w.log().find("waiting for some to be created") != std::string::npos);

    // Created with mqctl: delivered within a second or two.
    const std::string a = sh.file("a"), b = sh.file("b");
    sh.ok({"sub", "create", "jobs", "live", "--command", Live::append_to(a), "--concurrency", "2"});
    auto t0 = std::chrono::steady_clock::now();
    std::set<std::string> ids;
    // The worker may start the runner a moment after the create: publish until it delivers.
    REQUIRE(eventually(
        [&] {
            for (auto& id : sh.publish("jobs", 1)) ids.insert(id);
            return !sh.delivered(a).empty();
        },
        5s));
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
    REQUIRE(eventually([&] { return sh.delivered(a) == ids; }, 5s));

    // Updated (another command): restarted gracefully, new messages go to the new handler.
    sh.ok({"sub", "update", "jobs", "live", "--command", Live::append_to(b)});
    // Messages published while the old runner still runs may go to the old command (the
    // restart is graceful): publish once the new one runs.
    REQUIRE(eventually([&] { return w.count_in_log("settings or queue changed") >= 1; }, 5s));
    REQUIRE(eventually([&] { return w.count_in_log("delivering with") >= 2; }, 5s));
    auto to_b = sh.publish("jobs", 6);
    if (!eventually([&] { return sh.delivered(b) == to_b; }, 5s)) {
        std::string got;
        for (const auto& id : sh.delivered(b)) got += id + (to_b.count(id) ? " " : "(extra) ");
        FAIL("delivered to b: " << got << "\nworker log:\n" << w.log());
    }

    // Paused: nothing is delivered; resumed: everything arrives.
    sh.ok({"sub", "pause", "jobs", "live"});
    std::this_thread::sleep_for(1s);
    auto held = sh.publish("jobs", 4);
    std::this_thread::sleep_for(1500ms);
    for (const auto& id : held) CHECK_FALSE(sh.delivered(b).count(id));
    sh.ok({"sub", "resume", "jobs", "live"});
    REQUIRE(eventually(
        [&] {
            auto got = sh.delivered(b);
            return std::all_of(held.begin(), held.end(),
                               [&](const std::string& id) { return got.count(id) > 0; });
        },
        5s));

    // Deleted: the runner stops cleanly, without a stream of fetch failures.
    sh.ok({"sub", "delete", "jobs", "live", "--yes"});
    REQUIRE(eventually([&] { return w.count_in_log("stopping its runner") >= 2; }, 5s));
    std::this_thread::sleep_for(2s);
    CHECK(w.count_in_log("fetch failed") <= 2);
    CHECK(w.terminate() == 0);
}

TEST_CASE("growing_partitions_while_publishing_and_consuming_loses_no_message",
          "[worker][live][partitions]") {
    Live sh;
    sh.create_queue({"jobs", "--partitions", "2"});
    const std::string out = sh.file("out");
    sh.ok({"sub", "create", "jobs", "grow", "--command", Live::append_to(out), "--concurrency", "4",
           "--from", "earliest"});
    LiveWorker w(sh.tenant(), sh.redis().prefix());
    INFO(w.log());

    // A publisher that reads the queue's partition count before every batch, as mq-api's
    // cache does after a reload.
    std::atomic<bool> stop{false};
    std::set<std::string> published;
    std::thread publisher([&] {
        mq::pg::Database db(mqtest::services().database_url);
        mq::Catalog catalog(db);
        auto conn = sh.redis().connect();
        mq::Publisher pub(*conn, sh.redis().keys());
        while (!stop) {
            auto q = catalog.get_queue(sh.tenant(), "jobs");
            std::vector<mq::PublishRequest> batch(8);
            for (auto& r : batch) r.payload = "job";
            for (auto& o : pub.publish_batch(q, batch)) published.insert(o.message_id);
            std::this_thread::sleep_for(20ms);
        }
    });
    std::this_thread::sleep_for(1s);
    auto grown = sh.run({"queue", "update", "jobs", "--partitions", "4"});
    std::this_thread::sleep_for(2s);
    stop = true;
    publisher.join();
    REQUIRE_EXIT(grown, 0);
    CHECK(grown.out.find("partitions 2 -> 4") != std::string::npos);
    // The new partitions were used, and every message arrived.
    CHECK(sh.xlen("jobs", 2) + sh.xlen("jobs", 3) > 0);
    REQUIRE(eventually([&] { return sh.delivered(out) == published; }, 15s));
    // No duplicates: nothing failed, so at-least-once never had to redeliver.
    CHECK(lines_of(out).size() == published.size());
    CHECK(w.log().find("over 4 partition(s)") != std::string::npos);
    CHECK(w.terminate() == 0);
}

TEST_CASE("a_webhook_subscription_created_through_the_api_is_delivered_by_a_running_worker",
          "[worker][live][api]") {
    mqtest::ApiSession s;
    mqtest::HttpSink sink;
    auto q = s.api.call_json("POST", "/api/v1/mq/queues", {{"name", "jobs"}}, s.token);
    REQUIRE(q.status == 201);
    LiveWorker w(s.tenant.tenant(), s.api.key_prefix());
    INFO(w.log());
    REQUIRE(w.wait_exit(1s) == std::nullopt);
    auto created = s.api.call_json("POST", "/api/v1/mq/subscriptions",
                                   {{"queue", "jobs"},
                                    {"name", "hook"},
                                    {"type", "webhook"},
                                    {"handler", {{"url", sink.url("/hook")}}}},
                                   s.token);
    INFO(created.body);
    REQUIRE(created.status == 201);
    auto conn =
        std::make_unique<mq::redis::Connection>(mq::redis::parse_url(mqtest::services().redis_url));
    mq::Publisher pub(*conn, mq::KeyLayout(s.api.key_prefix()));
    auto queue = s.tenant.catalog().get_queue(s.tenant.tenant(), "jobs");
    // Published until the first delivery: the worker starts the runner within a second or two.
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(eventually(
        [&] {
            mq::PublishRequest r;
            r.payload = "{}";
            pub.publish(queue, r);
            return sink.request_count() > 0;
        },
        5s));
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
    CHECK(w.terminate() == 0);
}

TEST_CASE("a_subscription_row_with_a_broken_handler_is_skipped_and_the_others_keep_running",
          "[worker][live][hostile]") {
    Live sh;
    sh.create_queue({"jobs"});
    const std::string good = sh.file("good"), fixed = sh.file("fixed");
    sh.ok({"sub", "create", "jobs", "good", "--command", Live::append_to(good), "--from",
           "earliest"});
    sh.ok({"sub", "create", "jobs", "broken", "--command", Live::append_to(fixed), "--from",
           "earliest"});
    // Written around mqctl's checks: an exec handler without a command.
    sh.db().exec(
        "UPDATE message_subscriptions SET handler_config = '{\"timeout_ms\": -5}' WHERE tenant_id "
        "= '" +
        sh.tenant() + "' AND name = 'broken'");
    LiveWorker w(sh.tenant(), sh.redis().prefix(), {"--reconcile-interval-ms", "300"});
    INFO(w.log());
    auto ids = sh.publish("jobs", 5);
    REQUIRE(eventually([&] { return sh.delivered(good) == ids; }, 5s));
    std::this_thread::sleep_for(1s);  // several full reconciles
    CHECK(w.count_in_log("jobs/broken: skipped: its handler configuration is invalid") == 1);
    CHECK(sh.delivered(fixed).empty());
    // Repaired in the database without any announcement: the periodic reconcile starts it,
    // and it catches up from where its group stands.
    sh.db().exec("UPDATE message_subscriptions SET handler_config = '{\"command\": \"" +
                 Live::append_to(fixed) + "\"}' WHERE tenant_id = '" + sh.tenant() +
                 "' AND name = 'broken'");
    REQUIRE(eventually([&] { return sh.delivered(fixed) == ids; }, 5s));
    CHECK(w.terminate() == 0);
}

TEST_CASE("a_worker_file_with_no_subscriptions_and_no_from_db_still_exits_2",
          "[worker][live][config]") {
    Live sh;
    std::string cfg = sh.file("w.yaml");
    std::ofstream(cfg) << "tenant: " << sh.tenant() << "\nsubscriptions: []\n";
    LiveWorker w(sh.tenant(), sh.redis().prefix(), {"--config", cfg}, /*from_db=*/false);
    CHECK(w.wait_exit(10s) == 2);
    CHECK(w.log().find("nothing to run") != std::string::npos);
}

TEST_CASE("a_worker_file_naming_a_subscription_someone_else_owns_is_a_conflict",
          "[worker][live][owner]") {
    Live sh;
    sh.create_queue({"jobs"});
    sh.ok({"sub", "create", "jobs", "mine", "--command", "true"});  // by hand: owned by nobody
    std::string cfg = sh.file("w.yaml");
    std::ofstream(cfg) << "tenant: " << sh.tenant() << "\nredis_key_prefix: \""
                       << sh.redis().prefix()
                       << "\"\nsubscriptions:\n  - queue: jobs\n    name: mine\n"
                          "    handler: {type: exec, command: \"false\"}\n";
    {
        LiveWorker w(sh.tenant(), sh.redis().prefix(), {"--config", cfg}, /*from_db=*/false);
        CHECK(w.wait_exit(10s) == 4);
        CHECK(w.log().find("is owned by nobody") != std::string::npos);
    }
    // Not overwritten.
    auto s = sh.json_of({"sub", "show", "jobs", "mine"});
    CHECK(s["handler"]["command"] != "false");
    // --adopt takes it over.
    LiveWorker adopt(sh.tenant(), sh.redis().prefix(), {"--config", cfg, "--adopt"},
                     /*from_db=*/false);
    REQUIRE(eventually(
        [&] {
            return sh.json_of({"sub", "show", "jobs", "mine"})["managed_by"] == "worker";
        },
        5s));
    CHECK(adopt.terminate() == 0);
}
