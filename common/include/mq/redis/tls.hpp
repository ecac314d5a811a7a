#pragma once

// TLS for Redis connections (rediss://): one OpenSSL client context per endpoint, shared
// by its connections, and the per-connection checks (SNI, certificate name).

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <string>

#include "mq/redis/client.hpp"

namespace mq::redis {

/// An OpenSSL client context: TLS 1.2 or later, the peer's certificate verified against
/// the configured CA (file and/or directory; the system's CAs when neither is set), an
/// optional client certificate for servers started with `tls-auth-clients yes`.
class TlsContext {
  public:
    /// Throws ValidationError naming the REDIS_TLS_* setting whose file cannot be read or
    /// holds no usable certificate or key.
    explicit TlsContext(const TlsOptions& options);
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    /// For Asio's ssl::stream. Const because configuring ends in the constructor;
    /// OpenSSL lets many connections share a context once it is set up.
    boost::asio::ssl::context& asio() const { return ctx_; }
    SSL_CTX* native() const { return ctx_.native_handle(); }

  private:
    mutable boost::asio::ssl::context ctx_;
};

/// Prepares one connection's SSL object to talk to `name`: SNI when `name` is a host name
/// (RFC 6066 allows no address there), and the certificate must match it (a DNS name, or
/// an IP address SAN for an address). Throws Error when OpenSSL refuses the name.
void prepare_client_ssl(SSL* ssl, const std::string& name);

/// Why a handshake failed, in a few words: the verification result ("certificate has
/// expired", "hostname mismatch") or the first OpenSSL error; `fallback` when neither says.
/// Clears OpenSSL's error queue of this thread.
std::string tls_failure_reason(SSL* ssl, const std::string& fallback);

/// What to check when the TLS handshake with Redis failed, for error messages.
inline constexpr const char* kTlsHint =
    "check REDIS_TLS_CA_FILE, REDIS_TLS_SERVER_NAME and, when the server asks for a client "
    "certificate, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE";

}  // namespace mq::redis
