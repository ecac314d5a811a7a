// mqctl stats, scheduler run --once, db migrate, backends that are down, and usage
// errors, run as an operator would. Each test has its own tenant and key prefix.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "harness.hpp"
#include "mqctl_shell.hpp"

namespace {

using nlohmann::json;

// An operator's shell for one test: every command acts for the test's tenant and key
// prefix, and Redis can be inspected under that prefix.
class Shell : public mqtest::MqctlShell {
  public:
    /// Payloads of a partition stream, in stream order.
    std::vector<std::string> payloads(const std::string& queue, int p) {
        std::vector<std::string> out;
        auto r =
            redis_.redis().command({"XRANGE", redis_.keys().stream(tenant(), queue, p), "-", "+"});
        for (const auto& e : r.elements) {
            const auto& f = e.elements.at(1).elements;
            for (std::size_t i = 0; i + 1 < f.size(); i += 2)
                if (f[i].str == "p") out.push_back(f[i + 1].str);
        }
        return out;
    }
    std::string field(const std::string& queue, int p, std::size_t index, const std::string& name) {
        auto r =
            redis_.redis().command({"XRANGE", redis_.keys().stream(tenant(), queue, p), "-", "+"});
        const auto& f = r.elements.at(index).elements.at(1).elements;
        for (std::size_t i = 0; i + 1 < f.size(); i += 2)
            if (f[i].str == name) return f[i + 1].str;
        return {};
    }
};

std::string dead_redis_url(int port) { return "redis://127.0.0.1:" + std::to_string(port); }
std::string dead_pg_url(int port) {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/mq";
}

/// A throwaway database of its own, dropped at the end of the test.
class ScratchDatabase {
  public:
    ScratchDatabase() : name_("mq_scratch_" + suffix()) {
        mqtest::exec_admin("CREATE DATABASE " + name_);
    }
    ~ScratchDatabase() {
        try {
            mqtest::exec_admin("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
        } catch (...) {
        }
    }
    std::string url() const { return mqtest::database_url_for(name_); }

  private:
    static std::string suffix() {
        std::string s = mqtest::unique_name("db");
        return s.substr(s.find('-') + 1);
    }
    std::string name_;
};

/// The repository's migrations directory.
std::filesystem::path migrations_dir() {
    return std::filesystem::path(MQ_SOURCE_DIR) / "schemas" / "migrations";
}

}  // namespace

// ---------------------------------------------------------------- stats

TEST_CASE("stats_reports_length_per_partition_delayed_count_and_oldest_age", "[mqctl][stats]") {
    Shell sh;
    sh.create_queue({"orders", "--partitions", "3"});
    std::vector<std::int64_t> length(3, 0), delayed(3, 0);
    for (const std::string key : {"a", "b", "c", "d", "e", "f", "g"}) {
        json out = sh.json_of({"publish", "orders", "m-" + key, "--key", key});
        ++length[out["partition"].get<std::size_t>()];
    }
    for (const std::string key : {"a", "x"}) {
        json out = sh.json_of({"publish", "orders", "later-" + key, "--key", key, "--delay", "1h"});
        ++delayed[out["partition"].get<std::size_t>()];
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));

    json stats = sh.json_of({"stats", "orders"});
    CHECK(stats["queue"] == "orders");
    CHECK(stats["length"] == 7);
    CHECK(stats["delayed"] == 2);
    CHECK(stats["dead_letters"] == 0);
    REQUIRE(stats["oldest_age_ms"].is_number_integer());
    CHECK(stats["oldest_age_ms"].get<std::int64_t>() >= 50);
    CHECK(stats["oldest_age_ms"].get<std::int64_t>() < 60000);
    REQUIRE(stats["partitions"].size() == 3);
    for (std::size_t p = 0; p < 3; ++p) {
        const json& part = stats["partitions"][p];
        INFO("partition " << p);
        CHECK(part["partition"] == p);
        CHECK(part["length"] == length[p]);
        CHECK(part["delayed"] == delayed[p]);
        CHECK(part["length"] == sh.xlen("orders", static_cast<int>(p)));
        CHECK(part.contains("oldest_age_ms"));
        if (length[p] > 0) {
            REQUIRE(part["oldest_age_ms"].is_number_integer());
            CHECK(part["oldest_age_ms"].get<std::int64_t>() <=
                  stats["oldest_age_ms"].get<std::int64_t>());
        } else {
            CHECK(part["oldest_age_ms"].is_null());
        }
    }

    auto table = sh.run({"stats", "orders"});
    REQUIRE_EXIT(table, 0);
    CHECK_THAT(table.out, Catch::StartsWith("PARTITION") && Catch::Contains("DELAYED") &&
                              Catch::Contains("OLDEST"));
    CHECK_THAT(table.out, Catch::Matches("[\\s\\S]*\ntotal +7 +2 +0 +[0-9.]+m?s\n"));
}

TEST_CASE("stats_of_an_empty_queue_has_no_oldest_entry", "[mqctl][stats]") {
    Shell sh;
    sh.create_queue({"quiet", "--partitions", "2"});
    json stats = sh.json_of({"stats", "quiet"});
    CHECK(stats["length"] == 0);
    CHECK(stats["delayed"] == 0);
    CHECK(stats.contains("oldest_age_ms"));
    CHECK(stats["oldest_age_ms"].is_null());
    CHECK(stats["partitions"].size() == 2);
    auto table = sh.run({"stats", "quiet"});
    REQUIRE_EXIT(table, 0);
    CHECK_THAT(table.out, Catch::Matches("[\\s\\S]*\ntotal +0 +0 +0 +-\n"));
}

TEST_CASE("stats_shows_consumer_groups_with_pending_counts", "[mqctl][stats]") {
    Shell sh;
    sh.create_queue({"orders"});
    REQUIRE_EXIT(sh.run({"publish", "orders", "one"}), 0);
    REQUIRE_EXIT(sh.run({"publish", "orders", "two"}), 0);
    auto& redis = sh.redis().redis();
    const std::string s = sh.redis().keys().stream(sh.tenant(), "orders", 0);
    redis.command({"XGROUP", "CREATE", s, "billing", "0"});
    redis.command({"XREADGROUP", "GROUP", "billing", "w1", "COUNT", "1", "STREAMS", s, ">"});
    json stats = sh.json_of({"stats", "orders"});
    const json& groups = stats["partitions"][0]["groups"];
    REQUIRE(groups.size() == 1);
    CHECK(groups[0]["name"] == "billing");
    CHECK(groups[0]["pending"] == 1);
    CHECK(groups[0]["consumers"] == 1);
    CHECK(groups[0]["lag"] == 1);
}

// ---------------------------------------------------------------- scheduler

TEST_CASE("scheduler_run_once_moves_due_entries_into_the_stream_exactly_once",
          "[mqctl][scheduler]") {
    Shell sh;
    sh.create_queue({"reminders"});
    std::string file = mqtest::temp_file(R"({"payload":"due soon","delay_ms":1})"
                                         "\n"
                                         R"({"payload":"due in an hour","delay":"1h"})"
                                         "\n");
    json batch = sh.json_of({"publish", "reminders", "--batch", file});
    REQUIRE(batch["published"] == 2);
    json single = sh.json_of({"publish", "reminders", "also soon", "--delay", "1ms"});
    REQUIRE(single["delayed"] == true);
    REQUIRE(sh.zcard("reminders", 0) == 3);
    REQUIRE(sh.xlen("reminders", 0) == 0);

    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    json pass = sh.json_of({"scheduler", "run", "--once"});
    CHECK(pass["moved"].get<std::int64_t>() >= 2);
    CHECK(pass["queues"].get<std::int64_t>() >= 1);

    auto moved = sh.payloads("reminders", 0);
    std::sort(moved.begin(), moved.end());
    CHECK(moved == std::vector<std::string>{"also soon", "due soon"});
    CHECK(sh.zcard("reminders", 0) == 1);
    // The moved entry keeps the id it was published with.
    const bool first_is_single = sh.payloads("reminders", 0)[0] == "also soon";
    CHECK(sh.field("reminders", 0, first_is_single ? 0 : 1, "id") == single["id"]);

    // A second pass finds nothing due: nothing moves twice.
    auto again = sh.run({"scheduler", "run", "--once"});
    REQUIRE_EXIT(again, 0);
    CHECK_THAT(again.out, Catch::StartsWith("moved "));
    CHECK(sh.xlen("reminders", 0) == 2);
    CHECK(sh.zcard("reminders", 0) == 1);
}

TEST_CASE("concurrent_scheduler_passes_move_each_due_entry_exactly_once", "[mqctl][scheduler]") {
    Shell sh;
    sh.create_queue({"reminders", "--partitions", "2"});
    std::string input;
    for (int i = 0; i < 4000; ++i)
        input += "{\"payload\":\"r" + std::to_string(i) + "\",\"delay_ms\":1}\n";
    json batch = sh.json_of({"publish", "reminders", "--batch", mqtest::temp_file(input)});
    REQUIRE(batch["published"] == 4000);
    REQUIRE(sh.zcard("reminders", 0) + sh.zcard("reminders", 1) == 4000);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));

    // Four movers at once, as four cron jobs on different hosts would run. mqtest::mqctl
    // runs one process at a time, so start them from one shell.
    namespace fs = std::filesystem;
    const fs::path mqctl = mqtest::mqctl_path();
    REQUIRE(fs::exists(mqctl));
    std::vector<std::string> outs;
    std::string script;
    for (int i = 0; i < 4; ++i) {
        outs.push_back(mqtest::temp_file(""));
        script += "REDIS_URL='" + mqtest::services().redis_url + "' DATABASE_URL='" +
                  mqtest::services().database_url + "' '" + mqctl.string() + "' --key-prefix '" +
                  sh.redis().prefix() + "' -o json scheduler run --once >'" + outs.back() +
                  "' 2>&1 </dev/null & ";
    }
    script += "wait";
    REQUIRE(std::system(script.c_str()) == 0);

    std::int64_t moved = 0;
    for (const auto& path : outs) {
        std::ifstream in(path);
        std::stringstream text;
        text << in.rdbuf();
        INFO("mover output: " << text.str());
        json pass = json::parse(text.str());
        moved += pass["moved"].get<std::int64_t>();
    }
    CHECK(moved == 4000);
    CHECK(sh.zcard("reminders", 0) + sh.zcard("reminders", 1) == 0);
    std::set<std::string> seen;
    std::size_t total = 0;
    for (int p = 0; p < 2; ++p)
        for (const auto& payload : sh.payloads("reminders", p)) {
            seen.insert(payload);
            ++total;
        }
    CHECK(total == 4000);
    CHECK(seen.size() == 4000);
}

TEST_CASE("scheduler_run_refuses_a_bad_interval", "[mqctl][scheduler][usage]") {
    Shell sh;
    auto r = sh.run({"scheduler", "run", "--once", "--interval", "often"});
    REQUIRE_EXIT(r, 2);
    CHECK_THAT(r.err, Catch::Contains("invalid --interval 'often'"));
    REQUIRE_EXIT(sh.run({"scheduler"}), 2);
}

// ---------------------------------------------------------------- db migrate

TEST_CASE("db_migrate_on_a_migrated_database_is_up_to_date", "[mqctl][db]") {
    Shell sh;  // its TenantScope has migrated the fixture database
    auto first = sh.run({"db", "migrate"});
    REQUIRE_EXIT(first, 0);
    CHECK_THAT(first.out, Catch::Contains("database is up to date (version"));
    auto second = sh.run({"db", "migrate"});
    REQUIRE_EXIT(second, 0);
    CHECK(second.out == first.out);
    json j = sh.json_of({"db", "migrate"});
    CHECK(j["applied"].empty());
    CHECK(j["version"].get<int>() >= 1);
}

TEST_CASE("db_migrate_applies_everything_to_a_fresh_database_then_nothing", "[mqctl][db]") {
    ScratchDatabase scratch;
    auto first = mqtest::mqctl({"-o", "json", "db", "migrate"}, {{"DATABASE_URL", scratch.url()}});
    REQUIRE_EXIT(first, 0);
    json applied = json::parse(first.out);
    REQUIRE_FALSE(applied["applied"].empty());
    CHECK(applied["applied"][0] == "001_initial.sql");

    auto second = mqtest::mqctl({"db", "migrate"}, {{"DATABASE_URL", scratch.url()}});
    REQUIRE_EXIT(second, 0);
    CHECK_THAT(second.out,
               Catch::Contains("up to date") &&
                   Catch::Contains("version " + std::to_string(applied["version"].get<int>())));

    // The schema works: a tenant and a queue can be created in it.
    const std::map<std::string, std::string> env{{"DATABASE_URL", scratch.url()}};
    REQUIRE_EXIT(mqtest::mqctl({"tenant", "create", "acme"}, env), 0);
    REQUIRE_EXIT(mqtest::mqctl({"--tenant", "acme", "queue", "create", "orders"}, env), 0);
}

TEST_CASE("db_migrate_rolls_back_a_failing_migration_and_keeps_the_earlier_ones", "[mqctl][db]") {
    ScratchDatabase scratch;
    std::string dir = mqtest::temp_file("");
    std::filesystem::remove(dir);
    std::filesystem::create_directory(dir);
    struct RemoveDir {
        std::string path;
        ~RemoveDir() {
            std::error_code ec;
            std::filesystem::remove_all(path, ec);
        }
    } cleanup{dir};
    for (const auto& e : std::filesystem::directory_iterator(migrations_dir()))
        std::filesystem::copy_file(e.path(), std::filesystem::path(dir) / e.path().filename());
    std::ofstream(std::filesystem::path(dir) / "900_broken.sql")
        << "CREATE TABLE half_done (id integer);\nSELECT * FROM no_such_table;\n";

    const std::map<std::string, std::string> env{{"DATABASE_URL", scratch.url()}};
    auto r = mqtest::mqctl({"db", "migrate", "--dir", dir}, env);
    REQUIRE_EXIT(r, 1);
    CHECK_THAT(r.err, Catch::Contains("migration 900_broken.sql failed and was rolled back"));

    pqxx::connection cx(scratch.url());
    pqxx::nontransaction nt(cx);
    CHECK(nt.exec("SELECT to_regclass('half_done') IS NULL")[0][0].as<bool>());
    CHECK(nt.exec("SELECT count(*) FROM schema_migrations WHERE version = 900")[0][0].as<int>() ==
          0);
    CHECK(nt.exec("SELECT count(*) FROM schema_migrations WHERE version = 1")[0][0].as<int>() == 1);
}

// ---------------------------------------------------------------- backends down

TEST_CASE("publish_with_redis_down_exits_5_and_says_what_to_do", "[mqctl][backends]") {
    Shell sh;
    sh.create_queue({"orders"});
    const int port = mqtest::dead_port();
    const std::map<std::string, std::string> down{{"REDIS_URL", dead_redis_url(port)}};

    auto r = sh.run({"publish", "orders", "hello"}, down);
    REQUIRE_EXIT(r, 5);
    CHECK_THAT(r.err, Catch::Contains("cannot reach Redis at 127.0.0.1:" + std::to_string(port)) &&
                          Catch::Contains("REDIS_URL"));
    auto j = sh.run({"-o", "json", "publish", "orders", "hello"}, down);
    REQUIRE_EXIT(j, 5);
    CHECK(json::parse(j.err)["error"]["code"] == "MQ_BACKEND_UNAVAILABLE");

    std::string file = mqtest::temp_file("{\"payload\":\"x\"}\n");
    REQUIRE_EXIT(sh.run({"publish", "orders", "--batch", file}, down), 5);
    REQUIRE_EXIT(sh.run({"stats", "orders"}, down), 5);
    REQUIRE_EXIT(sh.run({"queue", "purge", "orders", "--yes"}, down), 5);
    REQUIRE_EXIT(sh.run({"scheduler", "run", "--once"}, down), 5);

    // Bad input is still a usage error, not a backend one.
    REQUIRE_EXIT(sh.run({"publish", "orders", "x", "--delay", "bogus"}, down), 2);

    // Commands that only need PostgreSQL keep working.
    REQUIRE_EXIT(sh.run({"queue", "list"}, down), 0);
    REQUIRE_EXIT(sh.run({"queue", "create", "more"}, down), 0);
    CHECK(sh.redis().all_keys().empty());
}

TEST_CASE("queue_delete_with_redis_down_exits_5_and_keeps_the_queue_for_a_retry",
          "[mqctl][backends]") {
    Shell sh;
    sh.create_queue({"orders"});
    REQUIRE_EXIT(sh.run({"publish", "orders", "keep"}), 0);
    auto r = sh.run({"queue", "delete", "orders", "--yes"},
                    {{"REDIS_URL", dead_redis_url(mqtest::dead_port())}});
    REQUIRE_EXIT(r, 5);
    CHECK_THAT(r.err, Catch::Contains("cannot reach Redis"));
    CHECK(sh.json_of({"queue", "show", "orders"})["status"] == "active");
    CHECK(sh.xlen("orders", 0) == 1);

    REQUIRE_EXIT(sh.run({"queue", "delete", "orders", "--yes"}), 0);
    REQUIRE_EXIT(sh.run({"queue", "show", "orders"}), 3);
    CHECK(sh.redis().all_keys().empty());
}

TEST_CASE("commands_with_postgresql_down_exit_5_and_say_what_to_do", "[mqctl][backends]") {
    Shell sh;
    const int port = mqtest::dead_port();
    const std::map<std::string, std::string> down{{"DATABASE_URL", dead_pg_url(port)}};
    auto r = sh.run({"queue", "list"}, down);
    REQUIRE_EXIT(r, 5);
    CHECK_THAT(r.err,
               Catch::Contains("cannot reach PostgreSQL at 127.0.0.1:" + std::to_string(port)) &&
                   Catch::Contains("DATABASE_URL"));
    CHECK(r.out.empty());

    for (const auto& args : std::vector<std::vector<std::string>>{{"queue", "create", "orders"},
                                                                  {"queue", "show", "orders"},
                                                                  {"db", "migrate"},
                                                                  {"tenant", "list"},
                                                                  {"scheduler", "run", "--once"}}) {
        INFO(args[0] << ' ' << args[1]);
        REQUIRE_EXIT(sh.run(args, down), 5);
    }
    auto j = sh.run({"-o", "json", "queue", "list"}, down);
    REQUIRE_EXIT(j, 5);
    json err = json::parse(j.err)["error"];
    CHECK(err["code"] == "MQ_BACKEND_UNAVAILABLE");
    CHECK_THAT(err["message"].get<std::string>(), Catch::Contains("DATABASE_URL"));
    CHECK(sh.json_of({"queue", "list"}).empty());  // the failed create left nothing behind
}

TEST_CASE("publish_with_postgresql_down_stores_nothing_in_redis", "[mqctl][backends]") {
    Shell sh;
    sh.create_queue({"orders", "--partitions", "2"});
    const std::map<std::string, std::string> down{
        {"DATABASE_URL", dead_pg_url(mqtest::dead_port())}};

    auto single = sh.run({"publish", "orders", "hello", "-i", "once"}, down);
    REQUIRE_EXIT(single, 5);
    CHECK_THAT(single.err, Catch::Contains("PostgreSQL") && Catch::Contains("DATABASE_URL"));
    REQUIRE_EXIT(sh.run({"publish", "orders", "later", "--delay", "1h"}, down), 5);
    std::string file =
        mqtest::temp_file("{\"payload\":\"a\"}\n{\"payload\":\"b\",\"delay\":\"1h\"}\n");
    REQUIRE_EXIT(sh.run({"publish", "orders", "--batch", file}, down), 5);
    REQUIRE_EXIT(sh.run({"publish", "orders", "--batch", "-"}, down, "{\"payload\":\"c\"}\n"), 5);
    CHECK(sh.redis().all_keys().empty());

    // Once PostgreSQL is back the same idempotency key is new: nothing was recorded.
    json ok = sh.json_of({"publish", "orders", "hello", "-i", "once"});
    CHECK(ok["duplicate"] == false);
}

// ---------------------------------------------------------------- usage

TEST_CASE("mqctl_without_a_subcommand_is_a_usage_error", "[mqctl][usage]") {
    auto r = mqtest::mqctl({});
    REQUIRE_EXIT(r, 2);
    CHECK_THAT(r.err, Catch::Contains("subcommand") && Catch::Contains("--help"));
    REQUIRE_EXIT(mqtest::mqctl({"queue"}), 2);
    REQUIRE_EXIT(mqtest::mqctl({"db"}), 2);
    REQUIRE_EXIT(mqtest::mqctl({"frobnicate"}), 2);
}

TEST_CASE("mqctl_with_an_unknown_flag_or_missing_argument_is_a_usage_error", "[mqctl][usage]") {
    Shell sh;
    auto flag = sh.run({"queue", "list", "--colour"});
    REQUIRE_EXIT(flag, 2);
    CHECK_THAT(flag.err, Catch::Contains("--colour"));
    REQUIRE_EXIT(sh.run({"--bogus", "queue", "list"}), 2);
    REQUIRE_EXIT(sh.run({"queue", "create"}), 2);             // no name
    REQUIRE_EXIT(sh.run({"publish"}), 2);                     // no queue
    REQUIRE_EXIT(sh.run({"-o", "xml", "queue", "list"}), 2);  // yaml is a format since 0.2
    REQUIRE_EXIT(sh.run({"queue", "create", "q", "--partitions", "many"}), 2);
    auto tenant = mqtest::mqctl({"--tenant", "no such tenant", "queue", "list"});
    REQUIRE_EXIT(tenant, 2);
    CHECK_THAT(tenant.err, Catch::Contains("invalid tenant"));
    CHECK(sh.json_of({"queue", "list"}).empty());
}

TEST_CASE("mqctl_help_exits_0_and_lists_the_commands", "[mqctl][usage]") {
    auto r = mqtest::mqctl({"--help"});
    REQUIRE_EXIT(r, 0);
    for (const char* word :
         {"queue", "publish", "stats", "scheduler", "db", "tenant", "--tenant", "--output"})
        CHECK_THAT(r.out, Catch::Contains(word));
    auto sub = mqtest::mqctl({"publish", "--help"});
    REQUIRE_EXIT(sub, 0);
    CHECK_THAT(sub.out, Catch::Contains("--batch") && Catch::Contains("--idempotency-key") &&
                            Catch::Contains("--delay") && Catch::Contains("--at"));
    auto version = mqtest::mqctl({"--version"});
    REQUIRE_EXIT(version, 0);
    CHECK_THAT(version.out, Catch::Contains("mqctl"));
}
