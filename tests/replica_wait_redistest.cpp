// Durability "replica" on one Redis with a replica of its own: WAIT 1 after the write,
// through the asynchronous connection (mq-api's group commit: the calls of one turn share
// one WAIT) and the blocking one (mqctl, the publish use case). Without a replica the call
// fails as try-again (BackendUnavailable) after the wait, and an ordinary call does not wait.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>

#include "harness.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/redis/async_connection.hpp"
#include "private_services.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A redis-server replicating `master_port`, of this test alone.
class Replica {
  public:
    explicit Replica(int master_port)
        : port_(mqtest::dead_port()), dir_(mqtest::make_private_dir()) {
        const auto p = std::to_string(port_);
        REQUIRE(mqtest::run_shell("redis-server --bind 127.0.0.1 --port " + p +
                                  " --replicaof 127.0.0.1 " + std::to_string(master_port) +
                                  " --save '' --appendonly no --daemonize yes --dir " + dir_ +
                                  " --pidfile " + dir_ + "/redis.pid --logfile " + dir_ +
                                  "/redis.log") == 0);
        REQUIRE(mqtest::eventually(
            [&] {
                return mqtest::run_shell("redis-cli -h 127.0.0.1 -p " + p +
                                         " info replication 2>/dev/null | "
                                         "grep -q master_link_status:up") == 0;
            },
            15s));
    }
    ~Replica() { stop(); }
    void stop() {
        mqtest::run_shell("redis-cli -h 127.0.0.1 -p " + std::to_string(port_) +
                          " shutdown nosave >/dev/null 2>&1");
        mqtest::eventually([&] { return !mqtest::redis_answers(port_); }, 10s);
    }
    int port() const { return port_; }

  private:
    int port_;
    std::string dir_;
};

struct Result {
    int ok = 0;
    int failed = 0;
    std::string error;
};

// `n` replicated XADDs submitted in one turn of the loop; runs it until all answered.
Result replicated_turn(mq::redis::AsyncConnection& c, boost::asio::io_context& ioc,
                       const std::string& stream, int n) {
    Result r;
    std::vector<mq::redis::Pipeline> pipelines(static_cast<std::size_t>(n));
    boost::asio::post(ioc, [&] {
        for (auto& p : pipelines) {
            p.add({"XADD", stream, "*", "v", "x"});
            c.execute_replicated(p, 500ms,
                                 [&r](std::vector<mq::redis::Reply> replies, std::exception_ptr e) {
                                     if (!e && replies.size() == 1 && !replies[0].is_error()) {
                                         ++r.ok;
                                         return;
                                     }
                                     ++r.failed;
                                     try {
                                         if (e) std::rethrow_exception(e);
                                     } catch (const mq::BackendUnavailable& x) {
                                         r.error = x.what();
                                     } catch (const std::exception& x) {
                                         r.error = std::string("not try-again: ") + x.what();
                                     }
                                 });
        }
    });
    ioc.restart();
    for (int i = 0; i < 200 && r.ok + r.failed < n; ++i) ioc.run_one_for(50ms);
    return r;
}

}  // namespace

TEST_CASE("replicated_writes_wait_for_the_replica_and_fail_without_one", "[redis][durability]") {
    mqtest::PrivateRedis master;
    Replica replica(master.port());
    const auto ep = mq::redis::parse_url(master.url());
    auto ioc = std::make_shared<boost::asio::io_context>();
    mq::redis::AsyncConnection async(ioc, ep);
    mq::redis::Connection at_replica(
        mq::redis::parse_url("redis://127.0.0.1:" + std::to_string(replica.port()) + "/0"));

    // 50 calls of one turn: acknowledged only once the replica has them (one WAIT for all).
    auto r = replicated_turn(async, *ioc, "s", 50);
    INFO(r.error);
    CHECK(r.ok == 50);
    CHECK(at_replica.command({"XLEN", "s"}).integer == 50);
    CHECK(async.writes() <= 3);  // the connect's first write, then the turn's

    // The blocking publisher of a durability "replica" queue.
    mq::Queue q;
    q.tenant = "t";
    q.name = "orders";
    q.durability = "replica";
    mq::redis::Connection redis(ep);
    mq::Publisher pub(redis, mq::KeyLayout("dur:"));
    mq::PublishRequest req;
    req.payload = "hello";
    auto outcome = pub.publish(q, req);
    CHECK(outcome.status == mq::PublishStatus::kAccepted);
    const std::string stream = mq::KeyLayout("dur:").stream("t", "orders", 0);
    CHECK(at_replica.command({"XLEN", stream}).integer == 1);

    // The replica goes away: a replicated call waits its 500 ms, then fails as try-again.
    replica.stop();
    auto start = Clock::now();
    r = replicated_turn(async, *ioc, "s", 3);
    CHECK(Clock::now() - start >= 450ms);
    CHECK(r.ok == 0);
    CHECK(r.failed == 3);
    CHECK_THAT(r.error, Catch::Matchers::Contains("no replica") &&
                            Catch::Matchers::Contains("WAIT answered 0"));
    try {
        pub.publish(q, req);
        FAIL("a publish without a replica was acknowledged");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
        CHECK_THAT(e.what(), Catch::Matchers::Contains("no replica of Redis at 127.0.0.1:" +
                                                       std::to_string(master.port())));
    }
    // A queue with durability "leader" does not wait.
    q.durability = "leader";
    start = Clock::now();
    CHECK(pub.publish(q, req).status == mq::PublishStatus::kAccepted);
    CHECK(Clock::now() - start < 400ms);
}

TEST_CASE("a_replicated_write_on_a_dead_server_fails_at_once", "[redis][durability]") {
    auto ioc = std::make_shared<boost::asio::io_context>();
    mq::redis::AsyncConnection async(
        ioc, mq::redis::parse_url("redis://127.0.0.1:" + std::to_string(mqtest::dead_port())));
    auto start = Clock::now();
    auto r = replicated_turn(async, *ioc, "s", 2);
    CHECK(r.failed == 2);
    CHECK_THAT(r.error, Catch::Matchers::Contains("cannot reach"));
    CHECK(Clock::now() - start < 5s);
    // A wait of zero is a caller's mistake, refused before anything is sent.
    mq::redis::Pipeline p;
    p.add({"XADD", "s", "*", "v", "x"});
    CHECK_THROWS_AS(async.execute_replicated(p, 0ms, [](auto, auto) {}), mq::Error);
}
