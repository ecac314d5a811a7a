// The exec handler: payload on stdin, delivery in the environment, exit status into
// ack / retry / dead-letter, and a hung command killed at its timeout.

#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mq/deliver/exec.hpp"
#include "mq/error.hpp"

using Catch::Matchers::Contains;
using mq::DeliveryOutcome;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

/// A temporary directory, removed when the scope ends.
class TempDir {
  public:
    TempDir() {
        std::string tmpl =
            (std::filesystem::temp_directory_path() / "mq-exec-test-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string path() const { return path_.string(); }
    std::string read(const std::string& name) const {
        std::ifstream in(path_ / name, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

  private:
    std::filesystem::path path_;
};

mq::Delivery order_delivery(std::string payload = R"({"order":42})") {
    mq::Delivery d;
    d.message.id = "01900000-0000-7000-8000-000000000042";
    d.message.key = "customer-7";
    d.message.headers_json = R"({"source":"shop"})";
    d.message.payload = std::move(payload);
    d.message.content_type = "application/json";
    d.message.published_ms = 1700000000123;
    d.tenant = "acme";
    d.queue = "orders";
    d.subscription = "billing";
    d.partition = 3;
    d.stream_id = "1700000000000-0";
    d.attempt = 2;
    return d;
}

mq::ExecConfig shell(const std::string& script, milliseconds timeout = milliseconds(10000)) {
    mq::ExecConfig c;
    c.command = {"/bin/sh", "-c", script};
    c.timeout = timeout;
    return c;
}

long long ms_since(Clock::time_point t) {
    return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
}

std::set<std::string> env_lines(const std::string& text) {
    std::set<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.insert(line);
    return lines;
}

/// Number of open descriptors of this process.
int open_fds() {
    int n = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        (void)entry;
        ++n;
    }
    return n;
}

/// True when this process has no child, exited or not.
bool no_children_left() { return waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD; }

template <typename F>
std::string rejected_field(F parse) {
    try {
        parse();
    } catch (const mq::ValidationError& e) {
        return e.details().value("field", "(no field)");
    }
    return "";
}

}  // namespace

// ---- the stdin / environment contract ----------------------------------------------------

TEST_CASE("exec_handler_passes_payload_on_stdin_and_delivery_in_env", "[exec]") {
    TempDir dir;
    auto config = shell(R"(cat > "$OUT/stdin"; env > "$OUT/env")");
    config.env = {{"OUT", dir.path()}, {"GREETING", "hello world"}};
    mq::ExecHandler handler(config);
    std::string payload("{\"order\":42}\n\0binary\xff", 21);

    auto r = handler.deliver(order_delivery(payload));
    REQUIRE(r.outcome == DeliveryOutcome::kAck);
    CHECK(r.error.empty());
    CHECK(dir.read("stdin") == payload);
    auto env = env_lines(dir.read("env"));
    for (const char* line :
         {"MQ_MESSAGE_ID=01900000-0000-7000-8000-000000000042", "MQ_KEY=customer-7", "MQ_ATTEMPT=2",
          "MQ_TENANT=acme", "MQ_QUEUE=orders", "MQ_SUBSCRIPTION=billing", "MQ_PARTITION=3",
          "MQ_STREAM_ID=1700000000000-0", "MQ_CONTENT_TYPE=application/json",
          "MQ_PUBLISHED_MS=1700000000123", R"(MQ_HEADERS={"source":"shop"})",
          "GREETING=hello world"}) {
        INFO(line);
        CHECK(env.count(line) == 1);
    }
}

TEST_CASE("exec_handler_keeps_worker_secrets_out_of_the_environment_unless_inherit_env", "[exec]") {
    TempDir dir;
    ::setenv("MQ_EXEC_TEST_SECRET", "s3cret", 1);
    ::setenv("EXEC_TEST_DATABASE_URL", "postgres://u:pw@h/db", 1);
    auto config = shell(R"(env > "$OUT/env")");
    config.env = {{"OUT", dir.path()}};
    REQUIRE(mq::ExecHandler(config).deliver(order_delivery()).outcome == DeliveryOutcome::kAck);
    auto plain = dir.read("env");
    CHECK_THAT(plain, !Contains("EXEC_TEST_DATABASE_URL"));
    CHECK_THAT(plain, !Contains("MQ_EXEC_TEST_SECRET"));
    CHECK_THAT(plain, Contains("PATH="));

    config.inherit_env = true;
    REQUIRE(mq::ExecHandler(config).deliver(order_delivery()).outcome == DeliveryOutcome::kAck);
    auto inherited = dir.read("env");
    CHECK_THAT(inherited, Contains("EXEC_TEST_DATABASE_URL=postgres://u:pw@h/db"));
    CHECK_THAT(inherited, !Contains("MQ_EXEC_TEST_SECRET"));  // MQ_* is the delivery's own
    ::unsetenv("MQ_EXEC_TEST_SECRET");
    ::unsetenv("EXEC_TEST_DATABASE_URL");
}

TEST_CASE("exec_handler_runs_argv_without_a_shell_in_the_working_dir", "[exec]") {
    TempDir dir;
    mq::ExecConfig config;
    config.command = {"touch", "made by $USER; not expanded"};
    config.working_dir = dir.path();
    REQUIRE(mq::ExecHandler(config).deliver(order_delivery()).outcome == DeliveryOutcome::kAck);
    CHECK(
        std::filesystem::exists(std::filesystem::path(dir.path()) / "made by $USER; not expanded"));
}

TEST_CASE("exec_handler_does_not_leak_worker_descriptors_into_the_command", "[exec]") {
    TempDir dir;
    int leaky = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
    REQUIRE(leaky > 2);
    auto config = shell(R"(ls /proc/$$/fd > "$OUT/fds")");
    config.env = {{"OUT", dir.path()}};
    REQUIRE(mq::ExecHandler(config).deliver(order_delivery()).outcome == DeliveryOutcome::kAck);
    ::close(leaky);
    auto fds = env_lines(dir.read("fds"));
    CHECK(fds.count(std::to_string(leaky)) == 0);
    CHECK(fds.count("0") == 1);
    CHECK(fds.count("2") == 1);
}

// ---- outcomes ----------------------------------------------------------------------------

TEST_CASE("exec_handler_acks_exit_0", "[exec]") {
    auto r = mq::ExecHandler(shell("exit 0")).deliver(order_delivery());
    CHECK(r.outcome == DeliveryOutcome::kAck);
    CHECK(r.error.empty());
}

TEST_CASE("exec_handler_retries_non_zero_exit_with_stderr_in_the_error", "[exec]") {
    auto r = mq::ExecHandler(shell("echo 'db is down' >&2; exit 1")).deliver(order_delivery());
    CHECK(r.outcome == DeliveryOutcome::kRetry);
    CHECK_THAT(r.error, Contains("exit status 1") && Contains("db is down"));

    auto temp = mq::ExecHandler(shell("exit 75")).deliver(order_delivery());
    CHECK(temp.outcome == DeliveryOutcome::kRetry);
    CHECK_THAT(temp.error, Contains("exit status 75"));

    auto stdout_only =
        mq::ExecHandler(shell("echo 'said on stdout'; exit 3")).deliver(order_delivery());
    CHECK_THAT(stdout_only.error, Contains("said on stdout"));
}

TEST_CASE("exec_handler_keeps_only_the_last_kib_of_stderr", "[exec]") {
    auto r = mq::ExecHandler(
                 shell("head -c 5000 /dev/zero | tr '\\0' a >&2; echo END-MARKER >&2; exit 2"))
                 .deliver(order_delivery());
    CHECK(r.outcome == DeliveryOutcome::kRetry);
    CHECK_THAT(r.error, Contains("END-MARKER"));
    CHECK(r.error.size() < 1100);
}

TEST_CASE("exec_handler_dead_letters_exit_100", "[exec]") {
    auto r =
        mq::ExecHandler(shell("echo 'malformed order' >&2; exit 100")).deliver(order_delivery());
    CHECK(r.outcome == DeliveryOutcome::kDead);
    CHECK_THAT(r.error, Contains("exit status 100") && Contains("malformed order"));
}

TEST_CASE("exec_handler_retries_a_command_killed_by_a_signal", "[exec]") {
    auto r = mq::ExecHandler(shell("kill -SEGV $$")).deliver(order_delivery());
    CHECK(r.outcome == DeliveryOutcome::kRetry);
    CHECK_THAT(r.error, Contains("signal 11"));
}

TEST_CASE("exec_handler_retries_a_command_that_cannot_start", "[exec]") {
    mq::ExecConfig config;
    config.command = {"/nonexistent/mq-handler"};
    auto r = mq::ExecHandler(config).deliver(order_delivery());
    CHECK(r.outcome == DeliveryOutcome::kRetry);
    CHECK_THAT(r.error, Contains("cannot start") && Contains("/nonexistent/mq-handler"));

    config.command = {"mq-no-such-program-in-path"};
    CHECK(mq::ExecHandler(config).deliver(order_delivery()).outcome == DeliveryOutcome::kRetry);
    CHECK(no_children_left());
}

// ---- timeouts ----------------------------------------------------------------------------

TEST_CASE("exec_handler_kills_a_hung_command_at_the_timeout", "[exec]") {
    mq::ExecConfig config;
    config.command = {"sleep", "30"};
    config.timeout = milliseconds(200);
    auto started = Clock::now();
    auto r = mq::ExecHandler(config).deliver(order_delivery());
    auto elapsed = ms_since(started);
    CHECK(r.outcome == DeliveryOutcome::kRetry);
    CHECK_THAT(r.error, Contains("timed out after 200 ms"));
    CHECK(elapsed >= 200);
    CHECK(elapsed < 2500);
    CHECK(no_children_left());
}

TEST_CASE("exec_handler_kills_the_whole_process_group_with_sigkill_when_sigterm_is_ignored",
          "[exec]") {
    TempDir dir;
    // The shell and its sleep both ignore SIGTERM; the sleep's pid is written down so the
    // test can see it is gone afterwards.
    auto config =
        shell(R"(trap '' TERM; sleep 30 & echo $! > "$OUT/pid"; wait)", milliseconds(200));
    config.env = {{"OUT", dir.path()}};
    config.kill_grace = milliseconds(300);
    auto started = Clock::now();
    auto r = mq::ExecHandler(config).deliver(order_delivery());
    auto elapsed = ms_since(started);
    CHECK(r.outcome == DeliveryOutcome::kRetry);
    CHECK_THAT(r.error, Contains("timed out after 200 ms") && Contains("SIGKILL"));
    CHECK(elapsed >= 450);
    CHECK(elapsed < 2500);
    pid_t grandchild = std::stoi(dir.read("pid"));
    // Reparented to init, the killed sleep may take a moment to be reaped there.
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
        std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
        std::string pid, comm, state;
        gone = !(stat >> pid >> comm >> state) || state == "Z";
        if (!gone) std::this_thread::sleep_for(milliseconds(20));
    }
    CHECK(gone);
}

TEST_CASE("exec_handler_returns_when_the_command_exits_even_if_a_child_holds_its_output",
          "[exec]") {
    auto started = Clock::now();
    auto r = mq::ExecHandler(shell("sleep 3 >/dev/null 2>&1 & sleep 2 & echo started; exit 0"))
                 .deliver(order_delivery());
    CHECK(r.outcome == DeliveryOutcome::kAck);
    CHECK(ms_since(started) < 1500);
}

// ---- payloads the command does not read --------------------------------------------------

TEST_CASE("exec_handler_does_not_deadlock_when_the_command_ignores_a_large_stdin", "[exec]") {
    std::string mib(1024 * 1024, 'x');
    auto started = Clock::now();
    // Exits at once: writes hit EPIPE (the test process must not die of SIGPIPE).
    auto quick = mq::ExecHandler(shell("exit 0", milliseconds(5000))).deliver(order_delivery(mib));
    CHECK(quick.outcome == DeliveryOutcome::kAck);
    // Stays alive without reading: the pipe fills and the handler waits for the exit.
    auto slow = mq::ExecHandler(shell("sleep 0.3; exit 0", milliseconds(5000)))
                    .deliver(order_delivery(mib));
    CHECK(slow.outcome == DeliveryOutcome::kAck);
    // Reads only a little.
    auto partial = mq::ExecHandler(shell("head -c 10 >/dev/null; exit 0", milliseconds(5000)))
                       .deliver(order_delivery(mib));
    CHECK(partial.outcome == DeliveryOutcome::kAck);
    CHECK(ms_since(started) < 3000);
}

TEST_CASE("exec_handler_streams_a_large_payload_to_a_command_that_reads_it", "[exec]") {
    TempDir dir;
    std::string payload;
    for (int i = 0; i < 300'000; ++i) payload += static_cast<char>('a' + i % 26);
    auto config = shell(R"(wc -c > "$OUT/count"; echo noise >&2)");
    config.env = {{"OUT", dir.path()}};
    REQUIRE(mq::ExecHandler(config).deliver(order_delivery(payload)).outcome ==
            DeliveryOutcome::kAck);
    CHECK(std::stoul(dir.read("count")) == payload.size());
}

// ---- resources ---------------------------------------------------------------------------

TEST_CASE("exec_handler_leaves_no_zombie_and_no_open_descriptor", "[exec]") {
    int fds_before = open_fds();
    mq::ExecHandler ok(shell("cat >/dev/null"));
    mq::ExecHandler failing(shell("echo no >&2; exit 1"));
    mq::ExecConfig hung;
    hung.command = {"sleep", "30"};
    hung.timeout = milliseconds(50);
    mq::ExecHandler hanging(hung);
    for (int i = 0; i < 5; ++i) {
        CHECK(ok.deliver(order_delivery()).outcome == DeliveryOutcome::kAck);
        CHECK(failing.deliver(order_delivery()).outcome == DeliveryOutcome::kRetry);
    }
    CHECK(hanging.deliver(order_delivery()).outcome == DeliveryOutcome::kRetry);
    CHECK(no_children_left());
    CHECK(open_fds() == fds_before);
}

TEST_CASE("exec_handler_runs_commands_from_many_threads_at_once", "[exec]") {
    TempDir dir;
    auto config = shell(R"(cat > "$OUT/$MQ_MESSAGE_ID")");
    config.env = {{"OUT", dir.path()}};
    mq::ExecHandler handler(config);
    constexpr int kThreads = 4;
    constexpr int kEach = 10;
    std::vector<int> acks(kThreads, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                auto d = order_delivery("payload " + std::to_string(t) + "/" + std::to_string(i));
                d.message.id = "m-" + std::to_string(t) + "-" + std::to_string(i);
                if (handler.deliver(d).outcome == DeliveryOutcome::kAck) ++acks[t];
            }
        });
    for (auto& t : threads) t.join();
    for (int t = 0; t < kThreads; ++t) CHECK(acks[t] == kEach);
    CHECK(dir.read("m-3-7") == "payload 3/7");
    CHECK(no_children_left());
}

// ---- configuration ----------------------------------------------------------------------

TEST_CASE("exec_handler_config_reads_string_and_array_commands", "[exec][config]") {
    auto sh = mq::exec_config_from_json({{"type", "exec"},
                                         {"command", "./handle.sh --fast"},
                                         {"timeout", "5s"},
                                         {"env", {{"MODE", "prod"}}},
                                         {"working_dir", "/srv/app"}});
    CHECK(sh.command == std::vector<std::string>{"/bin/sh", "-c", "./handle.sh --fast"});
    CHECK(sh.timeout == milliseconds(5000));
    CHECK(sh.env.at("MODE") == "prod");
    CHECK(sh.working_dir == "/srv/app");
    CHECK_FALSE(sh.inherit_env);

    auto argv = mq::exec_config_from_json(
        {{"command", {"python3", "-m", "handler"}}, {"timeout_ms", 1500}, {"inherit_env", true}});
    CHECK(argv.command == std::vector<std::string>{"python3", "-m", "handler"});
    CHECK(argv.timeout == milliseconds(1500));
    CHECK(argv.inherit_env);
    CHECK(mq::exec_config_from_json({{"command", "true"}}).timeout == milliseconds(30000));
}

TEST_CASE("exec_handler_config_rejects_bad_input_naming_the_field", "[exec][config]") {
    using J = nlohmann::json;
    auto parse = [](J j) { return [j] { (void)mq::exec_config_from_json(j); }; };
    CHECK(rejected_field(parse(J::object())) == "command");
    CHECK(rejected_field(parse({{"command", ""}})) == "command");
    CHECK(rejected_field(parse({{"command", "   "}})) == "command");
    CHECK(rejected_field(parse({{"command", J::array()}})) == "command");
    CHECK(rejected_field(parse({{"command", {"prog", 1}}})) == "command");
    CHECK(rejected_field(parse({{"command", {""}}})) == "command");
    CHECK(rejected_field(parse({{"command", 7}})) == "command");
    CHECK(rejected_field(parse({{"command", "true"}, {"timeout", "forever"}})) == "timeout");
    CHECK(rejected_field(parse({{"command", "true"}, {"timeout", "0s"}})) == "timeout");
    CHECK(rejected_field(parse({{"command", "true"}, {"timeout", 5}})) == "timeout");
    CHECK(rejected_field(parse({{"command", "true"}, {"timeout_ms", 0}})) == "timeout_ms");
    CHECK(rejected_field(parse({{"command", "true"}, {"env", {{"MQ_KEY", "x"}}}})) == "env");
    CHECK(rejected_field(parse({{"command", "true"}, {"env", {{"A=B", "x"}}}})) == "env");
    CHECK(rejected_field(parse({{"command", "true"}, {"env", {{"A", 1}}}})) == "env");
    CHECK(rejected_field(parse({{"command", "true"}, {"env", "A=1"}})) == "env");
    CHECK(rejected_field(parse({{"command", "true"}, {"working_dir", 3}})) == "working_dir");
    CHECK(rejected_field(parse({{"command", "true"}, {"inherit_env", "yes"}})) == "inherit_env");
    CHECK(rejected_field(parse({{"command", "true"}, {"comand", "x"}})) == "comand");
    CHECK_THROWS_AS(mq::exec_config_from_json(J::array()), mq::ValidationError);

    mq::ExecConfig in_code;
    CHECK_THROWS_WITH(mq::ExecHandler(in_code), Contains("command"));
}
