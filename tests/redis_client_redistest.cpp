// The hiredis wrapper against a real redis-server: pipelines, scripts, failures.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "harness.hpp"

using mq::redis::Connection;
using mq::redis::Reply;

TEST_CASE("commands and pipelines return owned replies in order", "[redis]") {
    mqtest::RedisScope rs;
    auto& r = rs.redis();
    const std::string key = rs.prefix() + "list";
    CHECK(r.command({"RPUSH", key, "a", "b"}).as_integer() == 2);
    mq::redis::Pipeline p;
    p.add({"LLEN", key});
    p.add({"LRANGE", key, "0", "-1"});
    p.add({"GET", rs.prefix() + "missing"});
    p.add({"INCR", key});  // WRONGTYPE: an error reply, not an exception
    auto replies = r.execute(p);
    REQUIRE(replies.size() == 4);
    CHECK(replies[0].as_integer() == 2);
    REQUIRE(replies[1].elements.size() == 2);
    CHECK(replies[1].elements[1].str == "b");
    CHECK(replies[2].is_nil());
    CHECK(replies[3].is_error());
    CHECK(replies[3].error_code() == "WRONGTYPE");
    CHECK_THROWS_AS(r.command({"INCR", key}), mq::Error);
}

TEST_CASE("scripts run by EVALSHA and reload themselves after SCRIPT FLUSH", "[redis]") {
    mqtest::RedisScope rs;
    auto& r = rs.redis();
    mq::redis::Script script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    const std::string key = rs.prefix() + "counter";
    CHECK(r.eval(script, {key}, {"2"}).as_integer() == 2);
    r.command({"SCRIPT", "FLUSH"});
    CHECK(r.eval(script, {key}, {"3"}).as_integer() == 5);  // NOSCRIPT -> load -> run once
    // A flush between pipelines is survived as well, and the script ran exactly once each.
    r.command({"SCRIPT", "FLUSH"});
    mq::redis::Pipeline p;
    p.add_script(script, {key}, {"10"});
    p.add_script(script, {key}, {"100"});
    auto replies = r.execute(p);
    CHECK(replies[0].as_integer() == 15);
    CHECK(replies[1].as_integer() == 115);
}

TEST_CASE("a killed connection fails once with BackendUnavailable, then reconnects", "[redis]") {
    mqtest::RedisScope rs;
    auto conn = rs.connect();
    auto id = conn->command({"CLIENT", "ID"}).as_integer();
    rs.redis().command({"CLIENT", "KILL", "ID", std::to_string(id)});
    try {
        conn->command({"PING"});
        FAIL("expected a failure on the killed connection");
    } catch (const mq::BackendUnavailable& e) {
        CHECK(std::string(e.what()).find("lost connection to Redis") != std::string::npos);
    }
    CHECK(conn->command({"PING"}).as_string() == "PONG");
    CHECK(conn->command({"CLIENT", "ID"}).as_integer() != id);
}

TEST_CASE("an unreachable Redis is reported with its address and what to do", "[redis]") {
    int port = mqtest::dead_port();
    try {
        Connection c(mq::redis::parse_url("redis://127.0.0.1:" + std::to_string(port)));
        FAIL("connected to a port nobody listens on");
    } catch (const mq::BackendUnavailable& e) {
        std::string what = e.what();
        CHECK(what.find("cannot reach Redis at 127.0.0.1:" + std::to_string(port)) !=
              std::string::npos);
        CHECK(what.find("REDIS_URL") != std::string::npos);
        CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
    }
}

TEST_CASE("a command that outlives the timeout fails as a timeout", "[redis]") {
    mqtest::RedisScope rs;
    mq::redis::ConnectOptions opts;
    opts.command_timeout = std::chrono::milliseconds(100);
    Connection c(mq::redis::parse_url(mqtest::services().redis_url), opts);
    try {
        c.command({"BLPOP", rs.prefix() + "never", "2"});
        FAIL("BLPOP should have timed out on the socket");
    } catch (const mq::BackendUnavailable& e) {
        CHECK(std::string(e.what()).find("did not answer within 100 ms") != std::string::npos);
    }
    c.set_command_timeout(std::chrono::milliseconds(2000));
    CHECK(c.command({"PING"}).as_string() == "PONG");
}

TEST_CASE("the database number in the URL is selected", "[redis]") {
    mqtest::RedisScope rs;
    auto url = mqtest::services().redis_url;
    url = url.substr(0, url.rfind('/')) + "/5";
    Connection db5(mq::redis::parse_url(url));
    const std::string key = rs.prefix() + "db5";
    db5.command({"SET", key, "x"});
    CHECK(rs.redis().command({"EXISTS", key}).as_integer() == 0);
    CHECK(db5.command({"EXISTS", key}).as_integer() == 1);
    db5.command({"DEL", key});
}

TEST_CASE("a Redis that may evict keys is refused", "[redis]") {
    // A private server with an evicting policy, so the shared one is never reconfigured.
    int port = mqtest::dead_port();
    std::string dir = "/tmp/" + mqtest::unique_name("mq-evict");
    std::string cmd = "redis-server --port " + std::to_string(port) +
                      " --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --dir /tmp"
                      " --pidfile " +
                      dir + ".pid --logfile " + dir +
                      ".log"
                      " --maxmemory 64mb --maxmemory-policy allkeys-lru";
    REQUIRE(std::system(cmd.c_str()) == 0);
    std::unique_ptr<Connection> c;
    for (int i = 0; i < 100 && !c; ++i) {
        try {
            c = std::make_unique<Connection>(
                mq::redis::parse_url("redis://127.0.0.1:" + std::to_string(port)));
        } catch (const mq::BackendUnavailable&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    REQUIRE(c);
    try {
        c->check_server_policy();
        FAIL("an allkeys-lru server was accepted");
    } catch (const mq::Error& e) {
        CHECK(std::string(e.what()).find("allkeys-lru") != std::string::npos);
        CHECK(std::string(e.what()).find("noeviction") != std::string::npos);
    }
    c->command({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
    CHECK_NOTHROW(c->check_server_policy());
    try {
        c->command_raw({"SHUTDOWN", "NOSAVE"});  // the server closes the socket as it goes
    } catch (const mq::BackendUnavailable&) {
    }
    std::remove((dir + ".log").c_str());

    // The shared test server is configured correctly.
    mqtest::RedisScope rs;
    CHECK_NOTHROW(rs.redis().check_server_policy());
}

TEST_CASE("a wrong password is refused with a clear message", "[redis]") {
    // The test server has no password: AUTH fails, and the error says what to check.
    auto url = mqtest::services().redis_url;
    url.insert(std::string("redis://").size(), ":wrong@");
    try {
        Connection c(mq::redis::parse_url(url));
        FAIL("AUTH with a password on a server without one should fail");
    } catch (const mq::BackendUnavailable& e) {
        CHECK(std::string(e.what()).find("refused authentication") != std::string::npos);
    }
}
