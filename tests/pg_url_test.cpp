// describe_url only: how a DATABASE_URL appears in messages. Nothing here connects.

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
