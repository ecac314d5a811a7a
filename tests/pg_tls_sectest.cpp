// PostgreSQL over TLS: DATABASE_URL's sslmode, sslrootcert, sslcert and sslkey go to libpq
// unchanged. A private PostgreSQL with ssl=on and the test CA's server certificate:
// verify-full with the right root certificate connects, with another CA's it is refused
// with a short reason, and mqctl reports that as "backend unavailable".
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "harness.hpp"
#include "mq/pg/database.hpp"
#include "private_services.hpp"
#include "test_ca.hpp"

using Catch::Matchers::Contains;

namespace {

/// The services' DATABASE_URL (postgresql://postgres@127.0.0.1:<port>/mq) with a query.
std::string with_query(const std::string& url, const std::string& query) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + query;
}

/// Turns on ssl in the running server: certificate and key readable by the server's user
/// (postgres when we are root; PostgreSQL refuses a key others can read), then a reload.
void enable_ssl(const std::string& database_url, const mqtest::TestCa& ca) {
    const std::string dir = ca.dir() + "/pg";
    std::filesystem::create_directories(dir);
    const std::string owner = getuid() == 0 ? "-o postgres " : "";
    REQUIRE(mqtest::run_shell("install -m 0755 -d " + owner + dir + " && install -m 0644 " + owner +
                              ca.server_cert() + " " + dir + "/server.crt && install -m 0600 " +
                              owner + ca.server_key() + " " + dir + "/server.key") == 0);
    mq::pg::Database db(database_url);
    auto& cx = db.connection();
    pqxx::nontransaction tx(cx);
    tx.exec("ALTER SYSTEM SET ssl_cert_file = " + tx.quote(dir + "/server.crt"));
    tx.exec("ALTER SYSTEM SET ssl_key_file = " + tx.quote(dir + "/server.key"));
    tx.exec("ALTER SYSTEM SET ssl_min_protocol_version = 'TLSv1.2'");
    tx.exec("ALTER SYSTEM SET ssl = on");
    tx.exec("SELECT pg_reload_conf()");
}

}  // namespace

TEST_CASE("database_url_sslmode_verify_full_connects_only_with_the_right_root_certificate",
          "[security][tls][pg]") {
    const mqtest::TestCa& ca = mqtest::TestCa::shared();
    mqtest::PrivateServices services;
    enable_ssl(services.database_url(), ca);

    const std::string good =
        with_query(services.database_url(), "sslmode=verify-full&sslrootcert=" + ca.ca_file());
    bool on = mqtest::eventually(
        [&] {
            try {
                mq::pg::Database db(good);
                return true;
            } catch (const mq::Error&) {
                return false;
            }
        },
        std::chrono::seconds(10));
    REQUIRE(on);
    mq::pg::Database db(good);
    auto in_tls = db.transact([](pqxx::work& tx) {
        return tx.exec1("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0].as<bool>();
    });
    CHECK(in_tls);
    CHECK(mq::pg::describe_url(good) == mq::pg::describe_url(services.database_url()));

    // A client certificate and key are passed through unchanged as well (the server does
    // not ask for one, so it is simply offered).
    mq::pg::Database with_cert(
        with_query(good, "sslcert=" + ca.client_cert() + "&sslkey=" + ca.client_key()));
    CHECK(with_cert.transact([](pqxx::work& tx) { return tx.exec1("SELECT 1")[0].as<int>(); }) ==
          1);

    // Another CA: refused, with libpq's one-line reason and no more.
    const std::string wrong = with_query(services.database_url(),
                                         "sslmode=verify-full&sslrootcert=" + ca.other_ca_file());
    try {
        mq::pg::Database refused(wrong);
        FAIL("a server certificate of another CA was accepted");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
        const std::string what = e.what();
        CHECK_THAT(what, Contains("cannot reach PostgreSQL at 127.0.0.1:") &&
                             Contains("certificate verify failed"));
        CHECK(what.find('\n') == std::string::npos);
    }

    // A name the certificate does not carry: refused by verify-full.
    std::string by_name = services.database_url();
    by_name.replace(by_name.find("127.0.0.1"), 9, "localhost");
    mq::pg::Database ok_by_name(
        with_query(by_name, "sslmode=verify-full&sslrootcert=" + ca.ca_file()));
    std::string mismatched = good;
    mismatched += "&hostaddr=127.0.0.1";
    mismatched.replace(mismatched.find("127.0.0.1"), 9, "elsewhere.example");
    CHECK_THROWS_WITH(mq::pg::Database(mismatched), Contains("does not match host name"));

    // mqctl with the wrong root certificate: backend unavailable (exit 5), one line.
    auto r = mqtest::mqctl({"token", "list"}, {{"DATABASE_URL", wrong}});
    CHECK(r.status == 5);
    CHECK_THAT(r.err, Contains("certificate verify failed"));
    r = mqtest::mqctl({"db", "migrate"}, {{"DATABASE_URL", good}});
    INFO(r.err);
    CHECK(r.status == 0);
}
