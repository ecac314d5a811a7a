// mqtest::ChildProcess, the e2e tests' way to run a daemon: exit statuses, SIGTERM then
// SIGKILL after the limit, no zombie left behind by the destructor, and its log file.
#include "child_process.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "eventually.hpp"

using namespace std::chrono_literals;
using mqtest::ChildProcess;

namespace {

ChildProcess shell(const std::string& script) {
    return ChildProcess("/bin/sh", {"-c", script}, {{"PATH", "/usr/bin:/bin"}});
}

std::chrono::milliseconds since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0);
}

}  // namespace

TEST_CASE("child_process_reports_the_exit_code_and_its_output", "[child_process]") {
    auto p = shell("echo out; echo err >&2; exit 3");
    CHECK(p.pid() > 0);
    CHECK(p.wait_exit(10s) == 3);
    CHECK_FALSE(p.alive());
    CHECK(p.wait_exit(0ms) == 3);  // the same answer again
    CHECK(p.log() == "out\nerr\n");
    CHECK(p.count_in_log("err") == 1);
    CHECK_FALSE(p.signal(SIGTERM));  // reaped: nothing is signalled
}

TEST_CASE("child_process_gets_exactly_the_environment_it_was_given", "[child_process]") {
    ChildProcess p("/bin/sh", {"-c", "echo \"[$ONLY_THIS][$HOME]\""}, {{"ONLY_THIS", "yes"}});
    REQUIRE(p.wait_exit(10s) == 0);
    CHECK(p.log() == "[yes][]\n");
    auto inherited = mqtest::inherited_env({{"ONLY_THIS", "over"}});
    CHECK(inherited.at("ONLY_THIS") == "over");
    CHECK(inherited.count("PATH") == 1);
}

TEST_CASE("child_process_wait_exit_answers_nullopt_while_it_runs", "[child_process]") {
    auto p = shell("exec sleep 30");
    auto t0 = std::chrono::steady_clock::now();
    CHECK(p.wait_exit(200ms) == std::nullopt);
    CHECK(since(t0) < 5s);
    CHECK(p.alive());
    REQUIRE(p.signal(SIGKILL));
    CHECK(p.wait_exit(10s) == 128 + SIGKILL);
}

TEST_CASE("child_process_terminate_stops_a_process_that_honours_sigterm_at_once",
          "[child_process]") {
    auto p = shell("exec sleep 30");
    auto t0 = std::chrono::steady_clock::now();
    CHECK(p.terminate(10s) == 128 + SIGTERM);
    CHECK(since(t0) < 5s);
    CHECK_FALSE(p.alive());
}

TEST_CASE("child_process_terminate_kills_a_process_that_ignores_sigterm_after_the_limit",
          "[child_process]") {
    auto p = shell("trap '' TERM; echo ready; while :; do sleep 1; done");
    REQUIRE(mqtest::eventually([&] { return p.log() == "ready\n"; }, 10s));
    auto t0 = std::chrono::steady_clock::now();
    CHECK(p.terminate(500ms) == 128 + SIGKILL);
    auto took = since(t0);
    CHECK(took >= 500ms);
    CHECK(took < 5s);
}

TEST_CASE("child_process_destructor_kills_and_reaps_a_running_process", "[child_process]") {
    pid_t pid = -1;
    {
        auto p = shell("exec sleep 30");
        pid = p.pid();
        REQUIRE(p.alive());
    }
    // Reaped: no longer our child (a zombie would still be), and gone.
    CHECK(waitpid(pid, nullptr, WNOHANG) == -1);
    CHECK(errno == ECHILD);
}

TEST_CASE("child_process_moved_from_owns_nothing", "[child_process]") {
    auto a = shell("exec sleep 30");
    pid_t pid = a.pid();
    ChildProcess b = std::move(a);
    CHECK(b.pid() == pid);
    CHECK(a.pid() == -1);  // NOLINT(bugprone-use-after-move): checked on purpose
    CHECK_FALSE(a.alive());
    CHECK(b.terminate(10s) == 128 + SIGTERM);
}
