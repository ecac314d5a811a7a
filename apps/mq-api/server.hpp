#pragma once

// The HTTP/1.1 server (Boost.Beast on Asio), plain or over TLS: keep-alive sessions on a
// fixed number of threads, admission control (connection limit, accept back-off, a
// bounded blocking pool, token lookups off the I/O threads, a limit on failed
// authentications per client), header/body/idle timeouts, body limits enforced from the
// headers before the body is read, dispatch to the router, access log, graceful drain.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mq/auth/token.hpp"
#include "mq/error.hpp"
#include "router.hpp"

namespace boost::asio::ssl {
class context;
}

namespace mqapi {

struct ServerOptions {
    std::string address = "0.0.0.0";
    int port = 3010;
    int threads = 2;                   ///< I/O threads
    int blocking_threads = 8;          ///< for handlers that wait on PostgreSQL/Redis
    int lookup_threads = 2;            ///< for token lookups in PostgreSQL
    std::size_t body_limit = 1048576;  ///< default per-request body limit (MAX_MESSAGE_SIZE)
    /// Open connections at most (0: min(10000, RLIMIT_NOFILE - kReservedDescriptors)).
    std::size_t max_connections = 0;
    /// Requests waiting for a blocking thread at most; beyond it 503 + Retry-After.
    std::size_t blocking_queue_limit = 512;
    /// Token lookups waiting for a lookup thread at most; beyond it 503 + Retry-After.
    std::size_t lookup_queue_limit = 1024;
    std::chrono::milliseconds header_timeout{10000};     ///< the whole header, from its first byte
    std::chrono::milliseconds body_timeout{30000};       ///< the whole body, from the header's end
    std::chrono::milliseconds idle_timeout{75000};       ///< keep-alive wait for the next request
    std::chrono::milliseconds write_timeout{60000};      ///< writing a response
    std::chrono::milliseconds handshake_timeout{10000};  ///< TLS handshake
    /// Failed authentications per client address before 429 (0: no limit), and the time
    /// in which that many are forgiven.
    std::size_t auth_failure_limit = 20;
    std::chrono::milliseconds auth_failure_window{60000};
    /// How late a client over that limit gets its 429 (a tarpit; 0: at once).
    std::chrono::milliseconds auth_failure_delay{1000};
    /// Set: every connection speaks TLS (see make_tls_context in tls.hpp).
    std::shared_ptr<boost::asio::ssl::context> tls;
    bool access_log = true;

    /// Descriptors kept free for Redis, PostgreSQL, files and the listener when
    /// max_connections is derived from RLIMIT_NOFILE.
    static constexpr std::size_t kReservedDescriptors = 128;
};

/// 503 MQ_OVERLOADED with Retry-After: a bounded queue of the server is full.
class Overloaded : public mq::Error {
  public:
    explicit Overloaded(const std::string& what);
};

class Server {
  public:
    /// `authenticator` answers bearer tokens (cached answers on the I/O thread, lookups
    /// on the lookup threads); it must outlive the server.
    Server(const Router& router, ServerOptions options, mq::Authenticator& authenticator,
           std::string service_token);
    ~Server();

    /// Binds (throws mq::Error when the port is taken) and starts the threads.
    void start();
    /// The port actually bound (useful with port 0).
    int port() const;
    /// Connections admitted at most (after start()).
    std::size_t max_connections() const;
    /// The I/O threads' io_contexts, one per thread (made by the constructor), so that
    /// per-thread resources (mq::PublishPipeline) can be attached before start().
    const std::vector<std::shared_ptr<boost::asio::io_context>>& contexts() const;
    /// Stops accepting, lets requests in flight finish (up to `deadline`), closes idle
    /// keep-alive connections, then stops the threads. Returns requests cut off.
    int drain(std::chrono::milliseconds deadline);

    /// Runs `fn` on the blocking pool. Called from a route's async handler while its
    /// request is being admitted, it throws Overloaded when the pool's queue is full;
    /// continuations (a long poll's next attempt) are never refused.
    void post_blocking(std::function<void()> fn);
    /// Runs `fn` on an I/O thread after `delay` (timers for long polls).
    void post_after(std::chrono::milliseconds delay, std::function<void()> fn);
    bool draining() const;
    /// The TLS context of connections accepted from now on (a reloaded certificate);
    /// connections already open keep theirs. Throws when the server speaks plain HTTP
    /// (switching needs a restart).
    void replace_tls(std::shared_ptr<boost::asio::ssl::context> tls);

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace mqapi
