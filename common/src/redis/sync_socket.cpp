#include "sync_socket.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "mq/redis/tls.hpp"

namespace mq::redis {

using Clock = std::chrono::steady_clock;

namespace {

// A BIO over our non-blocking socket that sends with MSG_NOSIGNAL: OpenSSL's socket BIO
// uses write(), whose SIGPIPE on a closed connection would kill a process (mqctl) that
// does not ignore it.
int fd_of(BIO* b) { return static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(b))); }

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

int bio_write(BIO* b, const char* data, int len) {
    BIO_clear_retry_flags(b);
    ssize_t n = ::send(fd_of(b), data, static_cast<std::size_t>(len), MSG_NOSIGNAL);
    if (n < 0 && would_block(errno)) BIO_set_retry_write(b);
    return static_cast<int>(n);
}

int bio_read(BIO* b, char* data, int len) {
    BIO_clear_retry_flags(b);
    ssize_t n = ::recv(fd_of(b), data, static_cast<std::size_t>(len), 0);
    if (n < 0 && would_block(errno)) BIO_set_retry_read(b);
    return static_cast<int>(n);
}

long bio_ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

int bio_create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
}

BIO_METHOD* socket_bio_method() {
    static BIO_METHOD* method = [] {
        BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mq redis socket");
        BIO_meth_set_write(m, bio_write);
        BIO_meth_set_read(m, bio_read);
        BIO_meth_set_ctrl(m, bio_ctrl);
        BIO_meth_set_create(m, bio_create);
        return m;
    }();
    return method;
}

std::chrono::steady_clock::time_point deadline_after(std::chrono::milliseconds timeout) {
    return timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point::max();
}

}  // namespace

SyncSocket::~SyncSocket() {
    if (ssl_) {
        // close_notify, best effort and without waiting: the socket is non-blocking.
        if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
        SSL_free(ssl_);
        ERR_clear_error();
    }
    if (fd_ >= 0) ::close(fd_);
}

bool SyncSocket::fail(Failure f, std::string detail) {
    failure_ = f;
    detail_ = std::move(detail);
    return false;
}

bool SyncSocket::wait(short events, Clock::time_point deadline, bool bounded) {
    for (;;) {
        int ms = -1;
        if (bounded) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0) return fail(Failure::kTimeout, "timed out");
            ms = static_cast<int>(std::min<std::int64_t>(left.count() + 1, 1 << 30));
        }
        pollfd p{fd_, events, 0};
        int rc = ::poll(&p, 1, ms);
        if (rc > 0) return true;  // ready, or an error the next call reports
        if (rc < 0 && errno != EINTR) return fail(Failure::kIo, std::strerror(errno));
    }
}

bool SyncSocket::connect_tcp(const Endpoint& endpoint, Clock::time_point deadline) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(endpoint.port);
    if (int rc = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &found); rc != 0)
        return fail(Failure::kIo, std::string("cannot resolve host: ") + ::gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(found, &::freeaddrinfo);
    for (addrinfo* a = found; a; a = a->ai_next) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd_ < 0) {
            fail(Failure::kIo, std::strerror(errno));
            continue;
        }
        if (::connect(fd_, a->ai_addr, a->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                fail(Failure::kIo, std::strerror(errno));
                continue;
            }
            if (!wait(POLLOUT, deadline, true)) return false;  // the deadline is for all
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                fail(Failure::kIo, std::strerror(err));
                continue;
            }
        }
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        failure_ = Failure::kNone;
        return true;
    }
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    return false;
}

bool SyncSocket::ssl_retry(int rc, Clock::time_point deadline, bool bounded, const char* doing) {
    const int saved_errno = errno;
    switch (SSL_get_error(ssl_, rc)) {
        case SSL_ERROR_WANT_READ:
            return wait(POLLIN, deadline, bounded);
        case SSL_ERROR_WANT_WRITE:
            return wait(POLLOUT, deadline, bounded);
        case SSL_ERROR_ZERO_RETURN:
            return fail(Failure::kClosed, "Server closed the connection");
        case SSL_ERROR_SYSCALL:
            ERR_clear_error();
            if (rc == 0 || saved_errno == 0)
                return fail(Failure::kClosed, "Server closed the connection");
            return fail(Failure::kIo, std::strerror(saved_errno));
        default:
            return fail(Failure::kIo, tls_failure_reason(ssl_, std::string("TLS error ") + doing));
    }
}

bool SyncSocket::handshake(const Endpoint& endpoint, const TlsContext& tls,
                           Clock::time_point deadline) {
    ERR_clear_error();
    ssl_ = SSL_new(tls.native());
    BIO* bio = ssl_ ? BIO_new(socket_bio_method()) : nullptr;
    if (!bio) return fail(Failure::kHandshake, tls_failure_reason(nullptr, "out of memory"));
    BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd_)));
    SSL_set_bio(ssl_, bio, bio);
    prepare_client_ssl(ssl_, endpoint.tls_name());
    SSL_set_connect_state(ssl_);
    for (;;) {
        ERR_clear_error();
        int rc = SSL_connect(ssl_);
        if (rc == 1) return true;
        if (!ssl_retry(rc, deadline, true, "in the handshake")) {
            if (failure_ == Failure::kTimeout) return false;
            if (failure_ == Failure::kClosed)
                detail_ = "the server closed the connection during the handshake";
            failure_ = Failure::kHandshake;
            // The reason ssl_retry read may be a generic one; the verification result is
            // the one that says what to fix.
            if (long v = SSL_get_verify_result(ssl_); v != X509_V_OK)
                detail_ = std::string("certificate verification failed: ") +
                          X509_verify_cert_error_string(v);
            return false;
        }
    }
}

bool SyncSocket::connect(const Endpoint& endpoint, const TlsContext* tls,
                         std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    if (!connect_tcp(endpoint, deadline)) return false;
    if (tls && !handshake(endpoint, *tls, deadline)) return false;
    return true;
}

bool SyncSocket::write_all(std::string_view data, std::chrono::milliseconds timeout) {
    const bool bounded = timeout.count() > 0;
    std::size_t done = 0;
    while (done < data.size()) {
        const auto deadline = deadline_after(timeout);
        if (ssl_) {
            ERR_clear_error();
            int rc =
                SSL_write(ssl_, data.data() + done,
                          static_cast<int>(std::min<std::size_t>(data.size() - done, 1 << 30)));
            if (rc > 0) {
                done += static_cast<std::size_t>(rc);
                continue;
            }
            if (!ssl_retry(rc, deadline, bounded, "while writing")) return false;
            continue;
        }
        ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
        } else if (n < 0 && would_block(errno)) {
            if (!wait(POLLOUT, deadline, bounded)) return false;
        } else {
            return fail(Failure::kIo, std::strerror(errno));
        }
    }
    return true;
}

bool SyncSocket::read_some(char* buf, std::size_t capacity, std::size_t& n,
                           std::chrono::milliseconds timeout) {
    const bool bounded = timeout.count() > 0;
    const auto deadline = deadline_after(timeout);
    for (;;) {
        if (ssl_) {
            ERR_clear_error();
            int rc =
                SSL_read(ssl_, buf, static_cast<int>(std::min<std::size_t>(capacity, 1 << 30)));
            if (rc > 0) {
                n = static_cast<std::size_t>(rc);
                return true;
            }
            if (!ssl_retry(rc, deadline, bounded, "while reading")) return false;
            continue;
        }
        ssize_t r = ::recv(fd_, buf, capacity, 0);
        if (r > 0) {
            n = static_cast<std::size_t>(r);
            return true;
        }
        if (r == 0) return fail(Failure::kClosed, "Server closed the connection");
        if (!would_block(errno)) return fail(Failure::kIo, std::strerror(errno));
        if (!wait(POLLIN, deadline, bounded)) return false;
    }
}

}  // namespace mq::redis
