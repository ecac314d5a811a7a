#include "tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "mq/error.hpp"

namespace mqapi {

namespace ssl = boost::asio::ssl;

namespace {

// TLS 1.2 suites: ECDHE key exchange and AEAD ciphers only (TLS 1.3 suites are all of
// that kind already and keep OpenSSL's defaults).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// The oldest OpenSSL error of this thread, as text, and the queue cleared.
std::string openssl_error() {
    unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) return "unknown OpenSSL error";
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    return text;
}

void require_readable(const char* setting, const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw mq::ValidationError(std::string(setting) + "=" + path + ": cannot read the file (" +
                                      std::strerror(errno) + ")",
                                  {{"field", setting}});
}

}  // namespace

std::shared_ptr<ssl::context> make_tls_context(const mq::ApiSettings& settings) {
    if (!settings.tls()) return nullptr;
    if (settings.tls_cert_file.empty() || settings.tls_key_file.empty())
        throw mq::ValidationError(
            "HTTPS needs both TLS_CERT_FILE and TLS_KEY_FILE (only one of them is set)",
            {{"field", settings.tls_cert_file.empty() ? "TLS_CERT_FILE" : "TLS_KEY_FILE"}});
    require_readable("TLS_CERT_FILE", settings.tls_cert_file);
    require_readable("TLS_KEY_FILE", settings.tls_key_file);
    if (!settings.tls_ca_file.empty()) require_readable("TLS_CA_FILE", settings.tls_ca_file);

    auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* ctx = context->native_handle();
    ERR_clear_error();
    SSL_CTX_set_min_proto_version(
        ctx, settings.tls_min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_SSLv2 |
                                 SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1);
    if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1)
        throw mq::Error(mq::ErrorCode::kInternal, "cannot set the TLS ciphers: " + openssl_error());
    if (SSL_CTX_use_certificate_chain_file(ctx, settings.tls_cert_file.c_str()) != 1)
        throw mq::ValidationError("TLS_CERT_FILE=" + settings.tls_cert_file +
                                      ": not a PEM certificate chain (" + openssl_error() + ")",
                                  {{"field", "TLS_CERT_FILE"}});
    if (SSL_CTX_use_PrivateKey_file(ctx, settings.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        throw mq::ValidationError("TLS_KEY_FILE=" + settings.tls_key_file +
                                      ": not a PEM private key, or it does not match the "
                                      "certificate of TLS_CERT_FILE (" +
                                      openssl_error() + ")",
                                  {{"field", "TLS_KEY_FILE"}});
    if (SSL_CTX_check_private_key(ctx) != 1)
        throw mq::ValidationError("TLS_KEY_FILE=" + settings.tls_key_file +
                                      " does not match the certificate of TLS_CERT_FILE=" +
                                      settings.tls_cert_file + " (" + openssl_error() + ")",
                                  {{"field", "TLS_KEY_FILE"}});
    if (!settings.tls_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx, settings.tls_ca_file.c_str(), nullptr) != 1)
            throw mq::ValidationError("TLS_CA_FILE=" + settings.tls_ca_file +
                                          ": not a PEM file of CA certificates (" +
                                          openssl_error() + ")",
                                      {{"field", "TLS_CA_FILE"}});
        // Verified when presented, never required: tokens stay the way clients authenticate.
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    return context;
}

}  // namespace mqapi
