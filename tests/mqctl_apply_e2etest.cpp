// mqctl apply -f FILE.yaml: a subscriptions file kept in git, applied as an operator would
// against the fixture's redis-server and PostgreSQL. Each test has its own tenant and key
// prefix.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "harness.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mqctl_shell.hpp"

namespace {

using nlohmann::json;

// An operator's shell for one test: every command acts for the test's tenant and key
// prefix.
class Shell : public mqtest::MqctlShell {
  public:
    /// `apply -f file extra...`, requiring exit `code`.
    mqtest::Run apply(const std::string& file, const std::vector<std::string>& extra = {},
                      int code = 0) {
        std::vector<std::string> args{"apply", "-f", file};
        args.insert(args.end(), extra.begin(), extra.end());
        auto r = run(args);
        REQUIRE_EXIT(r, code);
        return r;
    }

    std::optional<mq::Subscription> sub(const std::string& queue, const std::string& name) {
        return mq::SubscriptionCatalog(tenant_.db()).find(tenant(), queue, name);
    }
    /// Names of the consumer groups on one partition (XINFO GROUPS).
    std::set<std::string> groups(const std::string& queue, int p) {
        return mqtest::group_names(redis_.redis(), redis_.keys().stream(tenant(), queue, p));
    }
};

// Two subscriptions of scope team-a on `orders`; line numbers matter to the tests that
// break a field (max_attempts is on line 6, url on line 9).
std::string team_a_file(int max_attempts = 5,
                        const std::string& url = "https://billing.example/hooks",
                        bool with_audit = true) {
    std::string y =
        "scope: team-a\n"
        "subscriptions:\n"
        "  - queue: orders\n"
        "    name: billing\n"
        "    retry:\n"
        "      max_attempts: " +
        std::to_string(max_attempts) +
        "\n"
        "    handler:\n"
        "      type: webhook\n"
        "      url: " +
        url + "\n";
    if (with_audit)
        y += "  - queue: orders\n"
             "    name: audit\n"
             "    handler:\n"
             "      type: pull\n";
    return y;
}

// Writes `content` to the same path each time, as an edit of a file in git would.
void rewrite(const std::string& path, const std::string& content) {
    std::ofstream(path, std::ios::trunc) << content;
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("apply_creates_subscriptions_with_their_groups_and_a_second_apply_reports_no_changes",
          "[mqctl][apply]") {
    Shell sh;
    sh.ok({"queue", "create", "orders", "--partitions", "2"});
    const std::string file = mqtest::temp_file(team_a_file());

    auto r = sh.apply(file);
    CHECK(has(r.out, "+ create orders/billing"));
    CHECK(has(r.out, "+ create orders/audit"));
    CHECK(has(r.out, "2 created, 0 updated, 0 deleted, 0 unchanged"));
    auto billing = sh.sub("orders", "billing");
    REQUIRE(billing);
    CHECK(billing->managed_by == "apply:team-a");
    CHECK(billing->type == "webhook");
    CHECK(billing->handler["url"] == "https://billing.example/hooks");
    CHECK(sh.sub("orders", "audit")->type == "pull");
    for (int p = 0; p < 2; ++p)
        CHECK(sh.groups("orders", p) == std::set<std::string>{"audit", "billing"});

    r = sh.apply(file);
    CHECK(has(r.out, "= unchanged orders/billing"));
    CHECK(has(r.out, "no changes"));
}

TEST_CASE("apply_shows_changed_settings_as_an_update_and_leaves_a_paused_status_alone",
          "[mqctl][apply]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    const std::string file = mqtest::temp_file(team_a_file());
    sh.apply(file);
    sh.ok({"sub", "pause", "orders", "audit"});

    rewrite(file, team_a_file(7, "https://billing.example/v2"));
    auto r = sh.apply(file);
    CHECK(has(r.out, "~ update orders/billing: "));
    CHECK(has(r.out, "handler.url https://billing.example/hooks -> https://billing.example/v2"));
    CHECK(has(r.out, "max_attempts 5 -> 7"));
    CHECK(has(r.out, "= unchanged orders/audit"));
    CHECK(has(r.out, "0 created, 1 updated, 0 deleted, 1 unchanged"));
    CHECK(sh.sub("orders", "billing")->retry.max_attempts == 7);
    CHECK(sh.sub("orders", "audit")->status == "paused");  // status is the operators'

    CHECK(has(sh.apply(file).out, "no changes"));
}

TEST_CASE("apply_dry_run_prints_the_plan_and_changes_nothing", "[mqctl][apply]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    const std::string file = mqtest::temp_file(team_a_file());

    auto r = sh.apply(file, {"--dry-run"});
    CHECK(has(r.out, "+ create orders/billing"));
    CHECK(has(r.out, "nothing applied"));
    CHECK_FALSE(sh.sub("orders", "billing"));
    CHECK(sh.groups("orders", 0).empty());

    sh.apply(file);
    rewrite(file, team_a_file(9));
    r = sh.apply(file, {"--dry-run"});
    CHECK(has(r.out, "max_attempts 5 -> 9"));
    CHECK(sh.sub("orders", "billing")->retry.max_attempts == 5);
}

TEST_CASE("apply_prune_deletes_only_subscriptions_of_the_files_scope", "[mqctl][apply]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    const std::string file = mqtest::temp_file(team_a_file());
    sh.apply(file);
    sh.apply(
        mqtest::temp_file("scope: team-b\nsubscriptions:\n"
                          "  - {queue: orders, name: reports, handler: {type: pull}}\n"));
    sh.ok({"sub", "create", "orders", "manual", "--url", "https://hand.example/made"});

    rewrite(file, team_a_file(5, "https://billing.example/hooks", /*with_audit=*/false));
    auto r = sh.apply(file);  // without --prune nothing is deleted
    CHECK(has(r.out, "no changes"));
    CHECK(sh.sub("orders", "audit"));

    r = sh.apply(file, {"--prune"});
    CHECK(has(r.out, "- delete orders/audit"));
    CHECK(has(r.out, "0 created, 0 updated, 1 deleted, 1 unchanged"));
    CHECK_FALSE(sh.sub("orders", "audit"));
    CHECK(sh.groups("orders", 0) == std::set<std::string>{"billing", "manual", "reports"});
    CHECK(sh.sub("orders", "billing"));
    CHECK(sh.sub("orders", "reports"));
    CHECK(sh.sub("orders", "manual"));
}

TEST_CASE("apply_with_an_unknown_queue_exits_3_and_creates_nothing", "[mqctl][apply]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    const std::string file = mqtest::temp_file(team_a_file() +
                                               "  - queue: no-such-queue\n"
                                               "    name: ghost\n"
                                               "    handler: {type: pull}\n");
    auto r = sh.apply(file, {}, 3);
    CHECK(has(r.err, "no-such-queue"));
    CHECK(has(r.err, file + ":14"));
    CHECK_FALSE(sh.sub("orders", "billing"));
    CHECK(sh.groups("orders", 0).empty());
}

TEST_CASE("apply_schema_error_exits_2_naming_file_line_and_field", "[mqctl][apply]") {
    Shell sh;
    const std::string file = mqtest::temp_file(team_a_file(0));
    auto r = sh.apply(file, {}, 2);
    CHECK(has(r.err, file + ":6:"));
    CHECK(has(r.err, "/subscriptions/0/retry/max_attempts"));

    const std::string unknown = mqtest::temp_file(
        "subscriptions:\n"
        "  - queue: orders\n"
        "    name: billing\n"
        "    colour: blue\n"
        "    handler: {type: pull}\n");
    r = sh.apply(unknown, {}, 2);
    CHECK(has(r.err, unknown + ":"));
    CHECK(has(r.err, "colour"));
}

TEST_CASE("apply_handler_error_exits_2_naming_file_line", "[mqctl][apply]") {
    Shell sh;
    const std::string file = mqtest::temp_file(team_a_file(5, "ftp://billing.example/hooks"));
    auto r = sh.apply(file, {}, 2);
    CHECK(has(r.err, file + ":9:"));
    CHECK(has(r.err, "url"));

    // Passes the schema; the webhook parser refuses it.
    const std::string both = mqtest::temp_file(
        "subscriptions:\n"
        "  - queue: orders\n"
        "    name: billing\n"
        "    handler:\n"
        "      type: webhook\n"
        "      url: https://billing.example/hooks\n"
        "      timeout: 5s\n"
        "      timeout_ms: 5000\n");
    r = sh.apply(both, {}, 2);
    CHECK(has(r.err, both + ":8:"));
    CHECK(has(r.err, "timeout_ms"));
}

TEST_CASE("apply_refuses_a_subscription_owned_by_someone_else_unless_adopt", "[mqctl][apply]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    sh.ok({"sub", "create", "orders", "billing", "--url", "https://billing.example/hooks"});
    const std::string file = mqtest::temp_file(team_a_file());

    auto r = sh.apply(file, {}, 4);
    CHECK(has(r.err, "orders/billing"));
    CHECK(has(r.err, "owned by"));
    CHECK(has(r.err, "--adopt"));
    CHECK_FALSE(sh.sub("orders", "audit"));  // nothing applied
    CHECK(sh.sub("orders", "billing")->managed_by.empty());

    r = sh.apply(file, {"--adopt"});
    CHECK(has(r.out, "~ update orders/billing: "));
    CHECK(has(r.out, "managed_by (none) -> apply:team-a"));
    CHECK(sh.sub("orders", "billing")->managed_by == "apply:team-a");
    CHECK(has(sh.apply(file).out, "no changes"));
}

TEST_CASE("apply_json_output_is_a_parseable_plan", "[mqctl][apply]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    const std::string file = mqtest::temp_file(team_a_file());
    sh.apply(file);
    rewrite(file, team_a_file(6));

    auto r = sh.apply(file, {"-o", "json", "--dry-run"});
    json j = json::parse(r.out);
    CHECK(j["scope"] == "team-a");
    CHECK(j["tenant"] == sh.tenant());
    CHECK(j["dry_run"] == true);
    CHECK(j["applied"] == false);
    REQUIRE(j["plan"].size() == 2);
    CHECK(j["plan"][0]["action"] == "update");
    CHECK(j["plan"][0]["changes"][0] == json{{"field", "max_attempts"}, {"from", 5}, {"to", 6}});
    CHECK(j["plan"][1]["action"] == "unchanged");
    CHECK(j["summary"] == json{{"create", 0}, {"update", 1}, {"delete", 0}, {"unchanged", 1}});
}

TEST_CASE("apply_example_subscriptions_file_plans_and_applies_cleanly",
          "[mqctl][apply][examples]") {
    Shell sh;
    sh.ok({"queue", "create", "orders", "--partitions", "2"});
    const std::string example = std::string(MQ_SOURCE_DIR) + "/examples/subscriptions.yaml";

    auto r = sh.apply(example, {"--dry-run"});
    CHECK(has(r.out, "+ create orders/billing (webhook)"));
    CHECK(has(r.out, "+ create orders/fulfilment (exec)"));
    CHECK(has(r.out, "+ create orders/analytics (pull)"));
    CHECK_FALSE(sh.sub("orders", "billing"));

    sh.apply(example);
    CHECK(has(sh.apply(example).out, "no changes"));
}

TEST_CASE("apply_with_a_backend_down_exits_5_and_changes_nothing", "[mqctl][apply]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    const std::string file = mqtest::temp_file(team_a_file());
    const std::string dead = "127.0.0.1:" + std::to_string(mqtest::dead_port());

    REQUIRE_EXIT(sh.run({"--redis-url", "redis://" + dead, "apply", "-f", file}), 5);
    CHECK_FALSE(sh.sub("orders", "billing"));
    REQUIRE_EXIT(sh.run({"--database-url", "postgresql://mq@" + dead + "/mq", "apply", "-f", file}),
                 5);
    // A dry run needs only PostgreSQL.
    REQUIRE_EXIT(sh.run({"--redis-url", "redis://" + dead, "apply", "-f", file, "--dry-run"}), 0);
}

TEST_CASE("apply_scope_defaults_to_the_files_base_name", "[mqctl][apply]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    const std::string file = mqtest::temp_file(
        "subscriptions:\n  - {queue: orders, name: audit, handler: {type: pull}}\n");
    const std::string stem = file.substr(file.rfind('/') + 1);
    json j = json::parse(sh.apply(file, {"-o", "json"}).out);
    CHECK(j["scope"] == stem);
    CHECK(j["applied"] == true);
    CHECK(sh.sub("orders", "audit")->managed_by == "apply:" + stem);
}

TEST_CASE("apply_accepts_a_log_subscription_and_refuses_fields_a_log_handler_lacks",
          "[mqctl][apply]") {
    Shell sh;
    sh.ok({"queue", "create", "orders"});
    const std::string file = mqtest::temp_file(
        "scope: audit\n"
        "subscriptions:\n"
        "  - queue: orders\n"
        "    name: trail\n"
        "    handler:\n"
        "      type: log\n"
        "      path: /var/log/mq/orders.jsonl\n");
    auto r = sh.apply(file);
    CHECK(has(r.out, "+ create orders/trail (log)"));
    auto trail = sh.sub("orders", "trail");
    REQUIRE(trail);
    CHECK(trail->type == "log");
    CHECK(trail->handler["path"] == "/var/log/mq/orders.jsonl");
    CHECK(sh.groups("orders", 0) == std::set<std::string>{"trail"});
    CHECK(has(sh.apply(file).out, "no changes"));

    // A log handler has only a path: a webhook's url is an error at its line.
    const std::string bad = mqtest::temp_file(
        "subscriptions:\n"
        "  - queue: orders\n"
        "    name: trail2\n"
        "    handler:\n"
        "      type: log\n"
        "      url: https://example.com/hook\n");
    r = sh.apply(bad, {}, 2);
    CHECK(has(r.err, bad + ":"));
    CHECK_FALSE(sh.sub("orders", "trail2"));
}
