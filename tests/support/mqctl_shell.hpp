#pragma once

// An operator's shell for one e2e test: every mqctl command acts for the test's own
// tenant and key prefix, and Redis/PostgreSQL can be inspected under them. Test files
// derive their Shell from it to add what only they need.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "harness.hpp"

/// REQUIRE an mqctl exit status, printing the run's stdout and stderr when it differs.
#define REQUIRE_EXIT(run, code)                                        \
    do {                                                               \
        const mqtest::Run& mqctl_run_ = (run);                         \
        INFO("mqctl exited " << mqctl_run_.status << "\n--- stdout:\n" \
                             << mqctl_run_.out << "--- stderr:\n"      \
                             << mqctl_run_.err);                       \
        REQUIRE(mqctl_run_.status == (code));                          \
    } while (false)

namespace mqtest {

class MqctlShell {
  public:
    Run run(const std::vector<std::string>& args,
            const std::map<std::string, std::string>& env = {}, const std::string& input = {}) {
        std::vector<std::string> argv{"--tenant", tenant(), "--key-prefix", redis_.prefix()};
        argv.insert(argv.end(), args.begin(), args.end());
        return mqctl(argv, env, input);
    }
    /// Runs with `-o json`, requires success and parses standard output.
    nlohmann::json json_of(const std::vector<std::string>& args, const std::string& input = {}) {
        std::vector<std::string> argv{"-o", "json"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = run(argv, {}, input);
        REQUIRE_EXIT(r, 0);
        return nlohmann::json::parse(r.out);
    }
    void ok(const std::vector<std::string>& args) { REQUIRE_EXIT(run(args), 0); }
    void create_queue(const std::vector<std::string>& args) {
        std::vector<std::string> argv{"queue", "create"};
        argv.insert(argv.end(), args.begin(), args.end());
        REQUIRE_EXIT(run(argv), 0);
    }

    const std::string& tenant() const { return tenant_.tenant(); }
    TenantScope& db() { return tenant_; }
    RedisScope& redis() { return redis_; }
    mq::Queue queue(const std::string& name) { return tenant_.catalog().get_queue(tenant(), name); }

    std::string stream(const std::string& queue, int p) const {
        return redis_.keys().stream(tenant(), queue, p);
    }
    std::string delayed(const std::string& queue, int p) const {
        return redis_.keys().delayed(tenant(), queue, p);
    }
    std::int64_t xlen(const std::string& queue, int p) {
        return redis_.redis().command({"XLEN", stream(queue, p)}).as_integer();
    }
    std::int64_t zcard(const std::string& queue, int p) {
        return redis_.redis().command({"ZCARD", delayed(queue, p)}).as_integer();
    }

  protected:
    TenantScope tenant_;
    RedisScope redis_;
};

}  // namespace mqtest
