#include "child_process.hpp"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.hpp"

extern char** environ;

namespace mqtest {

Env service_env(const Env& overrides) {
    Env env{{"PATH", "/usr/bin:/bin"},
            {"REDIS_URL", services().redis_url},
            {"DATABASE_URL", services().database_url}};
    // Sanitizer builds: the children read their suppressions from these (catch_main.cpp).
    for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"})
        if (const char* v = std::getenv(name)) env[name] = v;
    for (const auto& [k, v] : overrides) env[k] = v;
    return env;
}

Env inherited_env(const Env& overrides) {
    Env env;
    for (char** e = environ; *e; ++e) {
        std::string kv(*e);
        auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : overrides) env[k] = v;
    return env;
}

ChildProcess::ChildProcess(const std::string& path, const std::vector<std::string>& args,
                           const Env& env, const std::string& log_path) {
    start(path, args, env, log_path);
}

ChildProcess::~ChildProcess() {
    if (running()) kill_now();
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), status_(other.status_), log_path_(std::move(other.log_path_)) {
    other.pid_ = -1;
    other.status_.reset();
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
    if (this != &other) {
        if (running()) kill_now();
        pid_ = other.pid_;
        status_ = other.status_;
        log_path_ = std::move(other.log_path_);
        other.pid_ = -1;
        other.status_.reset();
    }
    return *this;
}

void ChildProcess::start(const std::string& path, const std::vector<std::string>& args,
                         const Env& env, const std::string& log_path) {
    if (running()) kill_now();
    log_path_ = log_path.empty() ? temp_file("") : log_path;
    std::vector<std::string> argv_s{path};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<std::string> env_s;
    for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
    std::vector<char*> argv, envp;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_path_.c_str(), O_WRONLY | O_APPEND | O_CREAT,
                                     0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, path.c_str(), &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    INFO("starting " << path);
    REQUIRE(rc == 0);
    pid_ = pid;
    status_.reset();
}

bool ChildProcess::reap(bool block) {
    if (status_) return true;
    if (pid_ <= 0) return false;
    int status = 0;
    pid_t r;
    do {
        r = waitpid(pid_, &status, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid_)
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    else if (r < 0)
        status_ = -1;  // not our child any more (cannot happen unless reaped elsewhere)
    return status_.has_value();
}

bool ChildProcess::alive() { return pid_ > 0 && !reap(false); }

bool ChildProcess::signal(int sig) { return running() && kill(pid_, sig) == 0; }

std::optional<int> ChildProcess::wait_exit(std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!reap(false)) {
        if (pid_ <= 0 || std::chrono::steady_clock::now() >= end) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status_;
}

int ChildProcess::terminate(std::chrono::milliseconds limit) {
    if (pid_ <= 0) return -1;
    signal(SIGTERM);
    if (auto status = wait_exit(limit)) return *status;
    return kill_now();
}

int ChildProcess::kill_now() {
    if (pid_ <= 0) return -1;
    if (!status_) {
        kill(pid_, SIGKILL);
        reap(true);
    }
    return *status_;
}

std::string ChildProcess::log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::size_t ChildProcess::count_in_log(const std::string& text) const {
    const std::string l = log();
    std::size_t n = 0;
    for (auto at = l.find(text); at != std::string::npos; at = l.find(text, at + 1)) ++n;
    return n;
}

}  // namespace mqtest
