// rediss:// against a redis-server that speaks only TLS, with a CA made at test time:
// the blocking and the asynchronous connection, certificate and name verification,
// client certificates, plain Redis behind a TLS URL, bad files, and a restart.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <memory>

#include "harness.hpp"
#include "mq/config/config.hpp"
#include "mq/redis/async_connection.hpp"
#include "mq/redis/client.hpp"
#include "mq/redis/tls.hpp"
#include "private_services.hpp"
#include "test_ca.hpp"

using Catch::Matchers::Contains;
using mq::redis::AsyncConnection;
using mq::redis::Connection;
using mq::redis::Endpoint;
using mq::redis::Pipeline;
using mq::redis::Reply;
using mqtest::TestCa;
using mqtest::TlsRedis;
using namespace std::chrono_literals;

namespace {

Endpoint tls_endpoint(const TlsRedis& server, const std::string& ca,
                      const std::string& host = "127.0.0.1") {
    Endpoint ep = mq::redis::parse_url(server.url(host));
    ep.tls_options.ca_file = ca;
    return ep;
}

/// The BackendUnavailable a connection attempt to `ep` throws (fails the test otherwise).
std::string connect_failure(Endpoint ep, mq::redis::ConnectOptions options = {}) {
    try {
        Connection c(std::move(ep), options);
        c.command({"PING"});
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
        return e.what();
    }
    FAIL("the connection should have been refused");
    return {};
}

/// What an AsyncConnection to `ep` answers to one PING: "PONG" or the error text.
std::string async_ping(Endpoint ep, mq::redis::ConnectOptions options = {}) {
    auto ioc = std::make_shared<boost::asio::io_context>(1);
    AsyncConnection conn(ioc, std::move(ep), options);
    Pipeline p;
    p.add({"PING"});
    std::string out;
    bool done = false;
    conn.execute(p, [&](std::vector<Reply> replies, std::exception_ptr error) {
        done = true;
        if (error) {
            try {
                std::rethrow_exception(error);
            } catch (const mq::Error& e) {
                CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
                out = e.what();
            }
            return;
        }
        out = replies.at(0).str;
    });
    auto until = std::chrono::steady_clock::now() + 10s;
    while (!done && std::chrono::steady_clock::now() < until) ioc->run_one_for(50ms);
    REQUIRE(done);
    return out;
}

}  // namespace

TEST_CASE("rediss_connection_runs_commands_pipelines_and_scripts_over_verified_tls",
          "[security][tls][redis]") {
    TlsRedis server;
    Connection c(tls_endpoint(server, TestCa::shared().ca_file()));
    c.command({"SET", "tls:k", std::string(100000, 'x')});  // bigger than one TLS record
    CHECK(c.command({"STRLEN", "tls:k"}).as_integer() == 100000);
    Pipeline p;
    for (int i = 0; i < 50; ++i) p.add({"INCR", "tls:n"});
    auto replies = c.execute(p);
    REQUIRE(replies.size() == 50);
    CHECK(replies.back().as_integer() == 50);
    mq::redis::Script script("return redis.call('GET', KEYS[1])");
    CHECK(c.eval(script, {"tls:n"}, {}).as_string() == "50");
    c.check_server_policy();
    // The server has no plain port (--port 0): every byte above went through TLS.
    auto info = c.command({"CONFIG", "GET", "port"});
    CHECK(info.elements.at(1).str == "0");
}

TEST_CASE("rediss_checks_a_dns_name_and_sends_it_as_sni", "[security][tls][redis]") {
    TlsRedis server;
    Connection c(tls_endpoint(server, TestCa::shared().ca_file(), "localhost"));
    CHECK(c.command({"PING"}).str == "PONG");
    CHECK(async_ping(tls_endpoint(server, TestCa::shared().ca_file(), "localhost")) == "PONG");
}

TEST_CASE("rediss_refuses_a_server_whose_certificate_another_ca_signed", "[security][tls][redis]") {
    TlsRedis server;
    const auto started = std::chrono::steady_clock::now();
    std::string err = connect_failure(tls_endpoint(server, TestCa::shared().other_ca_file()));
    CHECK_THAT(err,
               Contains("TLS handshake with Redis at 127.0.0.1:" + std::to_string(server.port()) +
                        " failed") &&
                   Contains("certificate verification failed") && Contains("REDIS_TLS_CA_FILE"));
    // Without a CA setting the system's CAs are used, and they do not know the test CA.
    err = connect_failure(tls_endpoint(server, ""));
    CHECK_THAT(err, Contains("certificate verification failed"));
    CHECK(std::chrono::steady_clock::now() - started < 5s);

    err = async_ping(tls_endpoint(server, TestCa::shared().other_ca_file()));
    CHECK_THAT(err, Contains("TLS handshake") && Contains("certificate verification failed"));
}

TEST_CASE("rediss_refuses_a_certificate_that_names_another_host", "[security][tls][redis]") {
    const TestCa& ca = TestCa::shared();
    TlsRedis server;
    Endpoint ep = tls_endpoint(server, ca.ca_file());
    ep.tls_options.server_name = "cache.example";
    CHECK_THAT(connect_failure(ep), Contains("hostname mismatch"));
    CHECK_THAT(async_ping(ep), Contains("hostname mismatch"));

    // A certificate of the right CA for elsewhere.example only: refused at 127.0.0.1 (an
    // address is checked against the IP SANs), accepted when that name is configured.
    TlsRedis elsewhere(ca, {false, ca.elsewhere_cert(), ca.elsewhere_key(), ""});
    Endpoint by_ip = tls_endpoint(elsewhere, ca.ca_file());
    CHECK_THAT(connect_failure(by_ip), Contains("IP address mismatch"));
    CHECK_THAT(async_ping(by_ip), Contains("IP address mismatch"));
    by_ip.tls_options.server_name = "elsewhere.example";
    Connection c(by_ip);
    CHECK(c.command({"PING"}).str == "PONG");
    CHECK(async_ping(by_ip) == "PONG");
}

TEST_CASE("rediss_client_certificate_when_the_server_requires_one", "[security][tls][redis]") {
    const TestCa& ca = TestCa::shared();
    TlsRedis server(ca, {true, "", "", ""});
    Endpoint ep = tls_endpoint(server, ca.ca_file());

    // Without a certificate: refused while connecting (TLS 1.3 reports it after the
    // handshake; the connection's first round trip turns it into a connect error).
    std::string err = connect_failure(ep);
    CHECK_THAT(err, Contains("Redis at 127.0.0.1:" + std::to_string(server.port())));
    CHECK_THAT(err, Contains("certificate"));
    CHECK_THAT(async_ping(ep), Contains("certificate"));

    // A certificate another CA signed: refused as well.
    Endpoint other = ep;
    other.tls_options.cert_file = ca.other_client_cert();
    other.tls_options.key_file = ca.other_client_key();
    CHECK_THAT(connect_failure(other), Contains("Redis at 127.0.0.1"));
    CHECK(async_ping(other) != "PONG");

    ep.tls_options.cert_file = ca.client_cert();
    ep.tls_options.key_file = ca.client_key();
    Connection c(ep);
    CHECK(c.command({"PING"}).str == "PONG");
    CHECK(async_ping(ep) == "PONG");
}

TEST_CASE("rediss_with_a_password_and_a_database_authenticates_inside_tls",
          "[security][tls][redis]") {
    TlsRedis server(TestCa::shared(), {false, "", "", "s3cret"});
    Endpoint ep =
        mq::redis::parse_url("rediss://:s3cret@127.0.0.1:" + std::to_string(server.port()) + "/2");
    ep.tls_options.ca_file = TestCa::shared().ca_file();
    Connection c(ep);
    c.command({"SET", "db2", "yes"});
    CHECK(c.command({"GET", "db2"}).str == "yes");
    CHECK(async_ping(ep) == "PONG");
    ep.password = "wrong";
    CHECK_THAT(connect_failure(ep), Contains("refused authentication"));
}

TEST_CASE("rediss_url_to_plain_redis_fails_within_the_connect_timeout", "[security][tls][redis]") {
    mqtest::PrivateRedis plain;
    Endpoint ep = mq::redis::parse_url("rediss://127.0.0.1:" + std::to_string(plain.port()));
    ep.tls_options.ca_file = TestCa::shared().ca_file();
    mq::redis::ConnectOptions options;
    options.connect_timeout = 700ms;
    auto started = std::chrono::steady_clock::now();
    std::string err = connect_failure(ep, options);
    CHECK_THAT(err, Contains("Redis at 127.0.0.1:" + std::to_string(plain.port())));
    CHECK_THAT(err, Contains("TLS"));
    started = std::chrono::steady_clock::now();
    CHECK_THAT(async_ping(ep, options), Contains("TLS"));
    CHECK(std::chrono::steady_clock::now() - started < 3s);

    // And the other way round: redis:// to a TLS-only port is a clean error, not a hang.
    TlsRedis server;
    Endpoint clear = mq::redis::parse_url("redis://127.0.0.1:" + std::to_string(server.port()));
    options.command_timeout = 700ms;
    started = std::chrono::steady_clock::now();
    CHECK_THAT(connect_failure(clear, options), Contains("Redis at 127.0.0.1"));
    CHECK(std::chrono::steady_clock::now() - started < 3s);
}

TEST_CASE("rediss_settings_with_unusable_files_are_configuration_errors",
          "[security][tls][redis]") {
    const TestCa& ca = TestCa::shared();
    auto config_error = [](std::map<std::string, std::string> env) {
        mq::Config c = mq::load_config("", env);
        try {
            mq::redis::endpoint_from_config(c);
        } catch (const mq::ValidationError& e) {
            return std::string(e.what());
        }
        FAIL("endpoint_from_config should have refused the settings");
        return std::string();
    };
    const std::string url = "rediss://127.0.0.1:1/0";
    CHECK_THAT(
        config_error({{"REDIS_URL", url}, {"REDIS_TLS_CA_FILE", "/nonexistent/ca.pem"}}),
        Contains("REDIS_TLS_CA_FILE=/nonexistent/ca.pem") && Contains("No such file or directory"));
    const std::string junk = mqtest::temp_file("not a certificate\n");
    CHECK_THAT(config_error({{"REDIS_URL", url}, {"REDIS_TLS_CA_FILE", junk}}),
               Contains("REDIS_TLS_CA_FILE=" + junk) && Contains("no CA certificate"));
    CHECK_THAT(config_error({{"REDIS_URL", url}, {"REDIS_TLS_CA_DIR", ca.ca_file()}}),
               Contains("REDIS_TLS_CA_DIR") && Contains("not a directory"));
    CHECK_THAT(config_error({{"REDIS_URL", url}, {"REDIS_TLS_CERT_FILE", ca.client_cert()}}),
               Contains("REDIS_TLS_KEY_FILE"));
    CHECK_THAT(config_error({{"REDIS_URL", url},
                             {"REDIS_TLS_CERT_FILE", ca.client_cert()},
                             {"REDIS_TLS_KEY_FILE", ca.other_client_key()}}),
               Contains("does not belong"));
    CHECK_THAT(config_error({{"REDIS_URL", url},
                             {"REDIS_TLS_CERT_FILE", junk},
                             {"REDIS_TLS_KEY_FILE", ca.client_key()}}),
               Contains("REDIS_TLS_CERT_FILE=" + junk));
    // TLS settings with a clear-text URL would silently not protect anything.
    CHECK_THAT(
        config_error({{"REDIS_URL", "redis://127.0.0.1:1/0"}, {"REDIS_TLS_CA_FILE", ca.ca_file()}}),
        Contains("rediss://"));
    // A good set loads.
    mq::Config good = mq::load_config("", {{"REDIS_URL", url},
                                           {"REDIS_TLS_CA_FILE", ca.ca_file()},
                                           {"REDIS_TLS_CERT_FILE", ca.client_cert()},
                                           {"REDIS_TLS_KEY_FILE", ca.client_key()},
                                           {"REDIS_TLS_SERVER_NAME", "localhost"}});
    Endpoint ep = mq::redis::endpoint_from_config(good);
    CHECK(ep.tls);
    CHECK(ep.tls_context != nullptr);
    CHECK(ep.tls_name() == "localhost");
}

TEST_CASE("rediss_connections_reconnect_after_a_redis_restart", "[security][tls][redis]") {
    TlsRedis server;
    Endpoint ep = tls_endpoint(server, TestCa::shared().ca_file());
    Connection c(ep);
    c.command({"SET", "before", "1"});

    auto ioc = std::make_shared<boost::asio::io_context>(1);
    AsyncConnection async(ioc, ep);
    auto ping = [&] {
        Pipeline p;
        p.add({"PING"});
        std::string out;
        bool done = false;
        async.execute(p, [&](std::vector<Reply> r, std::exception_ptr e) {
            done = true;
            out = e ? "error" : r.at(0).str;
        });
        auto until = std::chrono::steady_clock::now() + 10s;
        while (!done && std::chrono::steady_clock::now() < until) ioc->run_one_for(50ms);
        return out;
    };
    REQUIRE(ping() == "PONG");

    server.stop();
    CHECK_THROWS_AS(c.command({"PING"}), mq::BackendUnavailable);
    CHECK(ping() == "error");
    server.start();
    // The next call connects afresh, with a new TLS session.
    CHECK(c.command({"PING"}).str == "PONG");
    CHECK(ping() == "PONG");
}
