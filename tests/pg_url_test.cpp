// describe_url, connection_string and scrub: how a DATABASE_URL appears in messages and
// what mq hands libpq. Nothing here connects.

#include <catch2/catch.hpp>
#include <string>

#include "mq/pg/database.hpp"

using mq::pg::describe_url;

TEST_CASE("describe_url_gives_host_and_port_of_a_postgresql_url", "[pg_url]") {
    CHECK(describe_url("postgresql://u:p@host:5433/db") == "host:5433");
    CHECK(describe_url("postgres://u@db.internal:6432/mq?sslmode=require") == "db.internal:6432");
}

TEST_CASE("describe_url_never_contains_the_password", "[pg_url]") {
    for (const char* url :
         {"postgresql://u:hunter2@host:5433/db", "postgresql://u:hunter2@host/db",
          "postgresql://u:hunter2@host", "postgresql://u:hunter2@[::1]:5433/db",
          "host=db port=5433 user=u password=hunter2 dbname=mq", "password=hunter2 host=db"}) {
        const std::string described = describe_url(url);
        INFO(url << " -> " << described);
        CHECK(described.find("hunter2") == std::string::npos);
        CHECK(described.find('@') == std::string::npos);
    }
}

TEST_CASE("describe_url_defaults_the_port_to_5432", "[pg_url]") {
    CHECK(describe_url("postgresql://u:p@host/db") == "host:5432");
    CHECK(describe_url("postgresql://host") == "host:5432");
    CHECK(describe_url("postgresql://u:p@host?connect_timeout=5") == "host:5432");
}

TEST_CASE("describe_url_defaults_the_host_to_localhost", "[pg_url]") {
    CHECK(describe_url("postgresql:///mq") == "localhost:5432");
    CHECK(describe_url("postgresql://u@:5433/mq") == "localhost:5433");
    CHECK(describe_url("") == "localhost:5432");
}

TEST_CASE("describe_url_keeps_a_bracketed_ipv6_host", "[pg_url]") {
    CHECK(describe_url("postgresql://u:p@[::1]:5433/db") == "[::1]:5433");
    CHECK(describe_url("postgresql://u:p@[::1]/db") == "[::1]:5432");
}

TEST_CASE("describe_url_reads_the_key_value_form", "[pg_url]") {
    CHECK(describe_url("host=db.internal port=5433 dbname=mq user=u password=p") ==
          "db.internal:5433");
    CHECK(describe_url("dbname=mq host=db") == "db:5432");
    CHECK(describe_url("port=6000 dbname=mq") == "localhost:6000");
    CHECK(describe_url("dbname=mq") == "localhost:5432");
}

TEST_CASE("connection_string_adds_bounded_waits_the_url_does_not_set", "[pg_url]") {
    auto s = mq::pg::connection_string("postgresql://u:p%40ss@db.internal:6432/mq?sslmode=disable");
    CHECK_THAT(s, Catch::Contains("host='db.internal'") && Catch::Contains("port='6432'") &&
                      Catch::Contains("password='p@ss'") && Catch::Contains("dbname='mq'") &&
                      Catch::Contains("sslmode='disable'") &&
                      Catch::Contains("connect_timeout=10") &&
                      Catch::Contains("keepalives_idle=30"));
    // What the URL sets wins; key=value works as well; quotes and backslashes survive.
    auto own = mq::pg::connection_string("host=db connect_timeout=3 password='it\\'s\\\\x'");
    CHECK_THAT(own,
               Catch::Contains("connect_timeout='3'") && !Catch::Contains("connect_timeout=10"));
    CHECK_THAT(own, Catch::Contains("password='it\\'s\\\\x'"));
}

TEST_CASE("connection_string_refuses_what_libpq_cannot_read_without_echoing_it", "[pg_url]") {
    for (const char* url : {"postgresql://mq:ab%zz12@db/mq", "postgresq://mq:hunter2@db/mq",
                            "postgresql://mq:hunter2@db/mq?nosuchoption=1", "host"}) {
        INFO(url);
        try {
            mq::pg::connection_string(url);
            FAIL("accepted");
        } catch (const mq::ValidationError& e) {
            CHECK(std::string(e.what()).find("hunter2") == std::string::npos);
            CHECK(std::string(e.what()).find("ab%zz12") == std::string::npos);
            CHECK(e.details().value("field", std::string()) == "DATABASE_URL");
            CHECK(mq::exit_status(e.code()) == 2);
        }
    }
}

TEST_CASE("scrub_removes_the_password_and_the_url_from_a_message", "[pg_url]") {
    const std::string url = "postgresql://mq:hunter%212@db/mq";
    CHECK(mq::pg::scrub("bad token in \"" + url + "\"", url) == "bad token in \"***\"");
    CHECK(mq::pg::scrub("password hunter!2 refused", url) == "password *** refused");
    CHECK(mq::pg::scrub("raw hunter%212 here", url) == "raw *** here");
    CHECK(mq::pg::scrub("nothing secret", url) == "nothing secret");
}
