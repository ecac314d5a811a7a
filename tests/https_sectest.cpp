// HTTPS in mq-api (docs/security.md, "HTTPS"): with a certificate and key it serves TLS
// only, verified by curl against a CA made at test time; plain HTTP to that port gets a
// clean refusal; TLS below 1.2 and clients that never finish a handshake are refused;
// a missing file or a key that does not match is a configuration error at startup.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"
#include "test_ca.hpp"

using namespace mqtest;
using namespace std::chrono_literals;

namespace {

struct CurlResult {
    int exit_code = -1;
    int status = 0;  ///< HTTP status (0 when none)
    std::string body;
};

/// curl with `args` against https://127.0.0.1:port + target; prints the body then the status.
CurlResult curl(const std::vector<std::string>& args, int port, const std::string& target) {
    std::string cmd = "curl -sS --max-time 10 -w '\\n%{http_code}'";
    for (const auto& a : args) cmd += " '" + a + "'";
    cmd += " 'https://127.0.0.1:" + std::to_string(port) + target + "' 2>&1";
    CurlResult r;
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p);
    std::array<char, 4096> buf{};
    std::string out;
    while (auto n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
    int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    auto nl = out.rfind('\n');
    if (nl != std::string::npos) {
        r.body = out.substr(0, nl);
        r.status = std::atoi(out.c_str() + nl + 1);
    } else {
        r.body = out;
    }
    return r;
}

/// Waits until the process has exited; its exit status (or -1 when it did not exit).
int wait_exit(ApiProcess& api, std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        if (!api.running()) return api.terminate();
        std::this_thread::sleep_for(50ms);
    }
    return -1;
}

}  // namespace

TEST_CASE("mq_api_serves_https_verified_against_the_test_ca", "[https]") {
    const TestCa& tls = TestCa::shared();
    ApiSession s(ApiOptions{
        {}, {}, {}, {{"TLS_CERT_FILE", tls.server_cert()}, {"TLS_KEY_FILE", tls.server_key()}}});
    const std::string auth = "Authorization: Bearer " + s.token;
    auto created = curl({"--cacert", tls.ca_file(), "-H", auth, "-H",
                         "Content-Type: application/json", "-d", R"({"name":"secure"})"},
                        s.api.port(), "/api/v1/mq/queues");
    INFO(created.body);
    REQUIRE(created.exit_code == 0);
    CHECK(created.status == 201);
    for (int i = 0; i < 3; ++i) {
        auto published =
            curl({"--cacert", tls.ca_file(), "-H", auth, "-H", "Content-Type: application/json",
                  "-d", R"({"queue":"secure","payload":{"n":)" + std::to_string(i) + "}}"},
                 s.api.port(), "/api/v1/mq/publish");
        INFO(published.body);
        CHECK(published.exit_code == 0);
        CHECK(published.status == 201);
    }
    CHECK(s.api.log().find("HTTPS") != std::string::npos);

    // Without the CA curl refuses the certificate (exit 60): it is really checked.
    auto unverified = curl({}, s.api.port(), "/api/v1/mq/health");
    CHECK(unverified.exit_code == 60);
    // TLS 1.1 and older are refused by the server.
    auto old = curl({"--cacert", tls.ca_file(), "--tlsv1", "--tls-max", "1.1"}, s.api.port(),
                    "/api/v1/mq/health");
    CHECK(old.exit_code != 0);
    CHECK(old.status == 0);
    // TLS 1.3 works.
    auto modern = curl({"--cacert", tls.ca_file(), "--tlsv1.3"}, s.api.port(), "/api/v1/mq/health");
    CHECK(modern.exit_code == 0);
    CHECK(modern.status != 0);

    // Plain HTTP to the TLS port: a clean 400 saying so, and the connection closes.
    auto plain = http_request(s.api.port(), "GET", "/api/v1/mq/queues", "",
                              {{"Authorization", "Bearer " + s.token}}, 5s);
    CHECK(plain.status == 400);
    CHECK(plain.error_code() == "MQ_HTTPS_REQUIRED");
    // And the server goes on serving HTTPS.
    auto after = curl({"--cacert", tls.ca_file(), "-H", auth}, s.api.port(), "/api/v1/mq/queues");
    CHECK(after.status == 200);
}

TEST_CASE("a_client_that_never_finishes_the_tls_handshake_is_closed", "[https]") {
    const TestCa& tls = TestCa::shared();
    ApiSession s(ApiOptions{{},
                            {},
                            {},
                            {{"TLS_CERT_FILE", tls.server_cert()},
                             {"TLS_KEY_FILE", tls.server_key()},
                             {"TLS_HANDSHAKE_TIMEOUT_MS", "700"}}});
    auto connect = [&] {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(s.api.port()));
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        return fd;
    };
    auto closed_within = [](int fd, std::chrono::milliseconds timeout) {
        auto until = std::chrono::steady_clock::now() + timeout;
        char buf[512];
        while (std::chrono::steady_clock::now() < until) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            if (::recv(fd, buf, sizeof buf, 0) <= 0) return true;
        }
        return false;
    };
    int silent = connect();   // says nothing at all
    int partial = connect();  // starts a TLS record and stops
    REQUIRE(::send(partial, "\x16\x03\x01\x02\x00\x01", 6, MSG_NOSIGNAL) == 6);
    auto t0 = std::chrono::steady_clock::now();
    CHECK(closed_within(silent, 3s));
    CHECK(closed_within(partial, 3s));
    CHECK(std::chrono::steady_clock::now() - t0 < 2500ms);
    ::close(silent);
    ::close(partial);
    auto ok = curl({"--cacert", tls.ca_file()}, s.api.port(), "/api/v1/mq/health");
    CHECK(ok.exit_code == 0);
}

TEST_CASE("a_bad_certificate_or_key_is_a_configuration_error_at_startup", "[https]") {
    const TestCa& tls = TestCa::shared();
    struct Case {
        std::map<std::string, std::string> env;
        std::string says;
    };
    std::vector<Case> cases = {
        {{{"TLS_CERT_FILE", tls.server_cert()}, {"TLS_KEY_FILE", tls.other_client_key()}},
         "TLS_KEY_FILE"},
        {{{"TLS_CERT_FILE", tls.dir() + "/missing.pem"}, {"TLS_KEY_FILE", tls.server_key()}},
         "cannot read"},
        {{{"TLS_CERT_FILE", tls.server_key()}, {"TLS_KEY_FILE", tls.server_key()}},
         "TLS_CERT_FILE"},
        {{{"TLS_CERT_FILE", tls.server_cert()}}, "needs both TLS_CERT_FILE and TLS_KEY_FILE"},
        {{{"TLS_CERT_FILE", tls.server_cert()},
          {"TLS_KEY_FILE", tls.server_key()},
          {"TLS_CA_FILE", tls.dir() + "/nope.pem"}},
         "TLS_CA_FILE"},
    };
    for (auto& c : cases) {
        ApiOptions options;
        options.env = c.env;
        options.wait_ready = false;
        ApiProcess api(options);
        int status = wait_exit(api, 15s);
        INFO(api.log());
        CHECK(status == 2);
        CHECK(api.log().find(c.says) != std::string::npos);
        CHECK(api.log().find("mq-api: ") != std::string::npos);
    }
}
