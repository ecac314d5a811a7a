#pragma once

// HTTPS for mq-api: the OpenSSL context built from TLS_CERT_FILE / TLS_KEY_FILE.

#include <memory>

#include "mq/config/api_settings.hpp"

namespace boost::asio::ssl {
class context;
}

namespace mqapi {

/// A server context with the certificate chain and key of `settings` (TLS 1.2 or 1.3 at
/// least, forward-secret AEAD ciphers only, no compression or renegotiation; client
/// certificates verified against TLS_CA_FILE when one is presented, never required).
/// Null when `settings` asks for no TLS. Throws ValidationError naming the setting and
/// the file on an unreadable file, a bad PEM or a key that does not match the certificate.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const mq::ApiSettings& settings);

}  // namespace mqapi
