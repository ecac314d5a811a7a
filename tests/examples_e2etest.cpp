// The files under examples/ work as the README says, so they cannot rot.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "harness.hpp"
#include "mq/config/config.hpp"

TEST_CASE("examples/orders.jsonl publishes every line, delayed ones into the delayed set",
          "[examples]") {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    const std::vector<std::string> base{"--tenant", ts.tenant(), "--key-prefix", rs.prefix()};
    auto with = [&](std::vector<std::string> args) {
        args.insert(args.begin(), base.begin(), base.end());
        return args;
    };
    REQUIRE(mqtest::mqctl(with({"queue", "create", "orders", "--partitions", "2"})).status == 0);
    auto run =
        mqtest::mqctl(with({"publish", "orders", "--batch",
                            std::string(MQ_SOURCE_DIR) + "/examples/orders.jsonl", "-o", "json"}));
    INFO(run.err);
    REQUIRE(run.status == 0);
    auto report = nlohmann::json::parse(run.out);
    CHECK(report["published"] == 5);
    CHECK(report["lines"] == 5);

    auto stats = mqtest::mqctl(with({"stats", "orders", "-o", "json"}));
    REQUIRE(stats.status == 0);
    auto s = nlohmann::json::parse(stats.out);
    CHECK(s["length"] == 3);
    CHECK(s["delayed"] == 2);
}

TEST_CASE("examples/mq.yaml is a valid configuration file", "[examples]") {
    auto c = mq::load_config(std::string(MQ_SOURCE_DIR) + "/examples/mq.yaml", {});
    CHECK(c.redis_url == "redis://127.0.0.1:6390/0");
    CHECK(c.tenant == "default");
    CHECK(c.default_ttl == std::chrono::seconds(604800));
}

TEST_CASE("examples/worker.yaml passes mq-worker --check", "[examples]") {
    std::string cmd = std::string(MQ_WORKER_PATH) + " --check --config " + MQ_SOURCE_DIR +
                      "/examples/worker.yaml > /dev/null 2>&1";
    CHECK(std::system(cmd.c_str()) == 0);
}

TEST_CASE("examples/systemd/mq-worker.service verifies where systemd is present", "[examples]") {
    if (std::system("command -v systemd-analyze > /dev/null 2>&1") != 0) {
        // No systemd here (containers, CI): check the unit's essentials instead.
        std::ifstream in(std::string(MQ_SOURCE_DIR) + "/examples/systemd/mq-worker.service");
        std::stringstream ss;
        ss << in.rdbuf();
        CHECK(ss.str().find("ExecStart=/usr/local/bin/mq-worker --config") != std::string::npos);
        CHECK(ss.str().find("KillSignal=SIGTERM") != std::string::npos);
        return;
    }
    std::string cmd = "systemd-analyze verify --man=no " + std::string(MQ_SOURCE_DIR) +
                      "/examples/systemd/mq-worker.service 2>&1 | grep -v 'mq-worker: Command' | "
                      "grep -qi 'error'";
    CHECK(std::system(cmd.c_str()) != 0);
}
