#pragma once

// A Redis Cluster of 3 masters + 3 replicas and a PostgreSQL of one test alone, from
// `scripts/mq-services start --cluster`: for tests that kill nodes, which must not disturb
// the shared cluster of the `cluster` label. Header-only.

#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "private_services.hpp"

namespace mqtest {

class PrivateCluster {
  public:
    PrivateCluster() : dir_(make_private_dir()) {
        REQUIRE(run_shell("MQ_SERVICES_FAST=1 " + script() + " start " + dir_ +
                          " --cluster >/dev/null 2>&1") == 0);
        std::ifstream in(dir_ + "/env");
        std::string line;
        while (std::getline(in, line)) {
            auto eq = line.find('=');
            if (eq != std::string::npos) env_[line.substr(0, eq)] = line.substr(eq + 1);
        }
        REQUIRE(env_.count("REDIS_URL"));
        REQUIRE(env_.count("DATABASE_URL"));
    }
    ~PrivateCluster() {
        run_shell(script() + " stop " + dir_ + " >/dev/null 2>&1");
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    PrivateCluster(const PrivateCluster&) = delete;
    PrivateCluster& operator=(const PrivateCluster&) = delete;

    std::string url() const { return env_.at("REDIS_URL"); }
    std::string database_url() const { return env_.at("DATABASE_URL"); }
    /// REDIS_URL and DATABASE_URL, for mqctl().
    std::map<std::string, std::string> env() const {
        return {{"REDIS_URL", url()}, {"DATABASE_URL", database_url()}};
    }

    /// SIGKILL (or `sig`: SIGSTOP, SIGCONT) to the node on `port` (its pid file from
    /// mq-services).
    void kill_node(int port, int sig = SIGKILL) {
        std::ifstream in(dir_ + "/cluster/" + std::to_string(port) + "/redis.pid");
        pid_t pid = 0;
        in >> pid;
        REQUIRE(pid > 0);
        REQUIRE(::kill(pid, sig) == 0);
    }
    /// Starts a killed node again with its state (`mq-services restart-node`): it rejoins
    /// as a replica of the master that replaced it.
    void restart_node(int port) {
        REQUIRE(run_shell(script() + " restart-node " + dir_ + " " + std::to_string(port) +
                          " >/dev/null 2>&1") == 0);
    }
    /// One more master, without slots (`mq-services add-node`); returns its port.
    int add_node() {
        const std::string out = dir_ + "/added-port";
        REQUIRE(run_shell(script() + " add-node " + dir_ + " >" + out + " 2>/dev/null") == 0);
        std::ifstream in(out);
        int port = 0;
        in >> port;
        REQUIRE(port > 0);
        return port;
    }
    /// The first line of `redis-cli ROLE` on `port` ("master", "slave"), "" when down.
    static std::string role(int port) {
        std::string out;
        if (FILE* p = popen(("redis-cli -h 127.0.0.1 -p " + std::to_string(port) +
                             " role 2>/dev/null | head -1")
                                .c_str(),
                            "r")) {
            char buf[64];
            while (fgets(buf, sizeof buf, p)) out += buf;
            pclose(p);
        }
        while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
        return out;
    }

  private:
    static std::string script() { return std::string(MQ_SOURCE_DIR) + "/scripts/mq-services"; }
    std::string dir_;
    std::map<std::string, std::string> env_;
};

}  // namespace mqtest
