// Hostile command lines (issue 11, item 8/9): every mqctl command and mq-worker flag with
// empty strings, huge and negative numbers, hex/octal spellings, bad names, missing files,
// directories, /dev/zero and invalid UTF-8. Each case must exit with the code DESIGN.md
// gives (2 usage, 3 not found...), within a time limit (a hang fails), without a crash,
// and must leave PostgreSQL rows and Redis keys exactly as they were.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "mqctl_shell.hpp"

namespace {

using namespace std::chrono_literals;

constexpr int kHang = -2;   // killed at the deadline
constexpr int kCrash = -1;  // ended by a signal

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Runs `binary args...` with stdin from /dev/null (never a terminal) and the fixture's
// services, killing it after `deadline`: no shell, so any byte can be an argument.
// `env` replaces the fixture's services when given.
mqtest::Run run_bounded(const std::string& binary, const std::vector<std::string>& args,
                        std::chrono::milliseconds deadline = 20s,
                        std::vector<std::string> env = {}) {
    std::string out = mqtest::temp_file(""), err = mqtest::temp_file("");
    if (env.empty())
        env = {"PATH=/usr/bin:/bin", "REDIS_URL=" + mqtest::services().redis_url,
               "DATABASE_URL=" + mqtest::services().database_url};
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int in = ::open("/dev/null", O_RDONLY);
        int o = ::open(out.c_str(), O_WRONLY | O_TRUNC);
        int e = ::open(err.c_str(), O_WRONLY | O_TRUNC);
        ::dup2(in, 0);
        ::dup2(o, 1);
        ::dup2(e, 2);
        std::vector<char*> argv{const_cast<char*>(binary.c_str())};
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        std::vector<char*> envp;
        for (auto& v : env) envp.push_back(v.data());
        envp.push_back(nullptr);
        ::execve(binary.c_str(), argv.data(), envp.data());
        ::_exit(127);
    }
    mqtest::Run r;
    auto until = std::chrono::steady_clock::now() + deadline;
    int status = 0;
    for (;;) {
        pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) break;
        if (std::chrono::steady_clock::now() > until) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            r.status = kHang;
            break;
        }
        std::this_thread::sleep_for(10ms);
    }
    if (r.status != kHang) r.status = WIFEXITED(status) ? WEXITSTATUS(status) : kCrash;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

struct Case {
    std::vector<std::string> args;
    int exit;
};

class Shell : public mqtest::MqctlShell {
  public:
    // Everything a refused command could have written: rows of the tenant and every Redis
    // key under the test's prefix (sorted), as one comparable text.
    std::string snapshot() {
        std::string s;
        db().db().transact([&](pqxx::work& tx) {
            for (const char* table : {"message_topics", "message_subscriptions", "api_tokens",
                                      "message_schedules", "dead_letters"}) {
                // Row count and a digest of every row: any insert, update or delete shows.
                auto r = tx.exec_params1(
                    std::string("SELECT count(*)::text || ':' || "
                                "coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') "
                                "FROM ") +
                        table + " t WHERE tenant_id = $1",
                    tenant());
                s += std::string(table) + "=" + r[0].as<std::string>() + "\n";
            }
            // Only the tenant ids the cases try (other tests create tenants in parallel).
            auto t = tx.exec1(
                "SELECT count(*) FROM tenants WHERE id = '' OR id LIKE 'bad%' OR "
                "id = 'nope-tenant-x' OR length(id) > 64");
            s += "tenants=" + t[0].as<std::string>() + "\n";
        });
        auto keys = redis().all_keys();
        std::sort(keys.begin(), keys.end());
        for (const auto& k : keys) s += k + "\n";
        return s;
    }

    // Runs one case; CHECKs each property and returns whether the case behaved.
    bool check(const Case& c, const std::string& binary = MQCTL_PATH) {
        std::vector<std::string> argv;
        if (binary == MQCTL_PATH) argv = {"--tenant", tenant(), "--key-prefix", redis().prefix()};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        std::string shown;
        for (const auto& a : c.args) shown += " '" + mq::printable(a.substr(0, 60)) + "'";
        const std::string before = snapshot();
        auto r = run_bounded(binary, argv);
        INFO(std::filesystem::path(binary).filename().string()
             << shown << "\nexit " << r.status << " (want " << c.exit << ")\n--- stdout:\n"
             << r.out.substr(0, 500) << "--- stderr:\n"
             << r.err.substr(0, 500));
        CHECK(r.status != kHang);
        CHECK(r.status != kCrash);
        CHECK(r.status == c.exit);
        // A refusal says why, on one readable line.
        if (c.exit != 0) {
            CHECK(!r.err.empty());
            CHECK(r.err.size() < 8192);
        }
        const bool unchanged = snapshot() == before;
        CHECK(unchanged);
        return r.status == c.exit && unchanged;
    }
};

std::string deep_json(std::size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
}

}  // namespace

TEST_CASE("mqctl refuses hostile arguments with the right exit code and writes nothing",
          "[security][mqctl]") {
    Shell sh;
    sh.create_queue({"q"});
    sh.ok({"sub", "create", "q", "s", "--type", "pull"});
    sh.ok({"schedule", "create", "sched", "-q", "q", "--cron", "@hourly", "--payload", "x"});

    auto dir = std::filesystem::temp_directory_path() / mqtest::unique_name("mqctl-inputs");
    std::filesystem::create_directories(dir);
    const std::string d = dir.string();
    const std::string missing = (dir / "missing.json").string();
    const std::string deep = mqtest::temp_file(deep_json(100000));
    const std::string deep_object = mqtest::temp_file(std::string(200000, '{'));
    const std::string not_json = mqtest::temp_file("{\"type\": ");
    const std::string bad_utf8 = mqtest::temp_file("{\"type\": \"\xff\xfe\"}");
    const std::string huge_number = mqtest::temp_file("{\"maxLength\": 1e400}");
    const std::string bad_batch = mqtest::temp_file(
        "{\"payload\": \"a\"}\n{\"payload\": " + deep_json(5000) + ", \"delay\": \"\"}\n");
    const std::string big_delay_batch =
        mqtest::temp_file("{\"payload\": \"a\", \"delay_ms\": 9223372036854775807}\n");
    const std::string past_batch =
        mqtest::temp_file("{\"payload\": \"a\", \"deliver_at\": \"0000-01-01T00:00:00Z\"}\n");
    const std::string s300(300, 'a');
    const std::string s100k(100000, 'k');
    const std::string bad = "\xff\xfe";

    const std::vector<Case> cases = {
        // Global options.
        {{"--tenant", "", "queue", "list"}, 2},
        {{"--tenant", "bad tenant!", "queue", "list"}, 2},
        {{"--key-prefix", "", "queue", "list"}, 2},
        {{"-o", "xml", "queue", "list"}, 2},
        {{"--config", missing, "queue", "list"}, 2},
        {{"--config", d, "queue", "list"}, 2},
        {{"no-such-command"}, 2},
        // queue create: names, numbers, durations, files.
        {{"queue", "create", ""}, 2},
        {{"queue", "create", s300}, 2},
        {{"queue", "create", "bad name!"}, 2},
        {{"queue", "create", "caf\xc3\xa9"}, 2},
        {{"queue", "create", bad}, 2},
        {{"queue", "create", "../etc"}, 2},
        {{"queue", "create", "n1", "--partitions", "0x10"}, 2},
        {{"queue", "create", "n1", "--partitions", "010"}, 2},
        {{"queue", "create", "n1", "--partitions", "0"}, 2},
        {{"queue", "create", "n1", "--partitions", "-1"}, 2},
        {{"queue", "create", "n1", "--partitions", "257"}, 2},
        {{"queue", "create", "n1", "--partitions", "99999999999999999999"}, 2},
        {{"queue", "create", "n1", "--partitions", "1e3"}, 2},
        {{"queue", "create", "n1", "--partitions", ""}, 2},
        {{"queue", "create", "n1", "--partitions", " 4"}, 2},
        {{"queue", "create", "n1", "--retention", ""}, 2},
        {{"queue", "create", "n1", "--retention", "-5s"}, 2},
        {{"queue", "create", "n1", "--retention", "9223372036854775807ms"}, 2},
        {{"queue", "create", "n1", "--retention", "0x10s"}, 2},
        {{"queue", "create", "n1", "--max-length", "0x10"}, 2},
        {{"queue", "create", "n1", "--max-length", "-1"}, 2},
        {{"queue", "create", "n1", "--max-length", "99999999999999999999999"}, 2},
        {{"queue", "create", "n1", "--dedup-window", ""}, 2},
        {{"queue", "create", "n1", "--encryption", "rot13"}, 2},
        {{"queue", "create", "n1", "--allow-producer", ""}, 2},
        {{"queue", "create", "n1", "--description", bad}, 2},
        {{"queue", "create", "n1", "--schema-file", missing}, 2},
        {{"queue", "create", "n1", "--schema-file", d}, 2},
        {{"queue", "create", "n1", "--schema-file", "/dev/zero"}, 2},
        {{"queue", "create", "n1", "--schema-file", ""}, 2},
        {{"queue", "create", "n1", "--schema-file", deep}, 2},
        {{"queue", "create", "n1", "--schema-file", deep_object}, 2},
        {{"queue", "create", "n1", "--schema-file", not_json}, 2},
        {{"queue", "create", "n1", "--schema-file", bad_utf8}, 2},
        {{"queue", "create", "n1", "--schema-file", huge_number}, 2},
        {{"queue", "create", "q"}, 4},
        // queue show/update/delete/purge.
        {{"queue", "show", ""}, 2},
        {{"queue", "show", "nope"}, 3},
        {{"queue", "update", "q", "--partitions", "0x10"}, 2},
        {{"queue", "update", "q", "--partitions", "0"}, 2},
        {{"queue", "update", "q", "--retention", ""}, 2},
        {{"queue", "update", "q", "--schema-file", deep}, 2},
        {{"queue", "update", "q"}, 2},
        {{"queue", "update", "nope", "--retention", "1h"}, 3},
        {{"queue", "delete", "q"}, 2},  // no --yes and no terminal: refused, not answered
        {{"queue", "delete", ""}, 2},
        {{"queue", "purge", "q"}, 2},
        // publish: the cases of issue 11 first.
        {{"publish", "q", "x", "--delay", ""}, 2},
        {{"publish", "q", "x", "--delay", "9223372036854775807ms"}, 2},
        {{"publish", "q", "x", "--at", ""}, 2},
        {{"publish", "q", "x", "--at", "0000-01-01T00:00:00Z"}, 2},
        {{"publish", "q", "x", "--delay", "-1s"}, 2},
        {{"publish", "q", "x", "--delay", "0x10"}, 2},
        {{"publish", "q", "x", "--delay", "1.5s"}, 2},
        {{"publish", "q", "x", "--at", "2026-13-01T00:00:00Z"}, 2},
        {{"publish", "q", "x", "--at", "tomorrow"}, 2},
        {{"publish", "q", "x", "--delay", "5s", "--at", "2030-01-01T00:00:00Z"}, 2},
        {{"publish", "q", "-f", missing}, 2},
        {{"publish", "q", "-f", d}, 2},
        {{"publish", "q", "-f", "/dev/zero"}, 2},
        {{"publish", "q", "x", "-f", "/dev/null"}, 2},
        {{"publish", "q"}, 2},  // standard input is /dev/null: no payload
        {{"publish", "q", "--batch", "/dev/zero"}, 2},
        {{"publish", "q", "--batch", d}, 2},
        {{"publish", "q", "--batch", missing}, 2},
        {{"publish", "q", "--batch", bad_batch}, 2},
        {{"publish", "q", "--batch", big_delay_batch}, 2},
        {{"publish", "q", "--batch", past_batch}, 2},
        {{"publish", "q", "--batch", bad_batch, "--delay", "5s"}, 2},
        {{"publish", "q", "x", "-H", ""}, 2},
        {{"publish", "q", "x", "-H", "=v"}, 2},
        {{"publish", "q", "x", "-H", "a=\xff"}, 2},
        {{"publish", "q", "x", "-k", s100k}, 2},
        {{"publish", "q", "x", "-i", s100k}, 2},
        {{"publish", "q", "x", "-k", ""}, 2},
        {{"publish", "q", "x", "--content-type", ""}, 2},
        {{"publish", "", "x"}, 2},
        {{"publish", bad, "x"}, 2},
        {{"publish", "nope", "x"}, 3},
        // sub create/update: numbers, durations, JSON flags.
        {{"sub", "create", "q", "s2", "--max-attempts", "0x10"}, 2},
        {{"sub", "create", "q", "s2", "--max-attempts", "0"}, 2},
        {{"sub", "create", "q", "s2", "--max-attempts", "99999999999"}, 2},
        {{"sub", "create", "q", "s2", "--concurrency", "-1"}, 2},
        {{"sub", "create", "q", "s2", "--batch-size", "010"}, 2},
        {{"sub", "create", "q", "s2", "--jitter", "nan"}, 2},
        {{"sub", "create", "q", "s2", "--jitter", "inf"}, 2},
        {{"sub", "create", "q", "s2", "--multiplier", "0x1p3"}, 2},
        {{"sub", "create", "q", "s2", "--rate-limit", "-1"}, 2},
        {{"sub", "create", "q", "s2", "--rate-limit", "1e999"}, 2},
        {{"sub", "create", "q", "s2", "--visibility-timeout", ""}, 2},
        {{"sub", "create", "q", "s2", "--initial-backoff", "9223372036854775807ms"}, 2},
        {{"sub", "create", "q", "s2", "--filter", "{"}, 2},
        {{"sub", "create", "q", "s2", "--filter", deep_json(1000)}, 2},
        {{"sub", "create", "q", "s2", "--handler", std::string(100000, '[')}, 2},
        {{"sub", "create", "q", "s2", "--handler", "{\"timeout_ms\": 1e400}"}, 2},
        {{"sub", "create", "q", "s2", "--url", ""}, 2},
        {{"sub", "create", "q", "s2", "--type", "bogus"}, 2},
        {{"sub", "create", "q", "s2", "--from", "bogus"}, 2},
        {{"sub", "create", "q", bad}, 2},
        {{"sub", "create", "q", s300}, 2},
        {{"sub", "create", "nope", "s2"}, 3},
        {{"sub", "create", "q", "s"}, 4},
        {{"sub", "update", "q", "s", "--max-attempts", "0x10"}, 2},
        {{"sub", "update", "q", "s", "--concurrency", "0"}, 2},
        {{"sub", "update", "q", "s", "--jitter", "2"}, 2},
        {{"sub", "update", "q", "nope", "--concurrency", "2"}, 3},
        {{"sub", "delete", "q", "s"}, 2},  // no --yes, no terminal
        // pending, claim, ack.
        {{"pending", "q", "--sub", "s", "--count", "0x10"}, 2},
        {{"pending", "q", "--sub", "s", "--count", "-1"}, 2},
        {{"pending", "q", "--sub", "s", "--count", "0"}, 2},
        {{"pending", "q", "--sub", ""}, 2},
        {{"claim", "q", "--sub", "s", "--consumer", "c", "garbage"}, 2},
        {{"claim", "q", "--sub", "s", "--consumer", "", "0:1-1"}, 2},
        {{"ack", "q", "--sub", "s", "99999999999:1-1"}, 2},
        {{"ack", "q", "--sub", "s", "0:99999999999999999999-1"}, 2},
        {{"ack", "q", "--sub", "s", bad}, 2},
        // dlq.
        {{"dlq", "list", "q", "--limit", "0x10"}, 2},
        {{"dlq", "list", "q", "--limit", "-1"}, 2},
        {{"dlq", "list", "q", "--since", ""}, 2},
        {{"dlq", "list", "q", "--since", "0000-01-01T00:00:00Z"}, 2},
        {{"dlq", "show", "q", "garbage"}, 2},
        {{"dlq", "replay", "q", "--all", "--rate", ""}, 2},
        {{"dlq", "replay", "q", "--all", "--rate", "-5"}, 2},
        {{"dlq", "replay", "q", "--all", "--rate", "0x10"}, 2},
        {{"dlq", "replay", "q", "--all"}, 2},  // no --yes, no terminal
        {{"dlq", "purge", "q", "--before", ""}, 2},
        {{"dlq", "purge", "q"}, 2},
        // tokens and tenants.
        {{"token", "create", "--role", "root"}, 2},
        {{"token", "create", "--role", ""}, 2},
        {{"token", "create", "--role", "producer", "--ttl", "0x10"}, 2},
        {{"token", "create", "--role", "producer", "--ttl", "9223372036854775807ms"}, 2},
        {{"token", "create", "--role", "producer", "--principal", bad}, 2},
        {{"token", "revoke", ""}, 2},
        {{"tenant", "create", ""}, 2},
        {{"tenant", "create", "bad tenant!"}, 2},
        {{"tenant", "create", s300}, 2},
        {{"tenant", "update", "nope-tenant-x", "--publish-rate", "0x10"}, 2},
        {{"tenant", "update", "nope-tenant-x", "--publish-rate", ""}, 2},
        // schedules.
        {{"schedule", "create", "s2", "-q", "q", "--cron", ""}, 2},
        {{"schedule", "create", "s2", "-q", "q", "--cron", "99 * * * *"}, 2},
        {{"schedule", "create", "s2", "-q", "q", "--cron", "@hourly", "--tz", "Mars/Base"}, 2},
        {{"schedule", "create", "s2", "-q", "q", "--cron", "@hourly", "--payload-file",
          "/dev/zero"},
         2},
        {{"schedule", "create", "s2", "-q", "q", "--cron", "@hourly", "--payload-file", d}, 2},
        {{"schedule", "create", "s2", "-q", "nope", "--cron", "@hourly", "--payload", "x"}, 3},
        {{"schedule", "show", "sched", "--next", "0x10"}, 2},
        {{"schedule", "show", "sched", "--next", "-1"}, 2},
        {{"schedule", "delete", "sched"}, 2},
        // stats, apply, maintenance.
        {{"stats", ""}, 2},
        {{"stats", "nope"}, 3},
        {{"apply", "-f", missing}, 2},
        {{"apply", "-f", d}, 2},
        {{"apply", "-f", "/dev/zero"}, 2},
        {{"apply", "-f", ""}, 2},
        {{"scheduler", "run", "--once", "--interval", ""}, 2},
        {{"scheduler", "run", "--once", "--interval", "0x10"}, 2},
    };
    for (const auto& c : cases) CHECK(sh.check(c));
    std::filesystem::remove_all(dir);
}

// Issue 11: a publish to a full queue exited 0. QUEUE_FULL is a failure (exit 1), single
// or batch, immediate or delayed, and nothing past the limit is stored.
TEST_CASE("mqctl publish to a full queue fails with QUEUE_FULL", "[security][mqctl]") {
    Shell sh;
    sh.create_queue({"full", "--max-length", "1"});
    sh.ok({"publish", "full", "first"});
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"publish", "full", "second"},
          std::vector<std::string>{"publish", "full", "second", "--delay", "1h"},
          std::vector<std::string>{"publish", "full", "second", "-i", "idem-1"}}) {
        sh.check({args, 1});
    }
    auto r = sh.run({"-o", "json", "publish", "full", "again"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("MQ_QUEUE_FULL"));
    std::string batch = mqtest::temp_file("{\"payload\": \"a\"}\n{\"payload\": \"b\"}\n");
    auto b = sh.run({"publish", "full", "--batch", batch});
    CHECK(b.status == 1);
    CHECK(sh.xlen("full", 0) == 1);
}

TEST_CASE("mq-worker refuses hostile flags before starting", "[security][worker]") {
    Shell sh;
    auto dir = std::filesystem::temp_directory_path() / mqtest::unique_name("worker-inputs");
    std::filesystem::create_directories(dir);
    const std::string d = dir.string();
    const std::string config = mqtest::temp_file("subscriptions: []\n");
    const std::vector<Case> cases = {
        {{"--check", "--config", config}, 0},
        {{"--check", "--config", config, "--metrics-port", "0x10"}, 2},
        {{"--check", "--config", config, "--metrics-port", "70000"}, 2},
        {{"--check", "--config", config, "--metrics-port", "-5"}, 2},
        {{"--check", "--config", config, "--metrics-port", ""}, 2},
        {{"--check", "--config", config, "--reconcile-interval-ms", "0x100"}, 2},
        {{"--check", "--config", config, "--reconcile-interval-ms", "99999999999"}, 2},
        {{"--check", "--config", config, "--consumer-name", ""}, 2},
        {{"--check", "--config", config, "--consumer-name", "\xff"}, 2},
        {{"--check", "--from-db", "--tenant", ""}, 2},
        {{"--check", "--config", ""}, 2},
        {{"--check", "--config", (dir / "missing.yaml").string()}, 2},
        {{"--check", "--config", d}, 2},
        {{"--check", "--config", "/dev/zero"}, 2},
        {{"--check"}, 2},
        {{"--bogus"}, 2},
    };
    for (const auto& c : cases) CHECK(sh.check(c, MQ_WORKER_PATH));
    std::filesystem::remove_all(dir);
}

TEST_CASE(
    "mqctl publish --batch refuses an unreadable file with exit 2 while the backends are down",
    "[security][mqctl]") {
    auto dir = std::filesystem::temp_directory_path() / mqtest::unique_name("batch-down");
    std::filesystem::create_directories(dir);
    const std::vector<std::string> down = {
        "PATH=/usr/bin:/bin", "REDIS_URL=redis://127.0.0.1:" + std::to_string(mqtest::dead_port()),
        "DATABASE_URL=postgresql://mq@127.0.0.1:" + std::to_string(mqtest::dead_port()) +
            "/mq?connect_timeout=2"};
    for (const std::string& file : {(dir / "missing.jsonl").string(), dir.string()}) {
        auto r = run_bounded(MQCTL_PATH, {"publish", "q", "--batch", file}, 20s, down);
        INFO(file << ": exit " << r.status << "\n" << r.err);
        CHECK(r.status == 2);
        CHECK(r.err.find("batch file") != std::string::npos);
    }
    // A readable file gets as far as the backends: unavailable, exit 5.
    const std::string good = mqtest::temp_file("{\"payload\": 1}\n");
    auto r = run_bounded(MQCTL_PATH, {"publish", "q", "--batch", good}, 20s, down);
    INFO(r.err);
    CHECK(r.status == 5);
    std::filesystem::remove_all(dir);
}
