// The migration runner against a real PostgreSQL, each test in a database of its own.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "harness.hpp"
#include "mq/pg/migrations.hpp"

namespace {

// A fresh database for one test, dropped at the end.
struct ScratchDatabase {
    std::string name = "mqmig_" + mqtest::unique_name("db").substr(3);
    ScratchDatabase() { mqtest::exec_admin("CREATE DATABASE \"" + name + "\""); }
    ~ScratchDatabase() {
        try {
            mqtest::exec_admin("DROP DATABASE IF EXISTS \"" + name + "\" WITH (FORCE)");
        } catch (...) {
        }
    }
    std::string url() const { return mqtest::database_url_for(name); }
};

std::int64_t count(mq::pg::Database& db, const std::string& sql) {
    return db.transact([&](pqxx::work& tx) { return tx.exec1(sql)[0].as<std::int64_t>(); });
}

}  // namespace

TEST_CASE("migrate applies the built-in schema once and is a no-op the second time", "[migrate]") {
    ScratchDatabase scratch;
    mq::pg::Database db(scratch.url());
    auto first = mq::pg::migrate(db, mq::pg::embedded_migrations());
    REQUIRE_FALSE(first.applied.empty());
    CHECK(first.applied.front().name == "001_initial.sql");
    CHECK(first.current_version == mq::pg::embedded_migrations().back().version);
    for (const char* table : {"tenants", "api_tokens", "message_topics", "message_subscriptions",
                              "dead_letters", "consumption_records", "message_records"})
        CHECK(count(db, std::string(
                            "SELECT count(*) FROM information_schema.tables WHERE table_name = '") +
                            table + "'") == 1);

    auto second = mq::pg::migrate(db, mq::pg::embedded_migrations());
    CHECK(second.applied.empty());
    CHECK(second.current_version == first.current_version);
    CHECK(count(db, "SELECT count(*) FROM schema_migrations") ==
          static_cast<std::int64_t>(mq::pg::embedded_migrations().size()));
}

TEST_CASE("a failing migration is rolled back and not recorded", "[migrate]") {
    ScratchDatabase scratch;
    mq::pg::Database db(scratch.url());
    std::vector<mq::pg::Migration> ms{
        {1, "001_ok.sql", "CREATE TABLE good (id int)"},
        {2, "002_broken.sql", "CREATE TABLE half (id int); SELECT no_such_function();"}};
    try {
        mq::pg::migrate(db, ms);
        FAIL("a broken migration was applied");
    } catch (const mq::Error& e) {
        CHECK(std::string(e.what()).find("002_broken.sql") != std::string::npos);
        CHECK(std::string(e.what()).find("rolled back") != std::string::npos);
    }
    CHECK(count(db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'good'") ==
          1);
    CHECK(count(db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'half'") ==
          0);
    CHECK(count(db, "SELECT max(version) FROM schema_migrations") == 1);

    // Fixed, it applies, and the lock taken by the failed run is gone.
    ms[1].sql = "CREATE TABLE half (id int)";
    auto report = mq::pg::migrate(db, ms);
    CHECK(report.applied.size() == 1);
    CHECK(report.current_version == 2);
}

TEST_CASE("an applied migration that was edited afterwards is refused", "[migrate]") {
    ScratchDatabase scratch;
    mq::pg::Database db(scratch.url());
    std::vector<mq::pg::Migration> ms{{1, "001_a.sql", "CREATE TABLE a (id int)"}};
    mq::pg::migrate(db, ms);
    ms[0].sql = "CREATE TABLE a (id bigint)";
    try {
        mq::pg::migrate(db, ms);
        FAIL("an edited migration was accepted");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kConflict);
        CHECK(std::string(e.what()).find("changed after it was applied") != std::string::npos);
    }
}

TEST_CASE("two migrators at once apply each migration exactly once", "[migrate]") {
    ScratchDatabase scratch;
    std::atomic<int> applied{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i)
        threads.emplace_back([&] {
            mq::pg::Database db(scratch.url());
            applied +=
                static_cast<int>(mq::pg::migrate(db, mq::pg::embedded_migrations()).applied.size());
        });
    for (auto& t : threads) t.join();
    CHECK(applied == static_cast<int>(mq::pg::embedded_migrations().size()));
}

TEST_CASE("migrations load from a directory in number order and reject bad names", "[migrate]") {
    auto dir = "/tmp/" + mqtest::unique_name("migs");
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/002_second.sql") << "SELECT 2";
    std::ofstream(dir + "/001_first.sql") << "SELECT 1";
    std::ofstream(dir + "/README.md") << "not sql";
    auto ms = mq::pg::load_migrations(dir);
    REQUIRE(ms.size() == 2);
    CHECK(ms[0].version == 1);
    CHECK(ms[1].name == "002_second.sql");
    std::ofstream(dir + "/002_again.sql") << "SELECT 3";
    CHECK_THROWS_AS(mq::pg::load_migrations(dir), mq::ValidationError);
    std::filesystem::remove(dir + "/002_again.sql");
    std::ofstream(dir + "/oops.sql") << "SELECT 4";
    CHECK_THROWS_AS(mq::pg::load_migrations(dir), mq::ValidationError);
    std::filesystem::remove_all(dir);
    CHECK_THROWS_AS(mq::pg::load_migrations(dir), mq::ValidationError);
}

TEST_CASE("the schema files in the source tree are the ones built into mqctl", "[migrate]") {
    auto from_disk = mq::pg::load_migrations(std::string(MQ_SOURCE_DIR) + "/schemas/migrations");
    const auto& built_in = mq::pg::embedded_migrations();
    REQUIRE(from_disk.size() == built_in.size());
    for (std::size_t i = 0; i < built_in.size(); ++i) {
        CHECK(from_disk[i].name == built_in[i].name);
        CHECK(from_disk[i].sql == built_in[i].sql);
    }
}

TEST_CASE("an unreachable PostgreSQL is reported with its address and what to do", "[pg]") {
    int port = mqtest::dead_port();
    try {
        mq::pg::Database db("postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/mq");
        FAIL("connected to a port nobody listens on");
    } catch (const mq::BackendUnavailable& e) {
        std::string what = e.what();
        CHECK(what.find("cannot reach PostgreSQL at 127.0.0.1:" + std::to_string(port)) !=
              std::string::npos);
        CHECK(what.find("DATABASE_URL") != std::string::npos);
    }
}
