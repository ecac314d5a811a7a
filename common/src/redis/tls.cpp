#include "mq/redis/tls.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "mq/config/config.hpp"
#include "mq/redis/cluster.hpp"

namespace mq::redis {

namespace {

/// The first OpenSSL error of this thread's queue as text ("no certificate or crl
/// found"), then the queue cleared; `fallback` when it is empty.
std::string openssl_reason(const std::string& fallback) {
    unsigned long e = ERR_peek_error();
    std::string out = fallback;
    if (e != 0) {
        if (const char* r = ERR_reason_error_string(e))
            out = r;
        else {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof buf);
            out = buf;
        }
    }
    ERR_clear_error();
    return out;
}

// A missing or unreadable file gets the system's reason, before OpenSSL's vaguer one.
void require_readable(const char* setting, const std::string& path, bool directory) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        throw ValidationError(std::string(setting) + "=" + path + ": " + std::strerror(errno),
                              {{"field", setting}});
    if (directory != S_ISDIR(st.st_mode))
        throw ValidationError(std::string(setting) + "=" + path + ": " +
                                  (directory ? "not a directory" : "not a regular file"),
                              {{"field", setting}});
    if (!directory && !std::ifstream(path))
        throw ValidationError(std::string(setting) + "=" + path + ": cannot be read",
                              {{"field", setting}});
}

[[noreturn]] void bad_file(const char* setting, const std::string& path, const char* what) {
    throw ValidationError(std::string(setting) + "=" + path + ": " + what + " (" +
                              openssl_reason("unknown OpenSSL error") + ")",
                          {{"field", setting}});
}

}  // namespace

TlsContext::TlsContext(const TlsOptions& o) : ctx_(boost::asio::ssl::context::tls_client) {
    SSL_CTX* c = ctx_.native_handle();
    ERR_clear_error();
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    // Our blocking transport retries a write with the same bytes after a timeout-free
    // partial write; Asio writes in pieces as well.
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    if (!o.ca_file.empty()) require_readable("REDIS_TLS_CA_FILE", o.ca_file, false);
    if (!o.ca_dir.empty()) require_readable("REDIS_TLS_CA_DIR", o.ca_dir, true);
    if (!o.ca_file.empty() || !o.ca_dir.empty()) {
        if (SSL_CTX_load_verify_locations(c, o.ca_file.empty() ? nullptr : o.ca_file.c_str(),
                                          o.ca_dir.empty() ? nullptr : o.ca_dir.c_str()) != 1) {
            if (!o.ca_file.empty())
                bad_file("REDIS_TLS_CA_FILE", o.ca_file, "no CA certificate could be loaded");
            bad_file("REDIS_TLS_CA_DIR", o.ca_dir, "no CA certificate could be loaded");
        }
    } else if (SSL_CTX_set_default_verify_paths(c) != 1) {
        throw ValidationError("cannot load the system's CA certificates for rediss:// (" +
                                  openssl_reason("unknown OpenSSL error") +
                                  "); set REDIS_TLS_CA_FILE",
                              {{"field", "REDIS_TLS_CA_FILE"}});
    }

    if (o.cert_file.empty() != o.key_file.empty())
        throw ValidationError(
            o.cert_file.empty()
                ? "REDIS_TLS_KEY_FILE is set without REDIS_TLS_CERT_FILE: set both or neither"
                : "REDIS_TLS_CERT_FILE is set without REDIS_TLS_KEY_FILE: set both or neither",
            {{"field", o.cert_file.empty() ? "REDIS_TLS_CERT_FILE" : "REDIS_TLS_KEY_FILE"}});
    if (!o.cert_file.empty()) {
        require_readable("REDIS_TLS_CERT_FILE", o.cert_file, false);
        require_readable("REDIS_TLS_KEY_FILE", o.key_file, false);
        if (SSL_CTX_use_certificate_chain_file(c, o.cert_file.c_str()) != 1)
            bad_file("REDIS_TLS_CERT_FILE", o.cert_file, "no PEM certificate could be loaded");
        if (SSL_CTX_use_PrivateKey_file(c, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
            if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
                bad_file("REDIS_TLS_KEY_FILE", o.key_file,
                         "the key does not belong to REDIS_TLS_CERT_FILE");
            bad_file("REDIS_TLS_KEY_FILE", o.key_file,
                     "no PEM private key could be loaded (an encrypted key is not supported)");
        }
        if (SSL_CTX_check_private_key(c) != 1)
            bad_file("REDIS_TLS_KEY_FILE", o.key_file,
                     "the key does not belong to REDIS_TLS_CERT_FILE");
    }
}

void prepare_client_ssl(SSL* ssl, const std::string& name) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(name, ec);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    bool ok = true;
    if (!ec) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1;
    } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 &&
             X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) == 1;
    }
    if (!ok)
        throw Error(ErrorCode::kValidation, "cannot check a Redis TLS certificate against '" +
                                                name + "' (" +
                                                openssl_reason("not a valid host name or address") +
                                                "); set REDIS_TLS_SERVER_NAME");
    SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
}

std::string tls_failure_reason(SSL* ssl, const std::string& fallback) {
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        ERR_clear_error();
        return std::string("certificate verification failed: ") + X509_verify_cert_error_string(v);
    }
    return openssl_reason(fallback);
}

// ---- Endpoint helpers --------------------------------------------------------------------

const std::string& Endpoint::tls_name() const {
    return tls_options.server_name.empty() ? host : tls_options.server_name;
}

void load_tls(Endpoint& endpoint) {
    if (endpoint.tls && !endpoint.tls_context)
        endpoint.tls_context = std::make_shared<const TlsContext>(endpoint.tls_options);
}

Endpoint endpoint_from_config(const Config& config) {
    Endpoint ep = parse_url(config.redis_url);
    if (!config.redis_cluster_nodes.empty()) {
        if (ep.db != 0)
            throw ValidationError("REDIS_CLUSTER_NODES is set but REDIS_URL names database " +
                                      std::to_string(ep.db) +
                                      "; a Redis Cluster has only database 0",
                                  {{"field", "REDIS_URL"}});
        ep.cluster_nodes = parse_node_list(config.redis_cluster_nodes, "REDIS_CLUSTER_NODES");
    }
    ep.tls_options.ca_file = config.redis_tls_ca_file;
    ep.tls_options.ca_dir = config.redis_tls_ca_dir;
    ep.tls_options.cert_file = config.redis_tls_cert_file;
    ep.tls_options.key_file = config.redis_tls_key_file;
    ep.tls_options.server_name = config.redis_tls_server_name;
    if (!ep.tls && ep.tls_options.any())
        throw ValidationError(
            "REDIS_TLS_* settings are set but REDIS_URL is a plain redis:// URL; use rediss:// "
            "for TLS (or unset the REDIS_TLS_* settings)",
            {{"field", "REDIS_URL"}});
    load_tls(ep);
    return ep;
}

}  // namespace mq::redis
