// `mqctl schedule` as an operator uses it: create, list, show (next fire times), update,
// pause, resume, delete; exit codes for bad input (2, even with backends down), missing
// (3), conflicts (4) and backends down (5); another tenant's schedule is not found.
#include <catch2/catch.hpp>

#include "mqctl_shell.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

struct Shell : MqctlShell {
    Shell() { create_queue({"jobs"}); }
    Run create(std::vector<std::string> extra) {
        std::vector<std::string> argv{"schedule", "create"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return run(argv);
    }
};

std::map<std::string, std::string> postgres_down() {
    return {{"DATABASE_URL", "postgresql://mq@127.0.0.1:" + std::to_string(dead_port()) + "/mq"}};
}

}  // namespace

TEST_CASE("mqctl_schedule_lifecycle_create_list_show_update_pause_resume_delete",
          "[e2e][schedule]") {
    Shell sh;
    auto created = sh.create({"nightly", "--queue", "jobs", "--cron", "0 9 * * mon-fri", "--tz",
                              "Europe/Berlin", "--payload", "{\"report\":1}", "--content-type",
                              "application/json", "-H", "origin=cron", "--misfire", "skip"});
    REQUIRE_EXIT(created, 0);
    CHECK_THAT(created.out, Catch::Contains("created schedule nightly"));
    CHECK_THAT(created.out, Catch::Contains("next fire times"));
    CHECK_THAT(created.out, Catch::Contains("09:00:00 CE"));  // CET or CEST, local time

    auto shown = sh.json_of({"schedule", "show", "nightly", "--next", "3"});
    CHECK(shown["cron"] == "0 9 * * mon-fri");
    CHECK(shown["tz"] == "Europe/Berlin");
    CHECK(shown["misfire"] == "skip");
    CHECK(shown["headers"] == json{{"origin", "cron"}});
    CHECK(shown["payload"] == json{{"report", 1}});
    REQUIRE(shown["next_fires"].size() == 3);
    CHECK(shown["next_tick_at"] == shown["next_fires"][0]);

    auto list = sh.run({"schedule", "list"});
    REQUIRE_EXIT(list, 0);
    CHECK_THAT(list.out, Catch::Contains("nightly") && Catch::Contains("Europe/Berlin") &&
                             Catch::Contains("active"));
    CHECK(sh.json_of({"schedule", "list"}).size() == 1);

    auto updated =
        sh.json_of({"schedule", "update", "nightly", "--cron", "@hourly", "--no-headers"});
    CHECK(updated["cron"] == "@hourly");
    CHECK(updated["headers"].empty());
    CHECK(updated["misfire"] == "skip");

    REQUIRE_EXIT(sh.run({"schedule", "pause", "nightly"}), 0);
    CHECK(sh.json_of({"schedule", "show", "nightly"})["status"] == "paused");
    CHECK(sh.json_of({"schedule", "show", "nightly"})["next_fires"].empty());
    auto resumed = sh.run({"schedule", "resume", "nightly"});
    REQUIRE_EXIT(resumed, 0);
    CHECK_THAT(resumed.out, Catch::Contains("next tick"));

    REQUIRE_EXIT(sh.run({"schedule", "delete", "nightly", "--yes"}), 0);
    auto gone = sh.run({"schedule", "show", "nightly"});
    REQUIRE_EXIT(gone, 3);
    CHECK_THAT(gone.err, Catch::Contains("schedule 'nightly' not found"));
    REQUIRE_EXIT(sh.run({"schedule", "delete", "nightly", "--yes"}), 3);
}

TEST_CASE("mqctl_schedule_refuses_bad_input_with_exit_2_even_with_backends_down",
          "[e2e][schedule]") {
    Shell sh;
    auto bad_cron =
        sh.create({"s1", "--queue", "jobs", "--cron", "*/5 * * 13 *", "--payload", "x"});
    REQUIRE_EXIT(bad_cron, 2);
    CHECK_THAT(bad_cron.err, Catch::Contains("month field at position 9"));
    // Validated before connecting: still 2 with PostgreSQL unreachable.
    std::vector<std::string> argv{"schedule", "create",     "s1",        "--queue", "jobs",
                                  "--cron",   "61 * * * *", "--payload", "x"};
    REQUIRE_EXIT(sh.run(argv, postgres_down()), 2);

    auto tz = sh.create(
        {"s1", "--queue", "jobs", "--cron", "@daily", "--tz", "Moon/Base", "--payload", "x"});
    REQUIRE_EXIT(tz, 2);
    CHECK_THAT(tz.err, Catch::Contains("unknown time zone 'Moon/Base'"));
    REQUIRE_EXIT(sh.create({"bad name", "--queue", "jobs", "--cron", "@daily", "--payload", "x"}),
                 2);
    REQUIRE_EXIT(sh.create({"s1", "--queue", "jobs", "--cron", "@daily"}), 2);  // no payload
    REQUIRE_EXIT(sh.create({"s1", "--queue", "jobs", "--cron", "@daily", "--payload", "x",
                            "--misfire", "never"}),
                 2);
    REQUIRE_EXIT(
        sh.create({"s1", "--queue", "jobs", "--cron", "@daily", "--payload", "x", "-H", "novalue"}),
        2);
    REQUIRE_EXIT(sh.create({"s1", "--queue", "jobs", "--cron", "@daily", "--payload", "x",
                            "--payload-file", "/etc/hostname"}),
                 2);
    auto huge = sh.create({"s1", "--queue", "jobs", "--cron", "@daily", "--payload-file",
                           temp_file(std::string(1048577, 'x'))});
    REQUIRE_EXIT(huge, 2);
    CHECK_THAT(huge.err, Catch::Contains("1048576"));
    REQUIRE_EXIT(sh.run({"schedule", "show", "../etc"}), 2);

    auto no_queue = sh.create({"s1", "--queue", "nope", "--cron", "@daily", "--payload", "x"});
    REQUIRE_EXIT(no_queue, 3);
    CHECK_THAT(no_queue.err, Catch::Contains("queue 'nope' not found"));
    // None of it was stored; valid input with PostgreSQL down is exit 5.
    CHECK(sh.json_of({"schedule", "list"}).empty());
    std::vector<std::string> good{"schedule", "create", "s1",        "--queue", "jobs",
                                  "--cron",   "@daily", "--payload", "x"};
    REQUIRE_EXIT(sh.run(good, postgres_down()), 5);
    REQUIRE_EXIT(sh.run(good), 0);
    REQUIRE_EXIT(sh.run(good), 4);
}

TEST_CASE("mqctl_schedule_of_another_tenant_is_not_found", "[e2e][schedule]") {
    Shell a;
    REQUIRE_EXIT(a.create({"nightly", "--queue", "jobs", "--cron", "@daily", "--payload", "x"}), 0);
    TenantScope b;
    auto as_b = [&](std::vector<std::string> args) {
        std::vector<std::string> argv{"--tenant", b.tenant()};
        argv.insert(argv.end(), args.begin(), args.end());
        return mqctl(argv);
    };
    REQUIRE_EXIT(as_b({"schedule", "show", "nightly"}), 3);
    REQUIRE_EXIT(as_b({"schedule", "pause", "nightly"}), 3);
    REQUIRE_EXIT(as_b({"schedule", "delete", "nightly", "--yes"}), 3);
    REQUIRE_EXIT(as_b({"schedule", "update", "nightly", "--cron", "@hourly"}), 3);
    CHECK(a.json_of({"schedule", "show", "nightly"})["cron"] == "@daily");
}
