#pragma once

// A child process of a test (mq-worker, mqctl relay, a shell): started with a given
// environment, its stdout and stderr in a log file, signalled, waited for with a limit,
// and SIGKILLed and reaped when the object goes away, so no test leaves a process or a
// zombie behind.

#include <sys/types.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mqtest {

/// Environment variables by name.
using Env = std::map<std::string, std::string>;

/// PATH=/usr/bin:/bin and the fixture's REDIS_URL and DATABASE_URL, then `overrides`.
Env service_env(const Env& overrides = {});
/// This process's own environment, then `overrides`.
Env inherited_env(const Env& overrides = {});

class ChildProcess {
  public:
    ChildProcess() = default;
    /// start(path, args, env, log_path).
    ChildProcess(const std::string& path, const std::vector<std::string>& args, const Env& env,
                 const std::string& log_path = "");
    ~ChildProcess();  ///< SIGKILL and reap when still running
    ChildProcess(ChildProcess&& other) noexcept;
    ChildProcess& operator=(ChildProcess&& other) noexcept;
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    /// Starts `path` with `args` after argv[0] and exactly `env`; stdin is /dev/null, stdout
    /// and stderr are appended to `log_path` (empty: a new temporary file). REQUIREs that it
    /// started; a process still running from an earlier start is killed first.
    void start(const std::string& path, const std::vector<std::string>& args, const Env& env,
               const std::string& log_path = "");

    /// The process id (-1 before start); stays the same after it exited.
    pid_t pid() const { return pid_; }
    /// Not exited yet (an exited process is reaped here).
    bool alive();
    /// Sends `sig`; false when the process has already been reaped (or was never started).
    bool signal(int sig);
    /// The exit code (128 + signal number when a signal ended it) once it exits within
    /// `limit`, nullopt while it still runs after it. Answers the same again afterwards.
    std::optional<int> wait_exit(std::chrono::milliseconds limit);
    /// SIGTERM, then SIGKILL when it has not exited within `limit`; the exit status
    /// (137 when it had to be killed).
    int terminate(std::chrono::milliseconds limit = std::chrono::seconds(20));
    /// SIGKILL now and reap; the exit status.
    int kill_now();

    /// Everything the process wrote to stdout and stderr so far.
    std::string log() const;
    const std::string& log_path() const { return log_path_; }
    /// How many times `text` occurs in log().
    std::size_t count_in_log(const std::string& text) const;

  private:
    bool running() const { return pid_ > 0 && !status_; }
    bool reap(bool block);  ///< true when it has exited (status_ set)

    pid_t pid_ = -1;
    std::optional<int> status_;
    std::string log_path_;
};

}  // namespace mqtest

// wait_exit() results in CHECK/REQUIRE expressions print as a number or "still running".
namespace Catch {
template <>
struct StringMaker<std::optional<int>> {
    static std::string convert(const std::optional<int>& v) {
        return v ? std::to_string(*v) : std::string("still running");
    }
};
}  // namespace Catch
