#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "mq/error.hpp"

struct redisContext;

namespace mq::redis {

/// Where a Redis server is: parsed from `redis://[[user]:password@]host[:port][/db]`.
struct Endpoint {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string username;  ///< Redis 6 ACL user; empty for the default user
    std::string password;
    int db = 0;

    /// "host:port" for messages; never includes the password.
    std::string describe() const;
};

/// Throws ValidationError on anything that is not a redis:// URL.
Endpoint parse_url(std::string_view url);

/// A reply converted from hiredis into an owned value.
struct Reply {
    enum class Type { kNil, kInteger, kString, kStatus, kError, kArray };
    Type type = Type::kNil;
    std::int64_t integer = 0;
    std::string str;  ///< kString, kStatus, kError
    std::vector<Reply> elements;

    bool is_nil() const { return type == Type::kNil; }
    bool is_error() const { return type == Type::kError; }
    bool is_array() const { return type == Type::kArray; }
    /// The error's first word ("NOSCRIPT", "BUSYGROUP", "WRONGTYPE"...), empty otherwise.
    std::string_view error_code() const;
    /// Integer value; a numeric string is converted. Throws Error otherwise.
    std::int64_t as_integer() const;
    /// String or status text; throws Error for other types.
    const std::string& as_string() const;
};

/// Largest array a reply may announce. hiredis 0.14 allocates the element table from the
/// announced length before any element arrives, so "*2000000000" from a hostile or
/// broken server would cost 16 GB; mq never reads arrays near this size.
inline constexpr int kMaxReplyElements = 1 << 22;

/// Makes the hiredis reader `reader` (a `redisReader*`) refuse, as out of memory, any array
/// longer than kMaxReplyElements. Every reader mq creates goes through it.
void cap_reply_arrays(void* reader);

/// Converts a hiredis reply (a `redisReply*`) into a Reply.
Reply reply_from_hiredis(const void* hiredis_reply);

/// A Lua script, run by EVALSHA and loaded on NOSCRIPT. The SHA-1 is computed once.
class Script {
  public:
    explicit Script(std::string source);
    const std::string& source() const { return source_; }
    const std::string& sha() const { return sha_; }

  private:
    std::string source_;
    std::string sha_;
};

struct ConnectOptions {
    std::chrono::milliseconds connect_timeout{2000};
    /// Socket read/write timeout; zero means wait forever. Blocking commands (XREADGROUP
    /// BLOCK) must block for less than this or their reply can be lost.
    std::chrono::milliseconds command_timeout{5000};
};

/// Commands queued and sent in one write, replies read in order. Errors come back as
/// error replies, not exceptions, so the caller sees which command failed.
class Pipeline {
  public:
    /// A command; `script` names the script an EVALSHA in argv runs (for NOSCRIPT).
    void add(std::vector<std::string> argv, const Script* script = nullptr);
    /// EVALSHA sha numkeys keys... args...; the connection loads the script first if needed.
    void add_script(const Script& script, const std::vector<std::string>& keys,
                    const std::vector<std::string>& args);
    std::size_t size() const { return commands_.size(); }
    bool empty() const { return commands_.empty(); }
    void clear();
    /// The commands as argv vectors, and per command the script it runs (or nullptr).
    const std::vector<std::vector<std::string>>& commands() const { return commands_; }
    const Script* script(std::size_t i) const { return scripts_[i]; }

  private:
    friend class Connection;
    std::vector<std::vector<std::string>> commands_;
    std::vector<const Script*> scripts_;  // per command; nullptr for plain commands
};

/// One synchronous connection (hiredis). Move-only. A broken connection reconnects on the
/// next call; a call that fails on I/O throws BackendUnavailable and is not retried,
/// because the command may or may not have run.
class Connection {
  public:
    Connection(Endpoint endpoint, ConnectOptions options = {});
    ~Connection();
    Connection(Connection&&) noexcept;
    Connection& operator=(Connection&&) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    /// Runs one command; an error reply throws Error with the server's message.
    Reply command(const std::vector<std::string>& argv);
    /// Runs one command and returns error replies as values.
    Reply command_raw(const std::vector<std::string>& argv);
    /// Runs a script by EVALSHA (SCRIPT LOAD on NOSCRIPT); error replies throw.
    Reply eval(const Script& script, const std::vector<std::string>& keys,
               const std::vector<std::string>& args);
    /// Sends every command, then reads every reply. Replies are in command order.
    std::vector<Reply> execute(const Pipeline& pipeline);
    /// The two halves of execute(), so a caller can prepare the next pipeline while the
    /// server works on this one. Every send() must be followed by receive() of the same
    /// pipeline, in the same order; the pipeline must stay alive until then.
    void send(const Pipeline& pipeline);
    std::vector<Reply> receive(const Pipeline& pipeline);

    /// Low level, for subscriber mode (SUBSCRIBE): write() sends one command without
    /// waiting; read() returns the next reply or pushed message. A read that times out
    /// breaks the connection (hiredis), so a subscriber sends PING before each read.
    void write(const std::vector<std::string>& argv);
    Reply read();

    /// Refuses servers that may evict keys (maxmemory-policy other than noeviction): an
    /// evicting Redis drops messages silently. Throws Error with what to change.
    void check_server_policy();

    void set_command_timeout(std::chrono::milliseconds timeout);
    const Endpoint& endpoint() const { return endpoint_; }

  private:
    struct ContextDeleter {
        void operator()(redisContext* c) const;
    };

    void ensure_connected();
    void connect();
    void load_script(const Script& script);
    void append(const std::vector<std::string>& argv);
    Reply read_reply(std::string_view doing);  // from the socket
    Reply next_reply(std::string_view doing);  // stashed first, then the socket
    void drain();                              // stash every reply still in flight
    [[noreturn]] void fail_io(std::string_view doing);

    Endpoint endpoint_;
    ConnectOptions options_;
    std::unique_ptr<redisContext, ContextDeleter> ctx_;
    std::unordered_set<std::string> loaded_scripts_;
    std::size_t outstanding_ = 0;  // commands sent whose replies are not read yet
    std::deque<Reply> stash_;      // replies read early, in order, for a later receive()
};

}  // namespace mq::redis
