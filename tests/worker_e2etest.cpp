// mq-worker as a process: crash recovery, graceful stop, pause, unreachable webhooks,
// configuration errors. Handlers are exec commands appending message ids to a file.
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "api_process.hpp"
#include "child_process.hpp"
#include "eventually.hpp"
#include "harness.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/consume/control.hpp"
#include "mq/consume/dead_letters.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/publish/publisher.hpp"

using namespace std::chrono_literals;

namespace {

/// Message ids of the JSON lines of a log handler's file that `wanted` accepts.
template <typename Pred>
std::set<std::string> logged_ids(const std::string& path, Pred wanted) {
    std::set<std::string> seen;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_discarded() && wanted(j)) seen.insert(j.value("id", ""));
    }
    return seen;
}

// One mq-worker process on the fixture's services; killed in the destructor if still
// running.
struct WorkerProcess : mqtest::ChildProcess {
    explicit WorkerProcess(const std::string& config, const std::vector<std::string>& extra = {}) {
        std::vector<std::string> args{"--config", config};
        if (std::find(extra.begin(), extra.end(), "--metrics-port") == extra.end())
            args.insert(args.end(), {"--metrics-port", "0"});
        args.insert(args.end(), extra.begin(), extra.end());
        start(MQ_WORKER_PATH, args, mqtest::service_env());
    }
};

struct WorkerFixture {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    std::string dir = "/tmp/" + mqtest::unique_name("mqw");
    std::string out = dir + "/delivered";
    mq::Queue q;

    explicit WorkerFixture(int partitions = 2) {
        std::filesystem::create_directories(dir);
        mq::QueueSpec spec;
        spec.name = "jobs";
        spec.partition_count = partitions;
        q = ts.catalog().create_queue(ts.tenant(), spec, mq::Config{});
    }
    ~WorkerFixture() { std::filesystem::remove_all(dir); }

    std::string config(const std::string& subscriptions,
                       const std::string& extra = "shutdown_timeout: 5s\n") {
        std::string path = dir + "/worker-" + mqtest::unique_name("c") + ".yaml";
        std::ofstream(path) << "tenant: " << ts.tenant() << "\nredis_key_prefix: \"" << rs.prefix()
                            << "\"\n"
                            << extra << "subscriptions:\n"
                            << subscriptions;
        return path;
    }
    // An exec subscription appending "<message id>" per delivery, after `sleep` seconds.
    std::string exec_sub(const std::string& name, const std::string& sleep = "0",
                         const std::string& more = "") {
        return "  - queue: jobs\n    name: " + name +
               "\n    start_from: earliest\n    concurrency: 4\n    visibility_timeout: 2s\n"
               "    retry: {max_attempts: 5, initial_backoff: 100ms}\n" +
               more +
               "    handler:\n      type: exec\n      command: [\"/bin/sh\", \"-c\", \"sleep " +
               sleep + "; echo $MQ_MESSAGE_ID >> " + out + "\"]\n      timeout: 10s\n";
    }
    std::set<std::string> publish(int n) {
        mq::Publisher pub(rs.redis(), rs.keys());
        std::vector<mq::PublishRequest> batch(static_cast<std::size_t>(n));
        for (auto& r : batch) r.payload = "job";
        std::set<std::string> ids;
        for (auto& o : pub.publish_batch(q, batch)) ids.insert(o.message_id);
        return ids;
    }
    std::vector<std::string> delivered() {
        std::vector<std::string> ids;
        std::ifstream in(out);
        std::string line;
        while (std::getline(in, line))
            if (!line.empty()) ids.push_back(line);
        return ids;
    }
    std::set<std::string> unique_delivered() {
        auto v = delivered();
        return {v.begin(), v.end()};
    }
};

}  // namespace

TEST_CASE("redelivers_after_visibility_timeout_when_worker_killed", "[worker]") {
    WorkerFixture f;
    auto ids = f.publish(200);
    auto cfg_a = f.config(f.exec_sub("crashy", "0.02"));
    auto a = std::make_unique<WorkerProcess>(
        cfg_a, std::vector<std::string>{"--consumer-name", "worker-a"});
    REQUIRE(mqtest::eventually([&] { return f.delivered().size() >= 20; }, 20s));
    a->signal(SIGKILL);  // mid-batch: some entries are held by worker-a, unacked
    a->wait_exit(5s);
    auto before = f.unique_delivered().size();
    CHECK(before < 200);

    WorkerProcess b(f.config(f.exec_sub("crashy")), {"--consumer-name", "worker-b"});
    INFO(b.log());
    REQUIRE(mqtest::eventually([&] { return f.unique_delivered().size() == 200; }, 30s));
    CHECK(f.unique_delivered() == ids);  // none lost; at-least-once may repeat a few
    mq::ConsumerGroups g(f.rs.redis(), f.rs.keys());
    CHECK(mqtest::eventually(
        [&] {
            return g.pending(f.q, "crashy", 0, 1000).empty() &&
                   g.pending(f.q, "crashy", 1, 1000).empty();
        },
        5s));
}

TEST_CASE("sigterm_drains_and_leaves_no_entry_unacked_and_unowned", "[worker]") {
    WorkerFixture f(1);
    auto ids = f.publish(40);
    WorkerProcess w(f.config(f.exec_sub("drain", "0.2")), {"--consumer-name", "leaving"});
    REQUIRE(mqtest::eventually([&] { return f.delivered().size() >= 4; }, 20s));
    w.signal(SIGTERM);
    CHECK(w.wait_exit(10s) == 0);
    INFO(w.log());
    CHECK(w.log().find("stopped") != std::string::npos);
    // Whatever was not delivered is pending with mq-retry (due at once), never with the
    // departed consumer, so nothing waits for a visibility timeout.
    mq::ConsumerGroups g(f.rs.redis(), f.rs.keys());
    for (const auto& p : g.pending(f.q, "drain", 0, 1000)) CHECK(p.consumer == mq::kRetryConsumer);
    WorkerProcess next(f.config(f.exec_sub("drain")));
    CHECK(mqtest::eventually([&] { return f.unique_delivered() == ids; }, 10s));
}

TEST_CASE("pause_stops_deliveries_within_a_second_and_resume_restarts_them", "[worker]") {
    WorkerFixture f(1);
    WorkerProcess w(f.config(f.exec_sub("pausable")));
    f.publish(3);
    REQUIRE(mqtest::eventually([&] { return f.delivered().size() == 3; }, 20s));

    mq::SubscriptionCatalog subs(f.ts.db());
    subs.set_status(f.ts.tenant(), "jobs", "pausable", "paused");
    mq::announce(f.rs.redis(), f.rs.keys(), "pause", f.ts.tenant(), "jobs", "pausable");
    std::this_thread::sleep_for(1s);
    f.publish(3);
    std::this_thread::sleep_for(1500ms);
    CHECK(f.delivered().size() == 3);

    subs.set_status(f.ts.tenant(), "jobs", "pausable", "active");
    mq::announce(f.rs.redis(), f.rs.keys(), "resume", f.ts.tenant(), "jobs", "pausable");
    CHECK(mqtest::eventually([&] { return f.delivered().size() == 6; }, 3s));
}

TEST_CASE("a paused subscription stays paused across a worker restart", "[worker]") {
    WorkerFixture f(1);
    auto cfg = f.config(f.exec_sub("sleepy"));
    mq::SubscriptionCatalog subs(f.ts.db());
    {
        WorkerProcess first(cfg);  // registers the subscription
        REQUIRE(mqtest::eventually(
            [&] { return subs.find(f.ts.tenant(), "jobs", "sleepy").has_value(); }, 20s));
        first.signal(SIGTERM);
        CHECK(first.wait_exit(10s) == 0);
    }
    subs.set_status(f.ts.tenant(), "jobs", "sleepy", "paused");
    WorkerProcess w(cfg);
    f.publish(2);
    std::this_thread::sleep_for(1500ms);
    CHECK(f.delivered().empty());
}

TEST_CASE("an_unreachable_webhook_host_never_crashes_the_worker", "[worker]") {
    WorkerFixture f(1);
    std::string sub =
        "  - queue: jobs\n    name: hook\n    start_from: earliest\n"
        "    retry: {max_attempts: 2, initial_backoff: 100ms}\n"
        "    handler:\n      type: webhook\n      url: http://127.0.0.1:" +
        std::to_string(mqtest::dead_port()) + "/hook\n      timeout: 1s\n";
    WorkerProcess w(f.config(sub));
    f.publish(3);
    mq::DeadLetterStore dlq(f.rs.redis(), f.rs.keys());
    REQUIRE(mqtest::eventually([&] { return dlq.count(f.q) == 3; }, 20s));
    CHECK(w.alive());
    auto dead = dlq.list(f.q, "hook", 10);
    REQUIRE_FALSE(dead.empty());
    CHECK(dead[0].reason == "max_attempts");
    CHECK(dead[0].attempts == 2);
    CHECK_FALSE(dead[0].error.empty());
    // ... and archived to PostgreSQL in the background.
    auto archived = [&] {
        return f.ts.db().transact([&](pqxx::work& tx) {
            return tx
                .exec_params1("SELECT count(*) FROM dead_letters WHERE tenant_id = $1",
                              f.ts.tenant())[0]
                .as<int>();
        });
    };
    CHECK(mqtest::eventually([&] { return archived() == 3; }, 10s));
    f.ts.exec("DELETE FROM dead_letters WHERE tenant_id = '" + f.ts.tenant() + "'");
}

TEST_CASE("invalid worker YAML exits 2 naming file and line", "[worker][config]") {
    WorkerFixture f(1);
    SECTION("syntax error") {
        std::string path = f.dir + "/broken.yaml";
        std::ofstream(path) << "subscriptions:\n  - queue: jobs\n    name: [unclosed\n";
        WorkerProcess w(path);
        CHECK(w.wait_exit(10s) == 2);
        CHECK(w.log().find(path + ":") != std::string::npos);
    }
    SECTION("schema violation: unknown field") {
        std::string path = f.config(f.exec_sub("x") + "    concurency: 3\n");
        WorkerProcess w(path);
        CHECK(w.wait_exit(10s) == 2);
        INFO(w.log());
        CHECK(w.log().find(path + ":") != std::string::npos);
        CHECK(w.log().find("concurency") != std::string::npos);
    }
    SECTION("schema violation: wrong type, reported at its line") {
        std::string path = f.config(
            "  - queue: jobs\n    name: x\n    concurrency: many\n"
            "    handler: {type: exec, command: \"true\"}\n");
        WorkerProcess w(path);
        CHECK(w.wait_exit(10s) == 2);
        INFO(w.log());
        CHECK(w.log().find(path + ":7") != std::string::npos);  // the concurrency line
    }
    SECTION("a webhook URL that is not http(s)") {
        std::string path = f.config(
            "  - queue: jobs\n    name: x\n    handler: {type: webhook, url: \"ftp://x\"}\n");
        WorkerProcess w(path);
        CHECK(w.wait_exit(10s) == 2);
    }
    SECTION("--check accepts a good file without connecting") {
        WorkerProcess w(f.config(f.exec_sub("fine")), {"--check"});
        CHECK(w.wait_exit(10s) == 0);
        CHECK(w.log().find("configuration OK") != std::string::npos);
    }
}

TEST_CASE("a worker whose queue does not exist exits 3", "[worker][config]") {
    WorkerFixture f(1);
    WorkerProcess w(f.config(
        "  - queue: nowhere\n    name: x\n    handler: {type: exec, command: \"true\"}\n"));
    CHECK(w.wait_exit(10s) == 3);
    CHECK(w.log().find("nowhere") != std::string::npos);
}

TEST_CASE("a_log_subscription_writes_each_message_as_a_json_line_and_acks_it", "[worker][log]") {
    WorkerFixture f(2);
    auto ids = f.publish(300);
    const std::string lines = f.dir + "/log.jsonl";
    WorkerProcess w(
        f.config("  - queue: jobs\n    name: audit\n    start_from: earliest\n    batch_size: 100\n"
                 "    handler: {type: log, path: \"" +
                 lines + "\"}\n"));
    INFO(w.log());
    auto logged = [&] {
        return logged_ids(lines, [](const nlohmann::json& j) {
            return j.value("subscription", "") == "audit" && j.value("payload", "") == "job";
        });
    };
    REQUIRE(mqtest::eventually([&] { return logged().size() == 300; }, 20s));
    CHECK(logged() == ids);
    mq::ConsumerGroups g(f.rs.redis(), f.rs.keys());
    CHECK(mqtest::eventually(
        [&] {
            return g.pending(f.q, "audit", 0, 1000).empty() &&
                   g.pending(f.q, "audit", 1, 1000).empty();
        },
        5s));
    w.signal(SIGTERM);
    CHECK(w.wait_exit(10s) == 0);
    CHECK(w.log().find("in-process handler") != std::string::npos);
}

TEST_CASE("a_subscription_on_another_tenants_queue_is_skipped_by_the_worker", "[worker][public]") {
    // Such rows are pull only (mq-api checks the queue on every call); one written around
    // the API must neither stop the worker nor make it read the other tenant's streams.
    WorkerFixture f(1);
    mqtest::TenantScope owner;
    mq::QueueSpec spec;
    spec.name = "jobs";
    spec.is_public = true;
    auto theirs = owner.catalog().create_queue(owner.tenant(), spec, mq::Config{});
    const std::string lines = f.dir + "/log.jsonl";
    mq::Subscription own;
    own.tenant = f.ts.tenant();
    own.queue = "jobs";
    own.name = "audit";
    own.type = "log";
    own.start_from = "earliest";
    own.handler = {{"path", lines}};
    own.origin = mq::kOriginOperator;  // log to a file: run only when an operator's
    mq::SubscriptionCatalog(f.ts.db()).create(own);
    f.ts.exec(
        "INSERT INTO message_subscriptions (tenant_id, topic_id, name, consumer_group, type, "
        "handler_config) "
        "VALUES ('" +
        f.ts.tenant() + "', '" + theirs.id + "', 'audit', '" + f.ts.tenant() +
        ":audit', 'log', '{\"path\": \"" + lines + "\"}')");
    auto ids = f.publish(5);

    WorkerProcess w(f.config("  []\n"),
                    {"--from-db", "--tenant", f.ts.tenant(), "--allow-operator-handlers"});
    INFO(w.log());
    auto logged = [&] { return logged_ids(lines, [](const nlohmann::json&) { return true; }); };
    REQUIRE(mqtest::eventually([&] { return logged() == ids; }, 20s));
    CHECK(w.alive());
    CHECK(w.log().find("not run by mq-worker") != std::string::npos);
    // No group was made on the owner's stream.
    CHECK(mqtest::group_names(f.rs.redis(), f.rs.keys().stream(owner.tenant(), "jobs", 0)).empty());
    w.signal(SIGTERM);
    CHECK(w.wait_exit(10s) == 0);
}

TEST_CASE("worker_metrics_show_the_backlog_of_its_subscriptions_from_the_queue_inspector",
          "[worker][inspector]") {
    WorkerFixture f(1);
    f.publish(5);
    const int port = mqtest::dead_port();
    // One slow delivery at a time: the entries stay unfinished while we look.
    WorkerProcess w(
        f.config(
            "  - queue: jobs\n    name: slowpoke\n    start_from: earliest\n    concurrency: 1\n"
            "    handler:\n      type: exec\n      command: [\"/bin/sh\", \"-c\", \"sleep 30\"]\n"
            "      timeout: 60s\n"),
        {"--metrics-port", std::to_string(port)});
    const std::string labels =
        "{tenant=\"" + f.ts.tenant() + "\",queue=\"jobs\",subscription=\"slowpoke\"}";
    auto value = [](const std::string& text, const std::string& series) -> std::optional<double> {
        std::istringstream lines(text);
        for (std::string line; std::getline(lines, line);)
            if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
        return std::nullopt;
    };
    std::string body;
    bool seen = mqtest::eventually(
        [&] {
            auto r = mqtest::http_request(port, "GET", "/metrics");
            body = r.body;
            return r.status == 200 &&
                   value(body, "mq_subscription_pending" + labels).value_or(0) >= 1;
        },
        20s);
    INFO(body << "\n" << w.log());
    REQUIRE(seen);
    CHECK(value(body, "mq_worker_queue_figures_up") == 1.0);
    CHECK(value(body, "mq_subscription_backlog" + labels) == 5.0);
    auto pending = value(body, "mq_subscription_pending" + labels).value_or(-1);
    auto lag = value(body, "mq_subscription_lag" + labels).value_or(-1);
    CHECK(pending + lag == 5.0);
    CHECK(value(body, "mq_subscription_oldest_pending_age_seconds" + labels) >= 0.0);
    CHECK(body.find("mq_worker_deliveries_total{") != std::string::npos);
}
