#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace mq::pg {

/// LISTEN on one channel over a connection of its own (a pooled connection cannot keep a
/// LISTEN). Notifications are handed to `on_notify` inside wait(), on the caller's thread.
/// Used by the configuration cache (mq_config) and the outbox relay (mq_outbox); a caller
/// that loses the connection drops the Listener and makes a new one, then reloads whatever
/// it may have missed meanwhile.
class Listener {
  public:
    using Handler = std::function<void(const std::string& payload)>;

    /// Connects and LISTENs. Throws BackendUnavailable naming the server (never the
    /// password), followed by `hint` when given.
    Listener(const std::string& url, const std::string& channel, Handler on_notify,
             const std::string& hint = {});
    /// UNLISTENs while the connection is still open; never throws.
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    /// Waits up to `timeout` for notifications and returns how many were handled. Throws
    /// pqxx::broken_connection once the connection is gone (libpqxx 6 would otherwise just
    /// return 0 from then on, and the caller would never hear another notification).
    int wait(std::chrono::microseconds timeout);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace mq::pg
