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

struct redisReader;

namespace mq {
struct Config;
}

namespace mq::redis {

class TlsContext;
class SyncSocket;
class ClusterRouter;

/// How a `rediss://` connection checks the server and proves who it is (REDIS_TLS_*
/// settings, docs/security.md). Paths are PEM files; empty means "not set".
struct TlsOptions {
    std::string ca_file;      ///< REDIS_TLS_CA_FILE; with ca_dir empty too: the system's CAs
    std::string ca_dir;       ///< REDIS_TLS_CA_DIR (c_rehash layout)
    std::string cert_file;    ///< REDIS_TLS_CERT_FILE: client certificate (chain), mutual TLS
    std::string key_file;     ///< REDIS_TLS_KEY_FILE: its private key
    std::string server_name;  ///< REDIS_TLS_SERVER_NAME: SNI and name checked; empty: URL host

    bool any() const {
        return !ca_file.empty() || !ca_dir.empty() || !cert_file.empty() || !key_file.empty() ||
               !server_name.empty();
    }
};

/// A cluster node by address.
struct NodeAddress {
    std::string host;
    int port = 0;
    std::string describe() const;  ///< host:port ([host]:port for IPv6)
    bool operator==(const NodeAddress& o) const { return host == o.host && port == o.port; }
    bool operator<(const NodeAddress& o) const {
        return host < o.host || (host == o.host && port < o.port);
    }
};

/// Where a Redis server is: parsed from `redis[s]://[[user]:password@]host[:port][/db]`.
struct Endpoint {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string username;  ///< Redis 6 ACL user; empty for the default user
    std::string password;
    int db = 0;
    bool tls = false;  ///< rediss://: TLS 1.2+, the server's certificate and name verified
    TlsOptions tls_options;
    /// The loaded OpenSSL context (CA, client certificate), shared by every connection to
    /// this endpoint. load_tls() fills it; a connection loads it itself when it is null.
    std::shared_ptr<const TlsContext> tls_context;
    /// Seed nodes of a Redis Cluster (REDIS_CLUSTER_NODES or a redis+cluster:// URL); empty
    /// for a single server. With seeds, host and port are unused: connections route each
    /// command to the master of its key's slot (mq/redis/cluster.hpp, docs/cluster.md).
    std::vector<NodeAddress> cluster_nodes;

    bool cluster() const { return !cluster_nodes.empty(); }

    /// "host:port" for messages; never includes the password.
    std::string describe() const;
    /// The name the server's certificate must carry: tls_options.server_name or host.
    const std::string& tls_name() const;
};

/// Throws ValidationError on anything that is not a redis:// or rediss:// URL.
Endpoint parse_url(std::string_view url);

/// Loads the endpoint's TLS context (CA, client certificate and key) when it uses TLS.
/// Throws ValidationError naming the REDIS_TLS_* setting on an unreadable or bad file.
void load_tls(Endpoint& endpoint);

/// The endpoint a process configuration names: REDIS_URL plus the REDIS_TLS_* settings,
/// TLS context loaded. REDIS_TLS_* set with a plain redis:// URL is a ValidationError
/// (it would otherwise send in clear text what the operator meant to protect).
Endpoint endpoint_from_config(const Config& config);

/// What an error reply means for the caller.
enum class ErrorClass {
    kNone,      ///< not an error reply
    kTryAgain,  ///< the server cannot serve now and will later (see is_try_again_code)
    kCommand,   ///< this command failed (WRONGTYPE, NOGROUP, a script's own error, ...)
};

/// Error codes (first word of an error reply) that mean "the server is busy, loading,
/// read-only, out of memory or between failovers: the same command may succeed later":
/// LOADING, BUSY, READONLY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN, OOM, NOREPLICAS,
/// MISCONF. The command did not run.
bool is_try_again_code(std::string_view code);

/// Seconds a client is told to wait (Retry-After) after a try-again reply.
inline constexpr int kTryAgainAfterSeconds = 1;

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
    /// kNone, kTryAgain or kCommand (classified once, here, for every caller).
    ErrorClass error_class() const;
    /// Integer value; a numeric string is converted. Throws Error otherwise.
    std::int64_t as_integer() const;
    /// String or status text; throws Error for other types.
    const std::string& as_string() const;
};

/// The mq::Error for an error reply of `command` (e.g. "XADD", "publish script"):
/// try-again replies are BackendUnavailable (503, Retry-After kTryAgainAfterSeconds, exit 5),
/// others ErrorCode::kInternal. Both keep the server's text for logs and mqctl; mq-api
/// never shows it to a client (docs/security.md, "What answers reveal").
Error reply_error(const Reply& reply, std::string_view command);

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

/// One synchronous connection (our socket or TLS transport, hiredis's reply reader).
/// On a Redis Cluster (Endpoint::cluster()) it is one connection per node behind the same
/// calls: each command goes to the master of its key's slot, a pipeline is split per node
/// (one round trip per node), MOVED/ASK are followed (docs/cluster.md).
/// Move-only. A broken connection reconnects on the
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

    /// True when this connection routes over the nodes of a Redis Cluster.
    bool is_cluster() const { return cluster_ != nullptr; }
    /// The nodes that hold data: every master of a cluster (the slot map read afresh), or
    /// this server. For what must touch every node (SCAN, INFO): run it on node(each).
    std::vector<NodeAddress> masters();
    /// A connection to one of masters(); this connection itself for a single server.
    Connection& node(const NodeAddress& address);
    /// The node that holds `key`: its slot's master on a cluster, this server otherwise.
    NodeAddress node_of(std::string_view key);
    /// WAIT 1 <timeout> on every node `written` (a pipeline this connection ran) went to:
    /// returns once a replica of each acknowledged it; throws BackendUnavailable naming the
    /// node when one did not within `timeout` (the writes stand on the master).
    void wait_for_replica(const Pipeline& written, std::chrono::milliseconds timeout);

  private:
    struct ReaderDeleter {
        void operator()(redisReader* r) const;
    };

    bool connected() const { return socket_ != nullptr; }
    void ensure_connected();
    void connect();
    void load_script(const Script& script);
    void append(const std::vector<std::string>& argv);
    void flush(std::string_view doing);        // writes every command appended so far
    Reply read_reply(std::string_view doing);  // from the socket
    Reply next_reply(std::string_view doing);  // stashed first, then the socket
    void drain();                              // stash every reply still in flight
    [[noreturn]] void fail_io(std::string_view doing);

    Endpoint endpoint_;
    ConnectOptions options_;
    std::unique_ptr<SyncSocket> socket_;  // null: not connected
    std::unique_ptr<redisReader, ReaderDeleter> reader_;
    std::string out_;  // commands appended but not written yet
    std::unordered_set<std::string> loaded_scripts_;
    std::size_t outstanding_ = 0;             // commands sent whose replies are not read yet
    std::deque<Reply> stash_;                 // replies read early, in order, for a later receive()
    std::unique_ptr<ClusterRouter> cluster_;  // set: a cluster, no socket of its own
};

}  // namespace mq::redis
