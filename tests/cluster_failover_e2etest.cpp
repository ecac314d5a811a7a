// Failover of a Redis Cluster under real processes (issue 14, docs/cluster.md): mq-api
// takes publishes over HTTP (several clients at once, so its group commit batches them)
// and mq-worker delivers them to an exec handler, while the master of the queue's
// partition is killed with SIGKILL. Its replica is promoted (cluster-node-timeout 2 s),
// the killed node is started again (it rejoins as a replica) and neither process is
// restarted. Before the kill the replica is made to fall behind (SIGSTOP while 48 MB of
// other writes fill the replication stream), as real load or latency would. Counted:
// publishes the API acknowledged (201) that were never delivered nor are in the stream.
// With durability "leader" those acknowledged while the replica was behind are lost
// (replication is asynchronous); with "replica" (WAIT 1 after each group commit) none is.
// A third case adds a master and moves the busy partition's slot to it with
// `redis-cli --cluster reshard` under the same load: nothing is lost.
// Private cluster per test case (about 30 s each); waits are bounded.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "api_process.hpp"
#include "child_process.hpp"
#include "harness.hpp"
#include "mq/core/keys.hpp"
#include "mq/redis/client.hpp"
#include "mq/redis/cluster.hpp"
#include "private_cluster.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// mq-worker with a config file and exactly `env` (and PATH); SIGKILLed at the end of the
// scope.
struct WorkerProcess : mqtest::ChildProcess {
    WorkerProcess(const std::string& config, mqtest::Env env) {
        env["PATH"] = "/usr/bin:/bin";
        start(MQ_WORKER_PATH, {"--config", config, "--metrics-port", "0"}, env);
    }
};

std::set<std::string> lines_of(const std::string& path) {
    std::set<std::string> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.insert(line);
    return out;
}

struct Outcome {
    std::size_t acked = 0;
    std::size_t lost = 0;                // acknowledged, never delivered, not in the stream
    std::size_t stored_undelivered = 0;  // in the stream but never delivered
    int failed = 0;                      // publishes answered with something else than 201
    std::size_t acked_while_behind = 0;  // from the replica's stop to the master's kill
    std::chrono::milliseconds promoted{0}, recovered{0};
};

// A private cluster with mq-api and mq-worker on a queue of one partition: publisher
// threads post to the API (6 at once, so its group commit batches them) and the worker
// appends every delivered message id to a file.
class LoadedCluster {
  public:
    // `pick_queue` may choose the queue's name (the tests that move its slot do).
    using QueuePicker =
        std::function<std::string(mqtest::PrivateCluster& cluster, const std::string& tenant)>;
    explicit LoadedCluster(const std::string& durability, const QueuePicker& pick_queue = {})
        : tenant_(mqtest::unique_name("fo")),
          token_(mqtest::migrated_tenant_admin_token(cluster_.env(), tenant_)),
          queue_(pick_queue ? pick_queue(cluster_, tenant_) : "jobs"),
          api_(api_options()),
          dir_(mqtest::make_private_dir()),
          redis_(mq::redis::parse_url(cluster_.url())) {
        auto made = mqtest::mqctl({"--tenant", tenant_, "queue", "create", queue_, "--partitions",
                                   "1", "--durability", durability},
                                  cluster_.env());
        INFO(made.out << made.err);
        REQUIRE(made.status == 0);
        const std::string config = dir_ + "/worker.yaml";
        std::ofstream(config) << "tenant: " << tenant_ << "\nredis_key_prefix: \""
                              << api_.key_prefix()
                              << "\"\nshutdown_timeout: 1s\nsubscriptions:\n  - queue: " << queue_
                              << "\n    name: sink\n    start_from: earliest\n"
                                 "    concurrency: 4\n    handler:\n      type: exec\n"
                                 "      command: [\"/bin/sh\", \"-c\", \"echo $MQ_MESSAGE_ID >> "
                              << delivered_path() << "\"]\n      timeout: 10s\n";
        worker_ = std::make_unique<WorkerProcess>(
            config,
            mqtest::Env{{"REDIS_URL", cluster_.url()}, {"DATABASE_URL", cluster_.database_url()}});
    }
    ~LoadedCluster() {
        stop_publishers();
        worker_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    mqtest::PrivateCluster& cluster() { return cluster_; }
    mq::redis::Connection& redis() { return redis_; }
    mqtest::ApiProcess& api() { return api_; }
    WorkerProcess& worker() { return *worker_; }
    std::string stream() const {
        return mq::KeyLayout(api_.key_prefix()).stream(tenant_, queue_, 0);
    }
    std::string delivered_path() const { return dir_ + "/delivered"; }

    void start_publishers(int n = 6) {
        for (int t = 0; t < n; ++t) threads_.emplace_back([this, t] { publish_loop(t); });
    }
    void stop_publishers() {
        stop_ = true;
        for (auto& t : threads_)
            if (t.joinable()) t.join();
        threads_.clear();
    }
    std::size_t acked_count() {
        std::lock_guard<std::mutex> lock(mutex_);
        return acked_.size();
    }
    std::set<std::string> acked() {
        std::lock_guard<std::mutex> lock(mutex_);
        return acked_;
    }
    /// Acknowledged publishes in a row since the last failure.
    int streak() const { return streak_; }
    void reset_streak() { streak_ = 0; }
    int failed() const { return failed_; }
    std::string logs() {
        return "api log: " + api_.log().substr(0, 3000) +
               "\nworker log: " + worker_->log().substr(0, 3000);
    }

    /// After the publishers stopped: waits (bounded) for the worker to deliver what the
    /// stream holds, then counts.
    Outcome count() {
        const auto all_acked = acked();
        // A fresh connection: this one's connection to the killed node failed once (and
        // a failed command is not retried).
        mq::redis::Connection fresh(mq::redis::parse_url(cluster_.url()));
        std::set<std::string> stored;
        for (const auto& e : fresh.command({"XRANGE", stream(), "-", "+"}).elements) {
            const auto& fields = e.elements.at(1).elements;
            for (std::size_t f = 0; f + 1 < fields.size(); f += 2)
                if (fields[f].str == "id") stored.insert(fields[f + 1].str);
        }
        auto undelivered_stored = [&] {
            auto got = lines_of(delivered_path());
            std::size_t n = 0;
            for (const auto& id : all_acked) n += stored.count(id) && !got.count(id);
            return n;
        };
        mqtest::eventually([&] { return undelivered_stored() == 0; }, 30s);
        const auto got = lines_of(delivered_path());
        Outcome o;
        o.acked = all_acked.size();
        for (const auto& id : all_acked) o.lost += !got.count(id) && !stored.count(id);
        o.stored_undelivered = undelivered_stored();
        o.failed = failed_;
        return o;
    }

  private:
    mqtest::ApiOptions api_options() const {
        mqtest::ApiOptions o;
        o.redis_url = cluster_.url();
        o.database_url = cluster_.database_url();
        return o;
    }
    void publish_loop(int thread) {
        for (int i = 0; !stop_; ++i) {
            auto r = api_.call_json(
                "POST", "/api/v1/mq/publish",
                {{"queue", queue_}, {"payload", {{"thread", thread}, {"i", i}}}}, token_);
            if (r.status == 201) {
                auto j = r.json();
                const auto& id = j.contains("messageId") ? j["messageId"] : j["id"];
                std::lock_guard<std::mutex> lock(mutex_);
                acked_.insert(id.get<std::string>());
                ++streak_;
            } else {
                ++failed_;
                streak_ = 0;
                std::this_thread::sleep_for(20ms);
            }
        }
    }

    mqtest::PrivateCluster cluster_;
    std::string tenant_;
    std::string token_;
    std::string queue_;
    mqtest::ApiProcess api_;
    std::string dir_;
    mq::redis::Connection redis_;
    std::unique_ptr<WorkerProcess> worker_;
    std::mutex mutex_;
    std::set<std::string> acked_;
    std::atomic<int> failed_{0}, streak_{0};
    std::atomic<bool> stop_{false};
    std::vector<std::thread> threads_;
};

// Kills the master of the queue's partition under load, waits for its replica to be
// promoted, starts the killed node again (as a supervisor would: it rejoins as a
// replica) and waits for 200 acknowledged publishes in a row; nothing else restarts.
Outcome failover_under_load(const std::string& durability) {
    LoadedCluster lc(durability);
    const mq::redis::NodeAddress victim = lc.redis().node_of(lc.stream());
    auto role = lc.redis().node(victim).command({"ROLE"});
    REQUIRE(role.elements.size() >= 3);
    REQUIRE_FALSE(role.elements[2].elements.empty());
    const int replica = std::stoi(role.elements[2].elements[0].elements.at(1).str);

    // A key on the victim's slots for the flood below.
    std::string fill;
    for (int k = 0; fill.empty() && k < 10000; ++k)
        if (lc.redis().node_of("fill" + std::to_string(k)) == victim)
            fill = "fill" + std::to_string(k);
    REQUIRE_FALSE(fill.empty());

    lc.start_publishers();
    REQUIRE(mqtest::eventually([&] { return lc.acked_count() >= 300; }, 30s));
    REQUIRE(mqtest::eventually([&] { return lines_of(lc.delivered_path()).size() >= 100; }, 30s));
    // The replica falls behind as it would under real load or latency: it stops reading
    // (SIGSTOP) while 48 MB of other writes fill the replication stream beyond the socket
    // buffers, so the publishes after them are only in the master's memory when it dies.
    const std::size_t acked_at_stop = lc.acked_count();
    lc.cluster().kill_node(replica, SIGSTOP);
    {
        mq::redis::Connection direct(mq::redis::parse_url("redis://" + victim.describe()));
        const std::string mb(1 << 20, 'x');
        for (int i = 0; i < 48; ++i) direct.command({"SET", fill, mb});
    }
    // Publishes acknowledged after the flood sit behind it in the master's buffer for the
    // replica: with durability leader, wait for some (however slow this build) before the
    // kill. With durability replica none can be acknowledged now (WAIT 1 finds no replica).
    if (durability == "leader") {
        const std::size_t acked_after_flood = lc.acked_count();
        REQUIRE(
            mqtest::eventually([&] { return lc.acked_count() >= acked_after_flood + 50; }, 20s));
    } else {
        std::this_thread::sleep_for(700ms);
    }
    lc.cluster().kill_node(victim.port);
    const auto killed_at = Clock::now();
    const std::size_t acked_while_behind = lc.acked_count() - acked_at_stop;
    lc.cluster().kill_node(replica, SIGCONT);
    const std::size_t acked_before = lc.acked_count();
    REQUIRE(
        mqtest::eventually([&] { return mqtest::PrivateCluster::role(replica) == "master"; }, 20s));
    const auto promoted_at = Clock::now();
    lc.cluster().restart_node(victim.port);
    lc.reset_streak();
    const bool recovered = mqtest::eventually([&] { return lc.streak() >= 200; }, 45s);
    const auto recovered_at = Clock::now();
    lc.stop_publishers();
    INFO(lc.logs());
    REQUIRE(recovered);  // 200 acknowledged publishes in a row, nothing restarted
    CHECK(lc.acked_count() >= acked_before + 200);
    CHECK(lc.api().running());
    CHECK(lc.worker().alive());
    Outcome o = lc.count();
    o.acked_while_behind = acked_while_behind;
    o.promoted = std::chrono::duration_cast<std::chrono::milliseconds>(promoted_at - killed_at);
    o.recovered = std::chrono::duration_cast<std::chrono::milliseconds>(recovered_at - killed_at);
    return o;
}

// The slots `port` serves, ascending (CLUSTER SLOTS: [start, end, [ip, port, id], ...]).
std::vector<int> slots_of(mq::redis::Connection& redis, int port) {
    std::vector<int> out;
    for (const auto& range : redis.command({"CLUSTER", "SLOTS"}).elements)
        if (range.elements.at(2).elements.at(1).integer == port)
            for (auto s = range.elements[0].integer; s <= range.elements[1].integer; ++s)
                out.push_back(static_cast<int>(s));
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST_CASE(
    "cluster_failover_with_durability_leader_loses_at_most_what_was_acked_while_the_replica_lagged",
    "[cluster][failover][e2e]") {
    Outcome o = failover_under_load("leader");
    WARN("durability leader: " << o.acked << " publishes acknowledged (" << o.acked_while_behind
                               << " while the replica was behind), " << o.lost
                               << " of them lost with the killed master, " << o.failed
                               << " answered 503 during the failover; replica promoted after "
                               << o.promoted.count() << " ms, 200 acknowledged in a row after "
                               << o.recovered.count() << " ms");
    CHECK(o.stored_undelivered == 0);  // the worker carried on: whatever is stored is delivered
    // Asynchronous replication: the master acknowledged publishes while its replica was
    // behind, and what is lost with it is at most those. How many of them are lost is
    // measured, not required: it is what the killed master had not yet handed to the
    // kernel's socket buffers toward the stopped replica, which depends on timing (runs
    // here lost 3,571 and 3,312 of about 6,000, and 0 of 767 under a loaded machine; see
    // docs/cluster.md). The replica test below is the guarantee: 0 lost.
    CHECK(o.acked_while_behind > 0);
    CHECK(o.lost <= o.acked_while_behind);
}

TEST_CASE("cluster_failover_with_durability_replica_loses_no_acked_publish",
          "[cluster][failover][e2e]") {
    Outcome o = failover_under_load("replica");
    WARN("durability replica: " << o.acked << " publishes acknowledged (" << o.acked_while_behind
                                << " while the replica was behind), " << o.lost << " lost, "
                                << o.failed
                                << " answered 503 during the failover; replica promoted after "
                                << o.promoted.count() << " ms, 200 acknowledged in a row after "
                                << o.recovered.count() << " ms");
    CHECK(o.stored_undelivered == 0);
    CHECK(o.lost == 0);  // nothing was acknowledged that the replica did not have
}

// docs/cluster.md "Adding a node": a new master joins (mq-services add-node, which runs
// `redis-cli --cluster add-node`) and `redis-cli --cluster reshard` moves to it the slot of
// the busy partition while mq-api publishes and mq-worker consumes. Nothing acknowledged
// is lost and both processes follow the slot to its new node.
TEST_CASE("cluster_reshard_of_a_busy_partition_to_a_new_node_loses_nothing",
          "[cluster][reshard][e2e]") {
    // redis-cli moves a source's lowest slots first: pick a queue whose partition's slot is
    // among the first 300 of its master, so the reshard moves it and stays short.
    int source_port = 0;
    int to_move = 0;
    LoadedCluster lc("leader", [&](mqtest::PrivateCluster& cluster, const std::string& tenant) {
        mq::redis::Connection probe(mq::redis::parse_url(cluster.url()));
        const mq::KeyLayout keys;
        for (int k = 0; k < 5000; ++k) {
            const std::string name = "jobs" + std::to_string(k);
            const std::string key = keys.stream(tenant, name, 0);
            const int port = probe.node_of(key).port;
            const auto slots = slots_of(probe, port);
            auto at = std::find(slots.begin(), slots.end(), mq::redis::key_slot(key));
            REQUIRE(at != slots.end());
            if (at - slots.begin() < 300) {
                source_port = port;
                to_move = static_cast<int>(at - slots.begin()) + 1;
                return name;
            }
        }
        FAIL("no queue name whose slot is among the first 300 of its master");
        return std::string();
    });
    REQUIRE(lc.redis().node_of(lc.stream()).port == source_port);

    lc.start_publishers();
    REQUIRE(mqtest::eventually([&] { return lc.acked_count() >= 300; }, 30s));
    REQUIRE(mqtest::eventually([&] { return lines_of(lc.delivered_path()).size() >= 100; }, 30s));

    const int added = lc.cluster().add_node();
    auto id_of = [](int port) {
        mq::redis::Endpoint one = mq::redis::parse_url("redis://127.0.0.1:" + std::to_string(port));
        return mq::redis::Connection(one).command({"CLUSTER", "MYID"}).str;
    };
    const std::string reshard =
        "redis-cli --cluster reshard 127.0.0.1:" + std::to_string(source_port) +
        " --cluster-from " + id_of(source_port) + " --cluster-to " + id_of(added) +
        " --cluster-slots " + std::to_string(to_move) + " --cluster-yes >/dev/null 2>&1";
    const std::size_t acked_before = lc.acked_count();
    const auto started = Clock::now();
    REQUIRE(mqtest::run_shell(reshard) == 0);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    mq::redis::Connection fresh(mq::redis::parse_url(lc.cluster().url()));
    CHECK(fresh.node_of(lc.stream()).port == added);  // the partition lives on the new node

    lc.reset_streak();
    const bool flowing = mqtest::eventually([&] { return lc.streak() >= 200; }, 30s);
    lc.stop_publishers();
    INFO(lc.logs());
    REQUIRE(flowing);
    CHECK(lc.acked_count() >= acked_before + 200);
    CHECK(lc.api().running());
    CHECK(lc.worker().alive());
    Outcome o = lc.count();
    WARN("reshard of " << to_move << " slot(s) to a new node under load took " << took.count()
                       << " ms: " << o.acked << " publishes acknowledged, " << o.lost << " lost, "
                       << o.failed << " answered 503 (try again) while the slot moved");
    CHECK(o.lost == 0);
    CHECK(o.stored_undelivered == 0);
}
