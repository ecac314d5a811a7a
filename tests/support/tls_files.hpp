#pragma once

// A throwaway certificate authority and server certificate for HTTPS tests, made at test
// time with the openssl command line tool in a temporary directory (removed afterwards).

#include <string>

namespace mqtest {

/// PEM files: a CA, a server certificate for 127.0.0.1 and localhost signed by it, the
/// server's key, and an unrelated key that matches nothing (for the mismatch test).
struct TlsFiles {
    TlsFiles();
    ~TlsFiles();
    TlsFiles(const TlsFiles&) = delete;
    TlsFiles& operator=(const TlsFiles&) = delete;

    std::string dir;
    std::string ca_cert;
    std::string server_cert;
    std::string server_key;
    std::string other_key;
};

}  // namespace mqtest
