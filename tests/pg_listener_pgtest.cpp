// pg::Listener, the LISTEN connection shared by the config cache and the outbox relay,
// against a real PostgreSQL: payloads arrive, a dropped connection is reported (not
// silently turned into "no notifications"), and an unreachable server names itself.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "harness.hpp"
#include "mq/error.hpp"
#include "mq/pg/listener.hpp"

using namespace std::chrono_literals;

namespace {

// Waits until `n` payloads arrived or 3 s passed.
void wait_for(mq::pg::Listener& l, const std::vector<std::string>& got, std::size_t n) {
    auto end = std::chrono::steady_clock::now() + 3s;
    while (got.size() < n && std::chrono::steady_clock::now() < end) l.wait(100ms);
}

}  // namespace

TEST_CASE("a listener hands every payload on its channel to the handler", "[pg_listener]") {
    const std::string channel = "mq_test_" + mqtest::unique_name("l").substr(2);
    std::vector<std::string> got;
    mq::pg::Listener l(mqtest::services().database_url, channel,
                       [&](const std::string& p) { got.push_back(p); });
    CHECK(l.wait(10ms) == 0);  // nothing sent yet: the wait times out
    mqtest::exec_admin("SELECT pg_notify('" + channel + "', 'one')");
    mqtest::exec_admin("SELECT pg_notify('" + channel + "_other', 'not ours')");
    mqtest::exec_admin("SELECT pg_notify('" + channel + "', 'two')");
    wait_for(l, got, 2);
    REQUIRE(got.size() == 2);
    CHECK(got[0] == "one");
    CHECK(got[1] == "two");
}

TEST_CASE("a listener whose connection was killed throws instead of waiting forever",
          "[pg_listener]") {
    const std::string channel = "mq_test_" + mqtest::unique_name("k").substr(2);
    mq::pg::Listener l(mqtest::services().database_url, channel, [](const std::string&) {});
    mqtest::exec_admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN \"" +
        channel + "\"' OR query = 'LISTEN " + channel + "'");
    bool threw = false;
    auto end = std::chrono::steady_clock::now() + 3s;
    while (!threw && std::chrono::steady_clock::now() < end) {
        try {
            l.wait(100ms);
        } catch (const pqxx::broken_connection&) {
            threw = true;
        }
    }
    CHECK(threw);
}  // and the destructor does not throw on the dead connection

TEST_CASE("a listener on an unreachable server names it and the hint, not the password",
          "[pg_listener]") {
    const std::string where = "127.0.0.1:" + std::to_string(mqtest::dead_port());
    const std::string url = "postgresql://mq:s3cret@" + where + "/mq";
    try {
        mq::pg::Listener l(
            url, "mq_config", [](const std::string&) {}, "set DATABASE_URL");
        FAIL("connected to a dead port");
    } catch (const mq::BackendUnavailable& e) {
        const std::string what = e.what();
        CHECK(what.find(where) != std::string::npos);
        CHECK(what.find("set DATABASE_URL") != std::string::npos);
        CHECK(what.find("s3cret") == std::string::npos);
    }
}
