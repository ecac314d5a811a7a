// redis::AsyncConnection (mq-api's per-thread connection) against a real redis-server:
// ordering, group commit, scripts after SCRIPT FLUSH, errors as values, a killed
// connection, a server that never answers, and destruction with calls in flight.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <optional>

#include "harness.hpp"
#include "mq/redis/async_connection.hpp"

using mq::redis::AsyncConnection;
using mq::redis::Pipeline;
using mq::redis::Reply;

namespace {

struct Result {
    std::vector<Reply> replies;
    std::exception_ptr error;
    bool called = false;
};

AsyncConnection::Callback keep(Result& r) {
    return [&r](std::vector<Reply> replies, std::exception_ptr error) {
        r.replies = std::move(replies);
        r.error = std::move(error);
        r.called = true;
    };
}

std::string error_text(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const mq::Error& err) {
        CHECK(err.code() == mq::ErrorCode::kBackendUnavailable);
        return err.what();
    } catch (const std::exception& err) {
        FAIL("not an mq::Error: " << err.what());
    }
    return {};
}

/// Runs the loop until `done` holds or `limit` passes (the connection's read keeps the
/// loop busy forever, so run_for alone would always wait the whole limit).
template <class Pred>
void run_until(boost::asio::io_context& ioc, Pred done,
               std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    ioc.restart();
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < until)
        ioc.run_one_for(std::chrono::milliseconds(50));
}

/// Executes `p` and runs the loop until its callback ran (a failed REQUIRE otherwise).
Result call(AsyncConnection& conn, boost::asio::io_context& ioc, const Pipeline& p) {
    auto r = std::make_shared<Result>();  // outlives this call if the callback never comes
    conn.execute(p, [r](std::vector<Reply> replies, std::exception_ptr error) {
        r->replies = std::move(replies);
        r->error = std::move(error);
        r->called = true;
    });
    run_until(ioc, [&] { return r->called; });
    REQUIRE(r->called);
    return *r;
}

Pipeline one(std::vector<std::string> argv) {
    Pipeline p;
    p.add(std::move(argv));
    return p;
}

}  // namespace

TEST_CASE("async: calls made in one turn share one write and answer in order", "[redis][async]") {
    mqtest::RedisScope rs;
    auto ioc = std::make_shared<boost::asio::io_context>(1);
    AsyncConnection conn(ioc, rs.redis().endpoint());
    const std::string key = rs.prefix() + "n";
    constexpr int kCalls = 200;
    std::vector<Pipeline> pipelines;
    for (int i = 0; i < kCalls; ++i) pipelines.push_back(one({"INCR", key}));
    std::vector<Result> results(kCalls);
    for (int i = 0; i < kCalls; ++i) conn.execute(pipelines[i], keep(results[i]));
    run_until(*ioc, [&] { return results.back().called; });
    for (int i = 0; i < kCalls; ++i) {
        REQUIRE(results[i].called);
        REQUIRE_FALSE(results[i].error);
        REQUIRE(results[i].replies.size() == 1);
        CHECK(results[i].replies[0].as_integer() == i + 1);  // in order
    }
    CHECK(conn.writes() == 1);  // everything queued before the loop ran left in one write
    CHECK(rs.redis().command({"GET", key}).as_integer() == kCalls);
}

TEST_CASE("async: error replies are values, and an empty pipeline completes at once",
          "[redis][async]") {
    mqtest::RedisScope rs;
    auto ioc = std::make_shared<boost::asio::io_context>(1);
    AsyncConnection conn(ioc, rs.redis().endpoint());
    const std::string key = rs.prefix() + "list";
    Pipeline p;
    p.add({"RPUSH", key, "a"});
    p.add({"INCR", key});  // WRONGTYPE
    p.add({"LRANGE", key, "0", "-1"});
    Result r;
    conn.execute(p, keep(r));
    Pipeline empty;
    Result e;
    conn.execute(empty, keep(e));
    CHECK(e.called);  // before the loop ran
    CHECK(e.replies.empty());
    run_until(*ioc, [&] { return r.called; });
    REQUIRE(r.called);
    REQUIRE_FALSE(r.error);
    REQUIRE(r.replies.size() == 3);
    CHECK(r.replies[0].as_integer() == 1);
    CHECK(r.replies[1].error_code() == "WRONGTYPE");
    REQUIRE(r.replies[2].elements.size() == 1);
    CHECK(r.replies[2].elements[0].str == "a");
}

TEST_CASE("async: scripts load on first use and again after SCRIPT FLUSH", "[redis][async]") {
    mqtest::RedisScope rs;
    auto ioc = std::make_shared<boost::asio::io_context>(1);
    AsyncConnection conn(ioc, rs.redis().endpoint());
    static const mq::redis::Script script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    const std::string key = rs.prefix() + "counter";
    rs.redis().command({"SCRIPT", "FLUSH"});
    Pipeline p;
    p.add_script(script, {key}, {"2"});
    p.add({"GET", key});
    Result first = call(conn, *ioc, p);
    REQUIRE_FALSE(first.error);
    CHECK(first.replies[0].as_integer() == 2);
    CHECK(first.replies[1].as_integer() == 2);

    // The connection believes the script is loaded; the server forgot it.
    rs.redis().command({"SCRIPT", "FLUSH"});
    Result second = call(conn, *ioc, p);
    REQUIRE_FALSE(second.error);
    CHECK(second.replies[0].as_integer() == 4);  // ran exactly once more
    CHECK(second.replies[1].as_integer() == 2);  // the GET was not re-run: it read before
    CHECK(rs.redis().command({"GET", key}).as_integer() == 4);
}

TEST_CASE("async: a killed connection fails the calls in flight, and the next call reconnects",
          "[redis][async]") {
    mqtest::RedisScope rs;
    auto ioc = std::make_shared<boost::asio::io_context>(1);
    AsyncConnection conn(ioc, rs.redis().endpoint());
    auto id_pipeline = one({"CLIENT", "ID"});
    Result id = call(conn, *ioc, id_pipeline);
    REQUIRE_FALSE(id.error);
    // BLPOP holds the call in flight while the connection is killed from outside.
    auto block = one({"BLPOP", rs.prefix() + "never", "5"});
    Result blocked;
    conn.execute(block, keep(blocked));
    run_until(
        *ioc, [&] { return blocked.called; }, std::chrono::milliseconds(200));
    REQUIRE_FALSE(blocked.called);
    rs.redis().command({"CLIENT", "KILL", "ID", std::to_string(id.replies[0].as_integer())});
    run_until(
        *ioc, [&] { return blocked.called; }, std::chrono::seconds(3));
    REQUIRE(blocked.called);
    REQUIRE(blocked.error);
    CHECK_THAT(error_text(blocked.error),
               Catch::Contains("lost connection") && Catch::Contains("may or may not have run"));
    auto ping = one({"PING"});
    Result again = call(conn, *ioc, ping);
    REQUIRE_FALSE(again.error);
    CHECK(again.replies[0].str == "PONG");
}

TEST_CASE("async: nothing listening answers BackendUnavailable naming the server",
          "[redis][async]") {
    auto ioc = std::make_shared<boost::asio::io_context>(1);
    // Bind a port and close it again: nothing listens there.
    boost::asio::ip::tcp::acceptor probe(*ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    int port = probe.local_endpoint().port();
    probe.close();
    mq::redis::Endpoint ep;
    ep.port = port;
    AsyncConnection conn(ioc, ep);
    auto ping = one({"PING"});
    Result r = call(conn, *ioc, ping);
    REQUIRE(r.error);
    CHECK_THAT(error_text(r.error),
               Catch::Contains("cannot reach Redis at 127.0.0.1:" + std::to_string(port)));
}

TEST_CASE("async: a server that never answers times out with BackendUnavailable",
          "[redis][async]") {
    auto ioc = std::make_shared<boost::asio::io_context>(1);
    // Accepts connections and reads nothing: the command is never answered.
    boost::asio::ip::tcp::acceptor silent(*ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    boost::asio::ip::tcp::socket held(*ioc);
    silent.async_accept(held, [](boost::system::error_code) {});
    mq::redis::Endpoint ep;
    ep.port = silent.local_endpoint().port();
    mq::redis::ConnectOptions options;
    options.command_timeout = std::chrono::milliseconds(300);
    AsyncConnection conn(ioc, ep, options);
    auto ping = one({"PING"});
    auto started = std::chrono::steady_clock::now();
    Result r = call(conn, *ioc, ping);
    REQUIRE(r.error);
    CHECK_THAT(error_text(r.error), Catch::Contains("did not answer within 300 ms"));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::milliseconds(1500));
}

TEST_CASE("async: destroying the connection with calls in flight drops them safely",
          "[redis][async]") {
    mqtest::RedisScope rs;
    auto ioc = std::make_shared<boost::asio::io_context>(1);
    auto block = one({"BLPOP", rs.prefix() + "never", "2"});
    bool called = false;
    {
        AsyncConnection conn(ioc, rs.redis().endpoint());
        conn.execute(block, [&called](std::vector<Reply>, std::exception_ptr) { called = true; });
        ioc->run_for(std::chrono::milliseconds(200));
    }
    // Handlers left in the io_context find the connection gone and do nothing.
    ioc->restart();
    ioc->run_for(std::chrono::milliseconds(200));
    CHECK_FALSE(called);
    CHECK(rs.redis().command({"PING"}).str == "PONG");
}
