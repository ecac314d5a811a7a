#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mq/deliver/handler.hpp"

namespace mq {

/// The exit status with which an exec handler says "this message can never succeed:
/// dead-letter it now". Every other non-zero status retries (75, EX_TEMPFAIL, included).
inline constexpr int kExecExitDeadLetter = 100;

/// Which command an exec handler runs per message, and how.
struct ExecConfig {
    /// argv; command[0] is looked up in PATH when it has no '/'. No shell is involved;
    /// exec_config_from_json turns a string command into {"/bin/sh", "-c", string}.
    std::vector<std::string> command;
    /// Wall time per message, then SIGTERM to the command's process group; must be positive.
    std::chrono::milliseconds timeout{30000};
    /// After SIGTERM, how long the command may take to exit before SIGKILL.
    std::chrono::milliseconds kill_grace{2000};
    /// Extra environment; names starting with MQ_ are reserved for the delivery's own.
    std::map<std::string, std::string> env;
    /// Directory the command starts in; empty: the worker's.
    std::string working_dir;
    /// false: the command gets only PATH, HOME, USER, LOGNAME, SHELL, LANG, LC_*, TZ and
    /// TMPDIR from the worker (whose environment may hold DATABASE_URL and tokens);
    /// true: the worker's whole environment.
    bool inherit_env = false;
};

/// Reads a handler object: {"command": "script.sh arg" | ["prog", "arg"], "timeout": "30s" |
/// "timeout_ms": 30000, "env": {"NAME": "value"}, "working_dir": "/srv/x",
/// "inherit_env": false}. A string command runs through /bin/sh -c; an array runs as
/// argv without a shell. "type" is accepted and ignored; any other field is an error.
/// Throws ValidationError with details {"field": name} on bad input.
ExecConfig exec_config_from_json(const nlohmann::json& j);

/// Checks a config built in code the same way exec_config_from_json does.
void validate(const ExecConfig& config);

/// Runs a command per message: the payload on stdin, the delivery in the environment.
///
/// Environment (besides the variables described at ExecConfig::inherit_env and `env`):
/// MQ_MESSAGE_ID, MQ_KEY, MQ_ATTEMPT, MQ_TENANT, MQ_QUEUE, MQ_SUBSCRIPTION, MQ_PARTITION,
/// MQ_STREAM_ID, MQ_CONTENT_TYPE, MQ_PUBLISHED_MS, MQ_TRACE_ID and MQ_HEADERS (the message
/// headers as a JSON object, "{}" when none). Empty values are set as empty.
///
/// Outcome: exit 0 acks; exit kExecExitDeadLetter (100) dead-letters; any other exit, a
/// death by signal, a command that cannot be started or one that outlives `timeout`
/// retries. On failure the error holds the last 1 KiB of stderr (or of stdout when stderr
/// is empty). A command that stops reading stdin early is fine: the rest of the payload is
/// dropped. Stdin, stdout and stderr are pipes; no other descriptor of the worker is
/// inherited. The command runs in its own process group so a timeout reaches its children
/// too; it is always reaped before deliver() returns (the worker must not ignore SIGCHLD
/// or reap children with waitpid(-1)).
///
/// Thread-safe: deliveries on several threads run several commands at once.
class ExecHandler : public Handler {
  public:
    /// Validates `config` (ValidationError).
    explicit ExecHandler(ExecConfig config);

    DeliveryResult deliver(const Delivery& delivery) override;

    const ExecConfig& config() const { return config_; }

  private:
    ExecConfig config_;
};

}  // namespace mq
