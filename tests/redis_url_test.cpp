// REDIS_URL parsing only; nothing here connects to a server.

#include <catch2/catch.hpp>
#include <string>

#include "mq/config/config.hpp"
#include "mq/error.hpp"
#include "mq/redis/client.hpp"

using Catch::Matchers::Contains;
using mq::redis::parse_url;

TEST_CASE("redis_url_with_only_a_host_takes_the_defaults", "[redis_url]") {
    const auto ep = parse_url("redis://cache");
    CHECK(ep.host == "cache");
    CHECK(ep.port == 6379);
    CHECK(ep.db == 0);
    CHECK(ep.username.empty());
    CHECK(ep.password.empty());
}

TEST_CASE("redis_url_without_a_host_means_loopback", "[redis_url]") {
    const auto ep = parse_url("redis://");
    CHECK(ep.host == "127.0.0.1");
    CHECK(ep.port == 6379);
    CHECK(ep.db == 0);
    CHECK(parse_url("redis://:6380").host == "127.0.0.1");
    CHECK(parse_url("redis://:6380").port == 6380);
}

TEST_CASE("redis_url_reads_host_port_and_db", "[redis_url]") {
    const auto ep = parse_url("redis://10.0.0.5:6380/3");
    CHECK(ep.host == "10.0.0.5");
    CHECK(ep.port == 6380);
    CHECK(ep.db == 3);
}

TEST_CASE("redis_url_with_a_trailing_slash_uses_db_zero", "[redis_url]") {
    CHECK(parse_url("redis://cache:6379/").db == 0);
}

TEST_CASE("redis_url_ignores_a_query_string_after_the_db", "[redis_url]") {
    const auto ep = parse_url("redis://cache:6379/4?timeout=5");
    CHECK(ep.db == 4);
    CHECK(ep.host == "cache");
}

TEST_CASE("redis_url_reads_user_and_password", "[redis_url]") {
    const auto ep = parse_url("redis://alice:s3cret@cache:6380/1");
    CHECK(ep.username == "alice");
    CHECK(ep.password == "s3cret");
    CHECK(ep.host == "cache");
    CHECK(ep.port == 6380);
    CHECK(ep.db == 1);
}

TEST_CASE("redis_url_with_empty_user_has_only_a_password", "[redis_url]") {
    const auto ep = parse_url("redis://:s3cret@cache");
    CHECK(ep.username.empty());
    CHECK(ep.password == "s3cret");
    CHECK(ep.host == "cache");
}

TEST_CASE("redis_url_with_bare_userinfo_treats_it_as_the_password", "[redis_url]") {
    // As redis-cli reads redis://secret@host.
    const auto ep = parse_url("redis://s3cret@cache");
    CHECK(ep.username.empty());
    CHECK(ep.password == "s3cret");
}

TEST_CASE("redis_url_percent_decodes_user_and_password", "[redis_url]") {
    const auto ep = parse_url("redis://al%69ce:p%40ss%3Aw%2Fo%25rd@cache");
    CHECK(ep.username == "alice");
    CHECK(ep.password == "p@ss:w/o%rd");
    CHECK(ep.host == "cache");
}

TEST_CASE("redis_url_keeps_malformed_percent_sequences_verbatim", "[redis_url]") {
    CHECK(parse_url("redis://:100%zz@cache").password == "100%zz");
    CHECK(parse_url("redis://:100%@cache").password == "100%");
    CHECK(parse_url("redis://:100%4@cache").password == "100%4");
}

TEST_CASE("redis_url_password_may_contain_an_unescaped_at_sign", "[redis_url]") {
    const auto ep = parse_url("redis://:p@ss@cache:6390");
    CHECK(ep.password == "p@ss");
    CHECK(ep.host == "cache");
    CHECK(ep.port == 6390);
}

TEST_CASE("redis_url_reads_a_bracketed_ipv6_host", "[redis_url]") {
    const auto ep = parse_url("redis://[::1]:6380/2");
    CHECK(ep.host == "::1");
    CHECK(ep.port == 6380);
    CHECK(ep.db == 2);
    const auto no_port = parse_url("redis://[fe80::1]");
    CHECK(no_port.host == "fe80::1");
    CHECK(no_port.port == 6379);
}

TEST_CASE("redis_url_refuses_a_broken_ipv6_host", "[redis_url]") {
    CHECK_THROWS_AS(parse_url("redis://[::1:6380"), mq::ValidationError);
    CHECK_THROWS_AS(parse_url("redis://[::1]x6380"), mq::ValidationError);
}

TEST_CASE("redis_url_refuses_other_schemes", "[redis_url]") {
    CHECK_THROWS_AS(parse_url("http://cache:6379"), mq::ValidationError);
    CHECK_THROWS_WITH(parse_url("http://cache:6379"), Contains("must start with redis://"));
    CHECK_THROWS_AS(parse_url("cache:6379"), mq::ValidationError);
    CHECK_THROWS_AS(parse_url(""), mq::ValidationError);
    CHECK_THROWS_AS(parse_url("redis:/cache"), mq::ValidationError);
    CHECK_THROWS_AS(parse_url("unix:///tmp/redis.sock"), mq::ValidationError);
}

TEST_CASE("rediss_url_turns_tls_on_and_reads_the_rest_as_redis_does", "[redis_url]") {
    const auto ep = parse_url("rediss://alice:s3cret@cache.internal:6380/2");
    CHECK(ep.tls);
    CHECK(ep.host == "cache.internal");
    CHECK(ep.port == 6380);
    CHECK(ep.db == 2);
    CHECK(ep.username == "alice");
    CHECK(ep.password == "s3cret");
    CHECK(ep.tls_name() == "cache.internal");
    CHECK(ep.tls_context == nullptr);  // loaded by load_tls() or the first connection
    CHECK(parse_url("rediss://cache").port == 6379);
    CHECK_FALSE(parse_url("redis://cache").tls);
    CHECK_THROWS_WITH(parse_url("redis+tls://cache"), Contains("rediss://"));
}

TEST_CASE("redis_tls_settings_come_from_the_environment_and_need_a_rediss_url", "[redis_url]") {
    mq::Config c = mq::load_config("", {{"REDIS_URL", "rediss://10.0.0.5:6380/0"},
                                        {"REDIS_TLS_SERVER_NAME", "cache.internal"},
                                        {"REDIS_TLS_CA_FILE", "/nonexistent/ca.pem"}});
    CHECK(c.redis_tls_server_name == "cache.internal");
    // The CA file is read when the endpoint is built: a missing one names the setting.
    CHECK_THROWS_AS(mq::redis::endpoint_from_config(c), mq::ValidationError);
    CHECK_THROWS_WITH(mq::redis::endpoint_from_config(c),
                      Contains("REDIS_TLS_CA_FILE=/nonexistent/ca.pem"));
    c.redis_url = "redis://10.0.0.5:6380/0";
    CHECK_THROWS_WITH(mq::redis::endpoint_from_config(c), Contains("use rediss://"));
    // Without TLS settings a plain URL is what it always was.
    mq::Config plain = mq::load_config("", {{"REDIS_URL", "redis://10.0.0.5:6380/0"}});
    auto ep = mq::redis::endpoint_from_config(plain);
    CHECK_FALSE(ep.tls);
    CHECK(ep.tls_context == nullptr);
}

TEST_CASE("redis_url_refuses_a_bad_port", "[redis_url]") {
    for (const char* url : {"redis://cache:abc", "redis://cache:0", "redis://cache:65536",
                            "redis://cache:-1", "redis://cache:63 79", "redis://cache:6379x"}) {
        INFO(url);
        CHECK_THROWS_AS(parse_url(url), mq::ValidationError);
        CHECK_THROWS_WITH(parse_url(url), Contains("bad port"));
    }
    CHECK(parse_url("redis://cache:65535").port == 65535);
    CHECK(parse_url("redis://cache:1").port == 1);
}

TEST_CASE("redis_url_refuses_a_bad_db", "[redis_url]") {
    for (const char* url :
         {"redis://cache/abc", "redis://cache/-1", "redis://cache/1x", "redis://cache:6379/0/1"}) {
        INFO(url);
        CHECK_THROWS_AS(parse_url(url), mq::ValidationError);
        CHECK_THROWS_WITH(parse_url(url), Contains("bad database number"));
    }
}

TEST_CASE("redis_url_error_message_shows_the_expected_form", "[redis_url]") {
    CHECK_THROWS_WITH(parse_url("http://x"),
                      Contains("redis://[[user]:password@]host[:port][/db]"));
}

TEST_CASE("redis_endpoint_describe_is_host_and_port_without_password", "[redis_url]") {
    const auto ep = parse_url("redis://alice:s3cret@cache:6380/1");
    CHECK(ep.describe() == "cache:6380");
    CHECK(ep.describe().find("s3cret") == std::string::npos);
    CHECK(parse_url("redis://[::1]:6380").describe() == "[::1]:6380");
}
