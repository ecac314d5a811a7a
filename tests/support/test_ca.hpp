#pragma once

// A certificate authority made at test time (openssl CLI, EC P-256 keys, valid two days),
// and a redis-server of one test alone that speaks only TLS, for the rediss:// tests.

#include <map>
#include <string>

namespace mqtest {

/// CA, server certificate (SAN localhost and 127.0.0.1), client certificate, and a second
/// CA with its own server and client certificates (the "wrong CA"). Files in a temporary
/// directory removed with the object; keys are 0600.
class TestCa {
  public:
    TestCa();
    ~TestCa();
    TestCa(const TestCa&) = delete;
    TestCa& operator=(const TestCa&) = delete;

    /// The one of this test process (generated on first use).
    static const TestCa& shared();

    const std::string& dir() const { return dir_; }
    std::string ca_file() const { return dir_ + "/ca.crt"; }
    std::string server_cert() const { return dir_ + "/server.crt"; }
    std::string server_key() const { return dir_ + "/server.key"; }
    std::string client_cert() const { return dir_ + "/client.crt"; }
    std::string client_key() const { return dir_ + "/client.key"; }
    /// The other CA, and a client certificate it signed (refused by a server of ca_file()).
    std::string other_ca_file() const { return dir_ + "/other-ca.crt"; }
    std::string other_client_cert() const { return dir_ + "/other-client.crt"; }
    std::string other_client_key() const { return dir_ + "/other-client.key"; }
    /// A server certificate of ca_file() naming only "elsewhere.example" (name mismatch).
    std::string elsewhere_cert() const { return dir_ + "/elsewhere.crt"; }
    std::string elsewhere_key() const { return dir_ + "/elsewhere.key"; }

  private:
    std::string dir_;
};

struct TlsRedisOptions {
    bool require_client_cert = false;  ///< --tls-auth-clients yes
    std::string cert;                  ///< server certificate; empty: TestCa's server.crt
    std::string key;
    std::string password;  ///< --requirepass when not empty
};

/// A redis-server on 127.0.0.1 with a TLS port only (plain port 0), no persistence,
/// maxmemory-policy noeviction. Stopped (SHUTDOWN NOSAVE) in the destructor.
class TlsRedis {
  public:
    explicit TlsRedis(const TestCa& ca = TestCa::shared(), TlsRedisOptions options = {});
    ~TlsRedis();
    TlsRedis(const TlsRedis&) = delete;
    TlsRedis& operator=(const TlsRedis&) = delete;

    int port() const { return port_; }
    /// rediss://127.0.0.1:<port>/0 (with the password when one is set).
    std::string url(const std::string& host = "127.0.0.1") const;
    /// REDIS_URL plus REDIS_TLS_CA_FILE (and the client certificate when the server asks for
    /// one): what a process needs to talk to this server.
    std::map<std::string, std::string> env() const;

    void start();
    void stop();
    /// Does it answer PING over TLS?
    bool answers() const;

  private:
    std::string cli() const;
    const TestCa& ca_;
    TlsRedisOptions options_;
    int port_;
    std::string dir_;
};

}  // namespace mqtest
