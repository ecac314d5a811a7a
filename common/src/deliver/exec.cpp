#include "mq/deliver/exec.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "mq/core/time.hpp"
#include "mq/core/trace_context.hpp"
#include "mq/error.hpp"

extern char** environ;

namespace mq {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kTailBytes = 1024;
constexpr std::size_t kWriteChunk = 64 * 1024;
/// Without a pidfd (kernels before 5.3) the loop looks for the child's exit this often.
constexpr milliseconds kExitPollInterval{10};
/// How often a running command's delivery checks Delivery::abandoned.
constexpr int kAbandonPollMs = 50;

[[noreturn]] void invalid(const std::string& field, const std::string& why) {
    throw ValidationError("exec " + field + ": " + why, {{"field", field}});
}

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

std::string errno_text(int err) {
    char buf[256];
    return strerror_r(err, buf, sizeof buf);  // GNU variant: returns the message
}

/// An owned file descriptor.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;

    int get() const { return fd_; }
    bool open() const { return fd_ >= 0; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

  private:
    int fd_ = -1;
};

struct Pipe {
    Fd read;
    Fd write;
};

/// A close-on-exec pipe whose ends are never 0, 1 or 2 (a worker started with a closed
/// stdin would otherwise get fd 0 back, and the dup2 file actions would trample it).
Pipe make_pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        throw Error(ErrorCode::kInternal, "pipe2 failed: " + errno_text(errno));
    Pipe p{Fd(fds[0]), Fd(fds[1])};
    for (Fd* end : {&p.read, &p.write}) {
        if (end->get() > 2) continue;
        int moved = fcntl(end->get(), F_DUPFD_CLOEXEC, 3);
        if (moved < 0) throw Error(ErrorCode::kInternal, "fcntl failed: " + errno_text(errno));
        *end = Fd(moved);
    }
    return p;
}

void set_nonblocking(const Fd& fd) {
    int flags = fcntl(fd.get(), F_GETFL);
    if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0)
        throw Error(ErrorCode::kInternal, "fcntl O_NONBLOCK failed: " + errno_text(errno));
}

class SpawnActions {
  public:
    SpawnActions() { posix_spawn_file_actions_init(&a_); }
    ~SpawnActions() { posix_spawn_file_actions_destroy(&a_); }
    SpawnActions(const SpawnActions&) = delete;
    SpawnActions& operator=(const SpawnActions&) = delete;
    posix_spawn_file_actions_t* get() { return &a_; }

  private:
    posix_spawn_file_actions_t a_;
};

class SpawnAttr {
  public:
    SpawnAttr() { posix_spawnattr_init(&a_); }
    ~SpawnAttr() { posix_spawnattr_destroy(&a_); }
    SpawnAttr(const SpawnAttr&) = delete;
    SpawnAttr& operator=(const SpawnAttr&) = delete;
    posix_spawnattr_t* get() { return &a_; }

  private:
    posix_spawnattr_t a_;
};

/// Blocks SIGPIPE in this thread while the payload is written, so a command that exits
/// without reading stdin gives EPIPE rather than killing the worker; a SIGPIPE raised
/// meanwhile is consumed before the mask is restored. Process-wide dispositions stay as
/// the worker set them.
class SigpipeBlock {
  public:
    SigpipeBlock() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
    ~SigpipeBlock() {
        sigset_t pending;
        sigpending(&pending);
        if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
            timespec zero{};
            while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SigpipeBlock(const SigpipeBlock&) = delete;
    SigpipeBlock& operator=(const SigpipeBlock&) = delete;

  private:
    sigset_t pipe_;
    sigset_t old_;
    bool was_pending_ = false;
};

/// The last `kTailBytes` bytes written to a stream.
class Tail {
  public:
    void add(const char* data, std::size_t n) {
        if (n >= kTailBytes) {
            text_.assign(data + n - kTailBytes, kTailBytes);
        } else {
            text_.append(data, n);
            if (text_.size() > kTailBytes) text_.erase(0, text_.size() - kTailBytes);
        }
        truncated_ = truncated_ || total_ + n > kTailBytes;
        total_ += n;
    }
    bool empty() const { return total_ == 0; }
    std::string text() const {
        std::string_view t = text_;
        while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' '))
            t.remove_suffix(1);
        return (truncated_ ? "..." : "") + printable(t);
    }

  private:
    std::string text_;
    std::size_t total_ = 0;
    bool truncated_ = false;
};

/// Reads what `fd` has now; closes it at end of file or on error.
void read_available(Fd& fd, Tail& tail) {
    char buf[16 * 1024];
    while (fd.open()) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n > 0) {
            tail.add(buf, static_cast<std::size_t>(n));
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            fd.reset();
        }
    }
}

bool inherited_by_default(std::string_view name) {
    static constexpr std::string_view kNames[] = {"PATH",  "HOME", "USER", "LOGNAME",
                                                  "SHELL", "LANG", "TZ",   "TMPDIR"};
    return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames) ||
           name.substr(0, 3) == "LC_";
}

std::vector<std::string> child_environment(const ExecConfig& config, const Delivery& d) {
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view entry(*e);
        std::size_t eq = entry.find('=');
        if (eq == std::string_view::npos) continue;
        std::string name(entry.substr(0, eq));
        if (name.rfind("MQ_", 0) == 0) continue;  // never a stale delivery variable
        if (config.inherit_env || inherited_by_default(name))
            env[name] = std::string(entry.substr(eq + 1));
    }
    for (const auto& [name, value] : config.env) env[name] = value;
    const Message& m = d.message;
    env["MQ_MESSAGE_ID"] = m.id;
    env["MQ_KEY"] = m.key;
    env["MQ_ATTEMPT"] = std::to_string(d.attempt);
    env["MQ_TENANT"] = d.tenant;
    env["MQ_QUEUE"] = d.queue;
    env["MQ_SUBSCRIPTION"] = d.subscription;
    env["MQ_PARTITION"] = std::to_string(d.partition);
    env["MQ_STREAM_ID"] = d.stream_id;
    env["MQ_CONTENT_TYPE"] = m.content_type;
    env["MQ_PUBLISHED_MS"] = std::to_string(m.published_ms);
    env["MQ_TRACE_ID"] = m.trace_id;
    env["MQ_HEADERS"] = m.headers_json.empty() ? "{}" : m.headers_json;
    // W3C trace context (OpenTelemetry's environment carrier): the message's trace with a
    // new span id for this attempt, never one inherited from the worker's environment.
    env.erase("TRACEPARENT");
    env.erase("TRACESTATE");
    if (auto trace = trace::handoff(m); !trace.traceparent.empty()) {
        env["TRACEPARENT"] = trace.traceparent;
        if (!trace.tracestate.empty()) env["TRACESTATE"] = trace.tracestate;
    }
    std::vector<std::string> out;
    out.reserve(env.size());
    for (auto& [name, value] : env) {
        // A NUL would end the C string early; publisher-supplied values are cut there.
        std::string v = value.substr(0, value.find('\0'));
        out.push_back(name + "=" + v);
    }
    return out;
}

/// Signals the command's process group (or the command itself, if it left the group).
void signal_command(pid_t pid, int sig) {
    if (kill(-pid, sig) != 0) kill(pid, sig);
}

/// True once `pid` has exited; leaves it a zombie so its pid (and group id) stay reserved
/// until we reap it.
bool has_exited(pid_t pid) {
    siginfo_t info{};
    while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
        if (errno != EINTR) return true;  // ECHILD: someone else reaped it
    }
    return info.si_pid == pid;
}

/// A started command; reaped at the latest when this goes out of scope, so neither an
/// early return nor an exception leaves a zombie.
class Child {
  public:
    explicit Child(pid_t pid) : pid_(pid) {}
    ~Child() {
        if (reaped_) return;
        signal_command(pid_, SIGKILL);
        (void)wait();
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    pid_t pid() const { return pid_; }
    /// waitpid; false when the status was lost (ECHILD).
    bool wait() {
        pid_t r;
        while ((r = waitpid(pid_, &status_, 0)) < 0 && errno == EINTR) {
        }
        reaped_ = true;
        return r == pid_;
    }
    int status() const { return status_; }

  private:
    pid_t pid_;
    bool reaped_ = false;
    int status_ = 0;
};

/// A descriptor that polls readable when `pid` exits; -1 where the kernel has none (the
/// caller then polls waitid). Called through syscall(): glibc 2.36's <sys/pidfd.h> lacks
/// extern "C", so its pidfd_open cannot be linked from C++.
int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
    (void)pid;
    return -1;
#endif
}

std::string describe_signal(int sig) {
    const char* abbrev = sigabbrev_np(sig);
    return "signal " + std::to_string(sig) + (abbrev ? std::string(" (SIG") + abbrev + ")" : "");
}

}  // namespace

void validate(const ExecConfig& config) {
    if (config.command.empty() || config.command.front().empty()) invalid("command", "is required");
    for (const auto& arg : config.command)
        if (has_nul(arg)) invalid("command", "arguments must not contain NUL bytes");
    if (config.timeout <= milliseconds(0)) invalid("timeout", "must be positive");
    if (config.kill_grace < milliseconds(0)) invalid("kill_grace", "must not be negative");
    for (const auto& [name, value] : config.env) {
        if (name.empty() || name.find('=') != std::string::npos || has_nul(name))
            invalid("env", "'" + printable(name) + "' is not a valid variable name");
        if (name.rfind("MQ_", 0) == 0)
            invalid("env", "'" + name + "': names starting with MQ_ are set by mq");
        if (has_nul(value)) invalid("env", "value of '" + name + "' must not contain NUL bytes");
    }
    if (has_nul(config.working_dir)) invalid("working_dir", "must not contain NUL bytes");
}

ExecConfig exec_config_from_json(const nlohmann::json& j) {
    if (!j.is_object()) invalid("handler", "must be an object with a \"command\"");
    ExecConfig c;
    bool timeout_seen = false;
    for (const auto& [field, v] : j.items()) {
        if (field == "type") {
            continue;
        } else if (field == "command") {
            if (v.is_string()) {
                const auto& line = v.get_ref<const std::string&>();
                if (line.find_first_not_of(" \t\r\n") == std::string::npos)
                    invalid(field, "must not be empty");
                c.command = {"/bin/sh", "-c", line};
            } else if (v.is_array() && !v.empty()) {
                for (const auto& arg : v) {
                    if (!arg.is_string()) invalid(field, "array items must be strings");
                    c.command.push_back(arg.get<std::string>());
                }
            } else {
                invalid(field, "must be a shell command string or a non-empty argv array");
            }
        } else if (field == "timeout" || field == "timeout_ms") {
            if (timeout_seen) invalid(field, "give timeout or timeout_ms, not both");
            timeout_seen = true;
            if (field == "timeout") {
                if (!v.is_string())
                    invalid(field, "must be a duration string like \"30s\" (or use timeout_ms)");
                try {
                    c.timeout = parse_duration(v.get<std::string>(), field);
                } catch (const ValidationError& e) {
                    invalid(field, e.what());
                }
            } else {
                if (!v.is_number_integer() || v.get<std::int64_t>() <= 0)
                    invalid(field, "must be a positive integer number of milliseconds");
                c.timeout = milliseconds(v.get<std::int64_t>());
            }
        } else if (field == "env") {
            if (!v.is_object()) invalid(field, "must be an object of NAME: value strings");
            for (const auto& [name, value] : v.items()) {
                if (!value.is_string()) invalid(field, "value of '" + name + "' must be a string");
                c.env[name] = value.get<std::string>();
            }
        } else if (field == "working_dir") {
            if (!v.is_string()) invalid(field, "must be a string");
            c.working_dir = v.get<std::string>();
        } else if (field == "inherit_env") {
            if (!v.is_boolean()) invalid(field, "must be true or false");
            c.inherit_env = v.get<bool>();
        } else {
            invalid(field, "unknown field");
        }
    }
    if (!j.contains("command")) invalid("command", "is required");
    validate(c);
    return c;
}

ExecHandler::ExecHandler(ExecConfig config) : config_(std::move(config)) { validate(config_); }

DeliveryResult ExecHandler::deliver(const Delivery& d) {
    const auto started = Clock::now();
    DeliveryResult result;
    auto finish = [&](DeliveryOutcome outcome, std::string error) {
        result.outcome = outcome;
        result.error = std::move(error);
        result.duration = std::chrono::duration_cast<milliseconds>(Clock::now() - started);
        return result;
    };

    Pipe in = make_pipe();
    Pipe out = make_pipe();
    Pipe err = make_pipe();

    SpawnActions actions;
    posix_spawn_file_actions_adddup2(actions.get(), in.read.get(), 0);
    posix_spawn_file_actions_adddup2(actions.get(), out.write.get(), 1);
    posix_spawn_file_actions_adddup2(actions.get(), err.write.get(), 2);
    // Whatever else the worker has open (sockets to Redis, PostgreSQL, other commands'
    // pipes opened without O_CLOEXEC) stays out of the command.
    posix_spawn_file_actions_addclosefrom_np(actions.get(), 3);
    if (!config_.working_dir.empty())
        posix_spawn_file_actions_addchdir_np(actions.get(), config_.working_dir.c_str());

    SpawnAttr attr;
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    // Own process group (a timeout signals the command's children too), no signals blocked
    // and default dispositions (a worker that ignores SIGPIPE or blocks SIGTERM for sigwait
    // must not pass that on).
    posix_spawnattr_setflags(
        attr.get(), POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(attr.get(), 0);
    posix_spawnattr_setsigmask(attr.get(), &none);
    posix_spawnattr_setsigdefault(attr.get(), &all);

    std::vector<char*> argv;
    for (const auto& arg : config_.command) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    std::vector<std::string> env_strings = child_environment(config_, d);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);

    pid_t pid = -1;
    const std::string& program = config_.command.front();
    int rc = program.find('/') != std::string::npos
                 ? posix_spawn(&pid, program.c_str(), actions.get(), attr.get(), argv.data(),
                               envp.data())
                 : posix_spawnp(&pid, program.c_str(), actions.get(), attr.get(), argv.data(),
                                envp.data());
    if (rc != 0) {
        std::string where =
            config_.working_dir.empty() ? "" : " in '" + printable(config_.working_dir) + "'";
        return finish(DeliveryOutcome::kRetry,
                      "cannot start '" + printable(program) + "'" + where + ": " + errno_text(rc));
    }
    in.read.reset();
    out.write.reset();
    err.write.reset();

    Child child(pid);
    Fd pidfd(open_pidfd(pid));
    set_nonblocking(in.write);
    set_nonblocking(out.read);
    set_nonblocking(err.read);
    SigpipeBlock sigpipe_blocked;

    Tail out_tail;
    Tail err_tail;
    const std::string& payload = d.message.payload;
    std::size_t written = 0;
    if (payload.empty()) in.write.reset();

    enum class Phase { kRunning, kTerminating, kKilled };
    Phase phase = Phase::kRunning;
    Clock::time_point next_step = started + config_.timeout;
    bool exited = false;
    bool abandoned = false;
    while (!exited) {
        pollfd fds[4];
        nfds_t n = 0;
        int in_i = -1, out_i = -1, err_i = -1, pid_i = -1;
        if (in.write.open()) {
            in_i = static_cast<int>(n);
            fds[n++] = {in.write.get(), POLLOUT, 0};
        }
        if (out.read.open()) {
            out_i = static_cast<int>(n);
            fds[n++] = {out.read.get(), POLLIN, 0};
        }
        if (err.read.open()) {
            err_i = static_cast<int>(n);
            fds[n++] = {err.read.get(), POLLIN, 0};
        }
        if (pidfd.open()) {
            pid_i = static_cast<int>(n);
            fds[n++] = {pidfd.get(), POLLIN, 0};
        }
        int wait_ms = -1;
        if (phase != Phase::kKilled) {
            auto left = std::chrono::ceil<milliseconds>(next_step - Clock::now());
            wait_ms = static_cast<int>(std::max<milliseconds::rep>(0, left.count()));
        }
        if (!pidfd.open())
            wait_ms = wait_ms < 0 ? static_cast<int>(kExitPollInterval.count())
                                  : std::min(wait_ms, static_cast<int>(kExitPollInterval.count()));
        // A stopping worker may abandon the delivery: look at the flag often enough.
        if (d.abandoned && phase == Phase::kRunning)
            wait_ms = std::min(wait_ms < 0 ? kAbandonPollMs : wait_ms, kAbandonPollMs);
        int ready = poll(fds, n, wait_ms);
        if (ready < 0 && errno != EINTR)
            throw Error(ErrorCode::kInternal, "poll failed: " + errno_text(errno));

        if (ready > 0 && in_i >= 0 && fds[in_i].revents != 0) {
            std::size_t chunk = std::min(kWriteChunk, payload.size() - written);
            ssize_t w = ::write(in.write.get(), payload.data() + written, chunk);
            if (w > 0) written += static_cast<std::size_t>(w);
            // EPIPE: the command closed stdin; it has read what it wanted.
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == payload.size())
                in.write.reset();
        }
        if (ready > 0 && out_i >= 0 && fds[out_i].revents != 0) read_available(out.read, out_tail);
        if (ready > 0 && err_i >= 0 && fds[err_i].revents != 0) read_available(err.read, err_tail);
        if (!pidfd.open() || (ready > 0 && pid_i >= 0 && fds[pid_i].revents != 0))
            exited = has_exited(pid);
        if (exited) break;

        if (phase == Phase::kRunning && d.abandoned && d.abandoned->load()) {
            abandoned = true;
            next_step = Clock::now();  // terminate now, as on a timeout
        }
        if (phase != Phase::kKilled && Clock::now() >= next_step) {
            if (phase == Phase::kRunning) {
                signal_command(pid, SIGTERM);
                phase = Phase::kTerminating;
                next_step = Clock::now() + config_.kill_grace;
            } else {
                signal_command(pid, SIGKILL);
                phase = Phase::kKilled;
            }
        }
    }

    // Output the command wrote just before exiting is still in the pipes. Descendants that
    // keep them open are not waited for.
    read_available(out.read, out_tail);
    read_available(err.read, err_tail);
    // After a timeout, take down whatever of the group survived SIGTERM; the leader is not
    // reaped yet, so the group id cannot have been reused.
    if (phase != Phase::kRunning) signal_command(pid, SIGKILL);
    const bool reaped = child.wait();
    const int status = child.status();

    const Tail& tail = err_tail.empty() ? out_tail : err_tail;
    std::string output = tail.empty() ? "" : ": " + tail.text();
    if (abandoned)
        return finish(DeliveryOutcome::kRetry,
                      "abandoned: the worker stopped while the command ran" + output);
    if (phase != Phase::kRunning) {
        std::string how =
            phase == Phase::kKilled
                ? " (SIGKILL after " + std::to_string(config_.kill_grace.count()) + " ms grace)"
                : "";
        return finish(
            DeliveryOutcome::kRetry,
            "timed out after " + std::to_string(config_.timeout.count()) + " ms" + how + output);
    }
    if (!reaped)
        return finish(DeliveryOutcome::kRetry,
                      "exit status of '" + printable(program) +
                          "' was lost (is SIGCHLD ignored in the worker?)" + output);
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        if (code == 0) return finish(DeliveryOutcome::kAck, "");
        std::string error = "exit status " + std::to_string(code) + output;
        return finish(
            code == kExecExitDeadLetter ? DeliveryOutcome::kDead : DeliveryOutcome::kRetry,
            std::move(error));
    }
    return finish(DeliveryOutcome::kRetry,
                  "killed by " + describe_signal(WTERMSIG(status)) + output);
}

}  // namespace mq
