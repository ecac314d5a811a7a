// `mqctl maintenance run [--once]` and the maintenance service inside mq-worker, as
// processes: one pass for cron that honours running instances, a holder killed with
// SIGKILL whose shards move to the other process, dead letters of a queue no worker runs,
// MAINTENANCE=off, usage errors and backends that are down.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "child_process.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/maintenance/service.hpp"
#include "mq/publish/publisher.hpp"
#include "mqctl_shell.hpp"
#include "private_services.hpp"

using namespace std::chrono_literals;
using mqtest::eventually;
using nlohmann::json;

namespace {

// A long-running process (mqctl maintenance run, mq-worker) on the fixture's services plus
// `env`, with its output in a file; killed in the destructor if still running.
struct Process : mqtest::ChildProcess {
    Process(const std::string& path, const std::vector<std::string>& args,
            const mqtest::Env& env = {})
        : ChildProcess(path, args, mqtest::service_env(env)) {}
};

class Shell : public mqtest::MqctlShell {
  public:
    mq::Queue make_queue(const std::string& name, int partitions = 1) {
        create_queue({name, "--partitions", std::to_string(partitions)});
        return queue(name);
    }
    void publish_delayed(const mq::Queue& q, int n, std::chrono::milliseconds delay) {
        mq::Publisher pub(redis_.redis(), redis_.keys());
        for (int i = 0; i < n; ++i) {
            mq::PublishRequest r;
            r.payload = "d" + std::to_string(i);
            r.key = std::to_string(i);
            r.delay = delay;
            pub.publish(q, r);
        }
    }
    std::int64_t total_xlen(const mq::Queue& q) {
        std::int64_t n = 0;
        for (int p = 0; p < q.partition_count; ++p) n += xlen(q.name, p);
        return n;
    }
    /// `n` dead letters on `q` (group "billing", as a worker makes them after the last attempt).
    void dead_letters(const mq::Queue& q, int n) {
        mq::Subscription sub;
        sub.name = "billing";
        sub.start_from = "earliest";
        mq::ConsumerGroups groups(redis_.redis(), redis_.keys());
        groups.ensure(q, sub);
        mq::Publisher pub(redis_.redis(), redis_.keys());
        for (int i = 0; i < n; ++i) {
            mq::PublishRequest r;
            r.payload = "dead-" + std::to_string(i);
            pub.publish(q, r);
        }
        for (int p = 0; p < q.partition_count; ++p)
            for (auto& f : groups.read_new(q, sub, "w1", p, 1000, 0ms))
                groups.dead_letter(q, "billing", p, f.stream_id, "handler_rejected", "HTTP 410", 1);
    }
    int archived(const std::string& queue) {
        return tenant_.db().transact([&](pqxx::work& tx) {
            return tx
                .exec_params1(
                    "SELECT count(*) FROM dead_letters WHERE tenant_id = $1 AND topic_name = $2",
                    tenant(), queue)[0]
                .as<int>();
        });
    }
    std::string lease_holder(int shard) {
        return redis_.redis().command({"GET", redis_.keys().maintenance_lease(shard)}).str;
    }
    std::vector<std::string> maintenance_args() {
        return {"--key-prefix", redis_.prefix(), "maintenance", "run"};
    }
};

// "mqctl@host-1234:abcd1234" -> 1234
pid_t pid_of(const std::string& owner) {
    auto colon = owner.rfind(':');
    auto dash = owner.rfind('-', colon);
    if (colon == std::string::npos || dash == std::string::npos) return -1;
    return static_cast<pid_t>(std::stol(owner.substr(dash + 1, colon - dash - 1)));
}

}  // namespace

TEST_CASE("maintenance_run_once_moves_due_entries_and_archives_dead_letters_once",
          "[maintenance][mqctl]") {
    Shell sh;
    auto q = sh.make_queue("reminders", 2);
    sh.publish_delayed(q, 3, 1ms);
    sh.publish_delayed(q, 1, 1h);
    sh.dead_letters(q, 4);
    std::this_thread::sleep_for(20ms);

    json pass = sh.json_of({"maintenance", "run", "--once"});
    CHECK(pass["moved"] == 3);
    CHECK(pass["archived"] == 4);
    CHECK(pass["errors"] == 0);
    CHECK(pass["shards_skipped"].empty());
    CHECK(pass["queues_skipped"] == 0);
    CHECK(pass["queues"].get<int>() >= 1);
    // The dead letters' originals were acked by their group, so the pass's trimmer removed
    // them; the 3 moved entries are not delivered yet and stay.
    CHECK(sh.total_xlen(q) == 3);
    CHECK(sh.zcard("reminders", 0) + sh.zcard("reminders", 1) == 1);
    CHECK(sh.archived("reminders") == 4);

    // Nothing twice; the table form says what it did.
    auto again = sh.run({"maintenance", "run", "--once"});
    REQUIRE_EXIT(again, 0);
    CHECK_THAT(again.out, Catch::StartsWith("moved 0 due entries, archived 0 dead letter(s)"));
    CHECK(sh.archived("reminders") == 4);
    // No lease is left behind by a pass.
    for (int i = 0; i < mq::kMaintenanceShards; ++i) CHECK(sh.lease_holder(i).empty());
}

TEST_CASE("maintenance_run_once_next_to_a_running_instance_skips_its_shards_and_says_so",
          "[maintenance][mqctl]") {
    Shell sh;
    auto q = sh.make_queue("orders");
    const int shard = mq::maintenance_shard(sh.tenant(), "orders");
    Process running(mqtest::mqctl_path(), sh.maintenance_args());
    INFO(running.log());
    REQUIRE(eventually([&] { return !sh.lease_holder(shard).empty(); }, 10s));
    CHECK_THAT(sh.lease_holder(shard), Catch::StartsWith("mqctl@"));

    auto text = sh.run({"maintenance", "run", "--once"});
    REQUIRE_EXIT(text, 0);
    CHECK_THAT(text.out, Catch::Contains("held by running instances"));
    json pass = sh.json_of({"maintenance", "run", "--once"});
    CHECK(std::count(pass["shards_skipped"].begin(), pass["shards_skipped"].end(), shard) == 1);
    CHECK(pass["queues_skipped"].get<int>() >= 1);

    // The running instance does that work.
    sh.publish_delayed(q, 5, 1ms);
    CHECK(eventually([&] { return sh.total_xlen(q) == 5; }, 5s));

    // SIGTERM: it stops at once and hands its leases back.
    running.signal(SIGTERM);
    CHECK(running.wait_exit(5s) == 0);
    CHECK(sh.lease_holder(shard).empty());
}

TEST_CASE(
    "killing_the_lease_holder_with_sigkill_moves_its_shards_to_the_other_instance_within_seconds",
    "[maintenance][mqctl][crash]") {
    Shell sh;
    auto q = sh.make_queue("reminders", 2);
    const int shard = mq::maintenance_shard(sh.tenant(), "reminders");
    auto a = std::make_unique<Process>(mqtest::mqctl_path(), sh.maintenance_args());
    auto b = std::make_unique<Process>(mqtest::mqctl_path(), sh.maintenance_args());
    REQUIRE(eventually([&] { return !sh.lease_holder(shard).empty(); }, 10s));
    const std::string holder = sh.lease_holder(shard);
    const pid_t victim = pid_of(holder);
    REQUIRE((victim == a->pid() || victim == b->pid()));
    auto& dead = victim == a->pid() ? a : b;
    auto& alive = victim == a->pid() ? b : a;

    dead->signal(SIGKILL);
    CHECK(dead->wait_exit(5s) == 128 + SIGKILL);
    const auto t0 = std::chrono::steady_clock::now();
    sh.publish_delayed(q, 10, 1ms);
    REQUIRE(eventually([&] { return sh.total_xlen(q) == 10; }, 15s));
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO("delayed messages arrived " << took << " s after the kill");
    CHECK(took < 9.0);
    CHECK(pid_of(sh.lease_holder(shard)) == alive->pid());
    std::this_thread::sleep_for(500ms);
    CHECK(sh.total_xlen(q) == 10);  // moved once
}

TEST_CASE("mq_worker_archives_dead_letters_of_a_queue_it_does_not_run", "[maintenance][worker]") {
    Shell sh;
    sh.make_queue("jobs");
    auto other = sh.make_queue("other", 2);
    sh.dead_letters(other, 6);
    const std::string dir = "/tmp/" + mqtest::unique_name("mqm");
    std::filesystem::create_directories(dir);
    auto config = [&](const std::string& extra) {
        std::string path = dir + "/" + mqtest::unique_name("w") + ".yaml";
        std::ofstream(path) << "tenant: " << sh.tenant() << "\nredis_key_prefix: \""
                            << sh.redis().prefix() << "\"\n"
                            << extra
                            << "subscriptions:\n  - queue: jobs\n    name: runner\n    handler:\n"
                               "      type: exec\n      command: [\"/bin/true\"]\n";
        return path;
    };

    {
        // MAINTENANCE off (YAML): nothing archived.
        Process off(MQ_WORKER_PATH,
                    {"--config", config("maintenance: off\n"), "--metrics-port", "0"});
        std::this_thread::sleep_for(4s);
        INFO(off.log());
        CHECK(sh.archived("other") == 0);
        CHECK(off.log().find("maintenance: started") == std::string::npos);
        off.signal(SIGTERM);
        CHECK(off.wait_exit(10s) == 0);
    }
    {
        // Environment MAINTENANCE=off wins over the file.
        Process off(MQ_WORKER_PATH,
                    {"--config", config("maintenance: on\n"), "--metrics-port", "0"},
                    {{"MAINTENANCE", "off"}});
        std::this_thread::sleep_for(3s);
        CHECK(sh.archived("other") == 0);
        CHECK(off.wait_exit(0ms) == std::nullopt);  // running, just not archiving
        CHECK(off.log().find("maintenance: started") == std::string::npos);
    }
    Process worker(MQ_WORKER_PATH, {"--config", config(""), "--metrics-port", "0"});
    INFO(worker.log());
    CHECK(eventually([&] { return sh.archived("other") == 6; }, 15s));
    worker.signal(SIGTERM);
    CHECK(worker.wait_exit(10s) == 0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("maintenance_usage_errors_and_backends_down", "[maintenance][mqctl][usage][backends]") {
    Shell sh;
    REQUIRE_EXIT(sh.run({"maintenance"}), 2);
    REQUIRE_EXIT(sh.run({"maintenance", "run", "--bogus"}), 2);
    REQUIRE_EXIT(sh.run({"maintenance", "run", "--once", "extra"}), 2);

    const std::string dead = std::to_string(mqtest::dead_port());
    auto redis_down = sh.run({"maintenance", "run", "--once"},
                             {{"REDIS_URL", "redis://127.0.0.1:" + dead + "/0"}});
    REQUIRE_EXIT(redis_down, 5);
    CHECK_THAT(redis_down.err, Catch::Contains("REDIS_URL"));
    auto loop_down =
        sh.run({"maintenance", "run"}, {{"REDIS_URL", "redis://127.0.0.1:" + dead + "/0"}});
    REQUIRE_EXIT(loop_down, 5);
    auto pg_down = sh.run({"-o", "json", "maintenance", "run", "--once"},
                          {{"DATABASE_URL", "postgresql://postgres@127.0.0.1:" + dead + "/mq"}});
    REQUIRE_EXIT(pg_down, 5);
    CHECK(json::parse(pg_down.err)["error"]["code"] == "MQ_BACKEND_UNAVAILABLE");
    CHECK(sh.redis().all_keys().empty());  // no lease left behind

    // The old command still works for crontabs, and says what replaces it.
    auto help = mqtest::mqctl({"--help"});
    REQUIRE_EXIT(help, 0);
    CHECK_THAT(help.out, Catch::Contains("maintenance") && Catch::Contains("deprecated"));
}
