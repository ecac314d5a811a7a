#pragma once

// Backends of one test alone, for outage tests: a redis-server that can be shut down and
// started again on the same port, and a redis-server + PostgreSQL pair from
// scripts/mq-services whose PostgreSQL can be stopped and started. Header-only.

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "eventually.hpp"
#include "harness.hpp"

namespace mqtest {

inline std::string make_private_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mq-private-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    return tmpl;
}

inline int run_shell(const std::string& command) {
    int rc = std::system(command.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

inline bool redis_answers(int port) {
    return run_shell("redis-cli -h 127.0.0.1 -p " + std::to_string(port) +
                     " ping 2>/dev/null | grep -q PONG") == 0;
}

/// A redis-server of this test alone (no AOF, no RDB), stopped with SHUTDOWN NOSAVE.
class PrivateRedis {
  public:
    PrivateRedis() : port_(dead_port()), dir_(make_private_dir()) { start(); }
    ~PrivateRedis() {
        stop();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    PrivateRedis(const PrivateRedis&) = delete;
    PrivateRedis& operator=(const PrivateRedis&) = delete;
    int port() const { return port_; }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

    void start() {
        auto p = std::to_string(port_);
        REQUIRE(
            run_shell(
                "redis-server --bind 127.0.0.1 --port " + p +
                " --save '' --appendonly no --maxmemory-policy noeviction --daemonize yes --dir " +
                dir_ + " --pidfile " + dir_ + "/redis.pid --logfile " + dir_ + "/redis.log") == 0);
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!redis_answers(port_) && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        REQUIRE(redis_answers(port_));
    }
    void stop() {
        run_shell("redis-cli -h 127.0.0.1 -p " + std::to_string(port_) +
                  " shutdown nosave >/dev/null 2>&1");
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (redis_answers(port_) && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }

  private:
    int port_;
    std::string dir_;
};

/// redis-server + PostgreSQL of this test alone, from scripts/mq-services.
class PrivateServices {
  public:
    PrivateServices() : dir_(make_private_dir()) {
        REQUIRE(run_shell("MQ_SERVICES_FAST=1 " + script() + " start " + dir_ + " >/dev/null") ==
                0);
        std::ifstream in(dir_ + "/env");
        std::string line;
        while (std::getline(in, line)) {
            auto eq = line.find('=');
            if (eq != std::string::npos) env_[line.substr(0, eq)] = line.substr(eq + 1);
        }
        REQUIRE(env_.count("DATABASE_URL"));
    }
    ~PrivateServices() {
        run_shell(script() + " stop " + dir_ + " >/dev/null 2>&1");
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    PrivateServices(const PrivateServices&) = delete;
    PrivateServices& operator=(const PrivateServices&) = delete;
    std::string redis_url() const { return env_.at("REDIS_URL"); }
    std::string database_url() const { return env_.at("DATABASE_URL"); }

    /// pg_ctl stop as the cluster's owner (postgres when we are root), like mq-services does.
    void stop_postgres() {
        std::string pg_ctl =
            "/usr/lib/postgresql/15/bin/pg_ctl stop -D " + dir_ + "/pg -m fast -w -t 30";
        std::string as_owner = getuid() == 0 ? "runuser -u postgres -- " + pg_ctl : pg_ctl;
        REQUIRE(run_shell("cd / && " + as_owner + " >/dev/null 2>&1") == 0);
    }
    void start_postgres() {
        REQUIRE(run_shell("MQ_SERVICES_FAST=1 " + script() + " start " + dir_ + " --redis-port " +
                          env_.at("MQ_REDIS_PORT") + " --pg-port " + env_.at("MQ_PG_PORT") +
                          " >/dev/null 2>&1") == 0);
    }

  private:
    static std::string script() { return std::string(MQ_SOURCE_DIR) + "/scripts/mq-services"; }
    std::string dir_;
    std::map<std::string, std::string> env_;
};

/// Migrates the database `env` names, creates `tenant` and answers a tenant-admin token for
/// it (principal "ops"): the set-up of the API outage tests on private backends.
inline std::string migrated_tenant_admin_token(const std::map<std::string, std::string>& env,
                                               const std::string& tenant) {
    REQUIRE(mqctl({"db", "migrate"}, env).status == 0);
    REQUIRE(mqctl({"tenant", "create", tenant}, env).status == 0);
    auto made = mqctl({"--tenant", tenant, "token", "create", "--role", "tenant-admin",
                       "--principal", "ops", "-o", "json"},
                      env);
    INFO(made.out << made.err);
    REQUIRE(made.status == 0);
    return nlohmann::json::parse(made.out)["token"].get<std::string>();
}

}  // namespace mqtest
