#include "tls_files.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "harness.hpp"

namespace mqtest {

namespace {

void run(const std::string& command) {
    int rc = std::system((command + " >/dev/null 2>&1").c_str());
    INFO(command);
    REQUIRE(rc == 0);
}

}  // namespace

TlsFiles::TlsFiles() {
    dir = (std::filesystem::temp_directory_path() / unique_name("tls")).string();
    std::filesystem::create_directories(dir);
    ca_cert = dir + "/ca.pem";
    server_cert = dir + "/server.pem";
    server_key = dir + "/server.key";
    other_key = dir + "/other.key";
    const std::string ca_key = dir + "/ca.key";
    const std::string csr = dir + "/server.csr";
    const std::string ext = dir + "/server.ext";
    std::ofstream(ext) << "basicConstraints=CA:FALSE\n"
                          "keyUsage=digitalSignature,keyEncipherment\n"
                          "extendedKeyUsage=serverAuth\n"
                          "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    // EC P-256 keys: fast to make, and what a modern server uses.
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj '/CN=mq test CA' -keyout " +
        ca_key + " -out " + ca_cert);
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-subj '/CN=127.0.0.1' -keyout " +
        server_key + " -out " + csr);
    run("openssl x509 -req -in " + csr + " -CA " + ca_cert + " -CAkey " + ca_key +
        " -CAcreateserial -days 2 -extfile " + ext + " -out " + server_cert);
    run("openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:prime256v1 -out " + other_key);
}

TlsFiles::~TlsFiles() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}

}  // namespace mqtest
