#pragma once

// The blocking transport under redis::Connection: a TCP socket, optionally wrapped in
// TLS, with every wait bounded by poll(). hiredis 0.14 has no TLS, so we keep only its
// reply reader and do the I/O ourselves, the same way for plain and TLS connections.

#include <openssl/ssl.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "mq/redis/client.hpp"

namespace mq::redis {

class SyncSocket {
  public:
    /// Why the last operation failed.
    enum class Failure {
        kNone,
        kTimeout,    ///< the deadline passed
        kClosed,     ///< the peer closed the connection
        kIo,         ///< a socket error
        kHandshake,  ///< the TLS handshake failed (detail says why: verification...)
    };

    SyncSocket() = default;
    ~SyncSocket();
    SyncSocket(const SyncSocket&) = delete;
    SyncSocket& operator=(const SyncSocket&) = delete;

    /// Connects to the endpoint and, for rediss://, completes the TLS handshake, all
    /// within `timeout`. False on failure (see failure(), detail()).
    bool connect(const Endpoint& endpoint, const TlsContext* tls,
                 std::chrono::milliseconds timeout);
    /// Writes every byte; `timeout` bounds each wait for the socket (zero: no limit).
    bool write_all(std::string_view data, std::chrono::milliseconds timeout);
    /// Reads what is available (at least one byte) into buf; `timeout` bounds the wait.
    bool read_some(char* buf, std::size_t capacity, std::size_t& n,
                   std::chrono::milliseconds timeout);

    Failure failure() const { return failure_; }
    const std::string& detail() const { return detail_; }
    bool tls() const { return ssl_ != nullptr; }

  private:
    bool fail(Failure f, std::string detail);
    bool wait(short events, std::chrono::steady_clock::time_point deadline, bool bounded);
    bool connect_tcp(const Endpoint& endpoint, std::chrono::steady_clock::time_point deadline);
    bool handshake(const Endpoint& endpoint, const TlsContext& tls,
                   std::chrono::steady_clock::time_point deadline);
    // One SSL call's outcome: true when it made progress, else waits or fails.
    bool ssl_retry(int rc, std::chrono::steady_clock::time_point deadline, bool bounded,
                   const char* doing);

    int fd_ = -1;
    SSL* ssl_ = nullptr;
    Failure failure_ = Failure::kNone;
    std::string detail_;
};

}  // namespace mq::redis
