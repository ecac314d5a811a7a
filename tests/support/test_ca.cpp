#include "test_ca.hpp"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "harness.hpp"

namespace mqtest {

namespace {

int shell(const std::string& command) {
    int rc = std::system(command.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string temp_dir(const char* stem) {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / (std::string(stem) + "-XXXXXX")).string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    return tmpl;
}

// openssl in `dir`, quiet unless it fails.
void openssl(const std::string& dir, const std::string& args) {
    const std::string cmd = "cd '" + dir + "' && openssl " + args + " >>openssl.log 2>&1";
    INFO(cmd);
    REQUIRE(shell(cmd) == 0);
}

constexpr const char* kNewKey = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

void make_ca(const std::string& dir, const std::string& name, const std::string& cn) {
    openssl(dir, std::string("req -x509 ") + kNewKey + " -keyout " + name + ".key -out " + name +
                     ".crt -days 2 -subj '/CN=" + cn +
                     "' -addext basicConstraints=critical,CA:TRUE"
                     " -addext keyUsage=critical,keyCertSign,cRLSign");
}

// A leaf certificate `name` signed by CA `ca`, with the given extensions.
void make_leaf(const std::string& dir, const std::string& ca, const std::string& name,
               const std::string& cn, const std::string& extensions) {
    std::ofstream(dir + "/" + name + ".ext") << extensions;
    openssl(dir, std::string("req ") + kNewKey + " -keyout " + name + ".key -out " + name +
                     ".csr -subj '/CN=" + cn + "'");
    openssl(dir, "x509 -req -in " + name + ".csr -CA " + ca + ".crt -CAkey " + ca +
                     ".key -CAcreateserial -days 2 -out " + name + ".crt -extfile " + name +
                     ".ext");
    ::chmod((dir + "/" + name + ".key").c_str(), 0600);
}

}  // namespace

TestCa::TestCa() : dir_(temp_dir("mq-test-ca")) {
    const std::string server_ext =
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n";
    const std::string client_ext =
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n";
    make_ca(dir_, "ca", "mq test CA");
    make_leaf(dir_, "ca", "server", "localhost",
              server_ext + "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    make_leaf(dir_, "ca", "client", "mq-client", client_ext);
    make_leaf(dir_, "ca", "elsewhere", "elsewhere.example",
              server_ext + "subjectAltName=DNS:elsewhere.example\n");
    make_ca(dir_, "other-ca", "another CA");
    make_leaf(dir_, "other-ca", "other-client", "mq-client", client_ext);
    // Readable by a server that runs as another user (PostgreSQL as postgres when we are
    // root): the directory is searchable, certificates world-readable; keys stay 0600.
    ::chmod(dir_.c_str(), 0755);
    for (const char* crt : {"ca", "server", "client", "elsewhere", "other-ca", "other-client"})
        ::chmod((dir_ + "/" + crt + ".crt").c_str(), 0644);
}

TestCa::~TestCa() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

const TestCa& TestCa::shared() {
    static TestCa ca;
    return ca;
}

// ---- TlsRedis ----------------------------------------------------------------------------

TlsRedis::TlsRedis(const TestCa& ca, TlsRedisOptions options)
    : ca_(ca), options_(std::move(options)), port_(dead_port()), dir_(temp_dir("mq-tls-redis")) {
    if (options_.cert.empty()) {
        options_.cert = ca_.server_cert();
        options_.key = ca_.server_key();
    }
    start();
}

TlsRedis::~TlsRedis() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::string TlsRedis::url(const std::string& host) const {
    std::string auth = options_.password.empty() ? "" : ":" + options_.password + "@";
    return "rediss://" + auth + host + ":" + std::to_string(port_) + "/0";
}

std::map<std::string, std::string> TlsRedis::env() const {
    std::map<std::string, std::string> e{{"REDIS_URL", url()},
                                         {"REDIS_TLS_CA_FILE", ca_.ca_file()}};
    if (options_.require_client_cert) {
        e["REDIS_TLS_CERT_FILE"] = ca_.client_cert();
        e["REDIS_TLS_KEY_FILE"] = ca_.client_key();
    }
    return e;
}

std::string TlsRedis::cli() const {
    std::string c = "redis-cli --tls --cacert '" + ca_.ca_file() + "' --cert '" +
                    ca_.client_cert() + "' --key '" + ca_.client_key() + "' -h 127.0.0.1 -p " +
                    std::to_string(port_);
    if (!options_.password.empty()) c += " --no-auth-warning -a '" + options_.password + "'";
    return c;
}

bool TlsRedis::answers() const { return shell(cli() + " ping 2>/dev/null | grep -q PONG") == 0; }

void TlsRedis::start() {
    std::string cmd = "redis-server --bind 127.0.0.1 --port 0 --tls-port " + std::to_string(port_) +
                      " --tls-cert-file '" + options_.cert + "' --tls-key-file '" + options_.key +
                      "' --tls-ca-cert-file '" + ca_.ca_file() + "' --tls-auth-clients " +
                      (options_.require_client_cert ? "yes" : "no") +
                      " --save '' --appendonly no --maxmemory-policy noeviction --daemonize yes"
                      " --dir " +
                      dir_ + " --pidfile " + dir_ + "/redis.pid --logfile " + dir_ + "/redis.log";
    if (!options_.password.empty()) cmd += " --requirepass '" + options_.password + "'";
    REQUIRE(shell(cmd) == 0);
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!answers() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    INFO("redis log: " << dir_ << "/redis.log");
    REQUIRE(answers());
}

void TlsRedis::stop() {
    shell(cli() + " shutdown nosave >/dev/null 2>&1");
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (answers() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

}  // namespace mqtest
