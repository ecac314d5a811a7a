#pragma once

// The HTTP/1.1 server (Boost.Beast on Asio): keep-alive sessions on a fixed number of
// threads, body limits enforced from the headers before the body is read, header and
// idle timeouts, authentication, dispatch to the router, access log, graceful drain.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "router.hpp"

namespace mqapi {

struct ServerOptions {
    std::string address = "0.0.0.0";
    int port = 3010;
    int threads = 2;                   ///< I/O threads
    int blocking_threads = 8;          ///< for handlers that wait on PostgreSQL/Redis
    std::size_t body_limit = 1048576;  ///< default per-request body limit (MAX_MESSAGE_SIZE)
    std::chrono::seconds header_timeout{10};
    std::chrono::seconds idle_timeout{75};
    std::chrono::seconds request_timeout{60};  ///< body read and response write
    bool access_log = true;
};

/// Maps a bearer token to a principal: nullopt when unknown; throws mq::Error (e.g.
/// backend unavailable) when it cannot tell.
using Authenticate = std::function<std::optional<mq::Principal>(std::string_view token)>;

class Server {
  public:
    Server(const Router& router, ServerOptions options, Authenticate authenticate,
           std::string service_token);
    ~Server();

    /// Binds (throws mq::Error when the port is taken) and starts the threads.
    void start();
    /// The port actually bound (useful with port 0).
    int port() const;
    /// The I/O threads' io_contexts, one per thread (made by the constructor), so that
    /// per-thread resources (mq::PublishPipeline) can be attached before start().
    const std::vector<std::shared_ptr<boost::asio::io_context>>& contexts() const;
    /// Stops accepting, lets requests in flight finish (up to `deadline`), closes idle
    /// keep-alive connections, then stops the threads. Returns requests cut off.
    int drain(std::chrono::milliseconds deadline);

    /// Runs `fn` on the blocking pool.
    void post_blocking(std::function<void()> fn);
    /// Runs `fn` on an I/O thread after `delay` (timers for long polls).
    void post_after(std::chrono::milliseconds delay, std::function<void()> fn);
    bool draining() const;

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace mqapi
