// Configuration: defaults, then a YAML file, then the environment, each value checked.

#include "mq/config/config.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "mq/error.hpp"

using Catch::Matchers::Contains;
using Env = std::map<std::string, std::string>;

namespace {

/// A YAML file in its own temporary directory, removed when the scope ends.
class TempYaml {
  public:
    explicit TempYaml(const std::string& text) {
        std::string tmpl =
            (std::filesystem::temp_directory_path() / "mq-config-test-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        path_ = (dir_ / "mq.yaml").string();
        std::ofstream(path_) << text;
    }
    ~TempYaml() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    TempYaml(const TempYaml&) = delete;
    TempYaml& operator=(const TempYaml&) = delete;
    const std::string& path() const { return path_; }

  private:
    std::filesystem::path dir_;
    std::string path_;
};

std::string error_of(const std::string& file, const Env& env) {
    try {
        mq::load_config(file, env);
    } catch (const mq::ValidationError& e) {
        return e.what();
    }
    return "<no error>";
}

}  // namespace

TEST_CASE("config_without_file_or_environment_is_the_defaults", "[config]") {
    const mq::Config c = mq::load_config("", {});
    CHECK(c.port == 3010);
    CHECK(c.database_url == "postgresql://postgres@127.0.0.1:5432/mq");
    CHECK(c.redis_url == "redis://127.0.0.1:6379/0");
    CHECK(c.key_prefix == "mq:");
    CHECK(c.max_message_size == 1048576);
    CHECK(c.default_ttl == std::chrono::seconds(604800));
    CHECK_FALSE(c.max_queue_length.has_value());
    CHECK(c.consumer_timeout == std::chrono::milliseconds(30000));
    CHECK(c.metrics_enabled);
    CHECK(c.internal_service_token.empty());
    CHECK(c.log_format == "text");
    CHECK(c.log_level == "info");
    CHECK(c.tenant == "default");
}

TEST_CASE("config_reads_lower_case_keys_from_yaml", "[config]") {
    TempYaml yaml(
        "port: 8080\n"
        "redis_url: redis://cache:6380/2\n"
        "database_url: postgresql://mq@db/mq\n"
        "redis_key_prefix: \"staging:\"\n"
        "max_message_size: 2048\n"
        "default_ttl: 3600\n"
        "max_queue_length: 5000\n"
        "consumer_timeout: 1500\n"
        "metrics_enabled: false\n"
        "internal_service_token: s3cret\n"
        "log_format: json\n"
        "log_level: debug\n"
        "mq_tenant: acme\n");
    const mq::Config c = mq::load_config(yaml.path(), {});
    CHECK(c.port == 8080);
    CHECK(c.redis_url == "redis://cache:6380/2");
    CHECK(c.database_url == "postgresql://mq@db/mq");
    CHECK(c.key_prefix == "staging:");
    CHECK(c.max_message_size == 2048);
    CHECK(c.default_ttl == std::chrono::seconds(3600));
    REQUIRE(c.max_queue_length.has_value());
    CHECK(*c.max_queue_length == 5000);
    CHECK(c.consumer_timeout == std::chrono::milliseconds(1500));
    CHECK_FALSE(c.metrics_enabled);
    CHECK(c.internal_service_token == "s3cret");
    CHECK(c.log_format == "json");
    CHECK(c.log_level == "debug");
    CHECK(c.tenant == "acme");
}

TEST_CASE("config_environment_overrides_yaml_which_overrides_defaults", "[config]") {
    TempYaml yaml(
        "port: 8080\n"
        "redis_url: redis://from-yaml:6379/0\n"
        "log_level: warn\n");
    const mq::Config c =
        mq::load_config(yaml.path(), {{"PORT", "9090"}, {"REDIS_URL", "redis://from-env:6379/1"}});
    CHECK(c.port == 9090);                            // env > yaml
    CHECK(c.redis_url == "redis://from-env:6379/1");  // env > yaml
    CHECK(c.log_level == "warn");                     // yaml > default
    CHECK(c.log_format == "text");                    // default
}

TEST_CASE("config_environment_alone_overrides_defaults", "[config]") {
    const mq::Config c = mq::load_config(
        "", {{"LOG_FORMAT", "json"}, {"METRICS_ENABLED", "off"}, {"MQ_TENANT", "t1"}});
    CHECK(c.log_format == "json");
    CHECK_FALSE(c.metrics_enabled);
    CHECK(c.tenant == "t1");
    CHECK(c.port == 3010);
}

TEST_CASE("config_ignores_environment_names_it_does_not_read", "[config]") {
    const mq::Config c =
        mq::load_config("", {{"HOME", "/root"}, {"MQ_CONFIG", "/etc/mq.yaml"}, {"port", "1"}});
    CHECK(c.port == 3010);
}

TEST_CASE("config_empty_yaml_file_gives_the_defaults", "[config]") {
    TempYaml yaml("");
    const mq::Config c = mq::load_config(yaml.path(), {});
    CHECK(c.port == 3010);
    CHECK(c.log_level == "info");
}

TEST_CASE("config_refuses_a_port_that_is_not_a_number", "[config]") {
    const std::string msg = error_of("", {{"PORT", "abc"}});
    CHECK_THAT(msg, Contains("PORT=abc"));
    CHECK_THAT(msg, Contains("environment"));
    CHECK_THROWS_AS(mq::load_config("", {{"PORT", "80x"}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"PORT", ""}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"PORT", " 80"}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"PORT", "80.0"}}), mq::ValidationError);
}

TEST_CASE("config_refuses_a_port_out_of_range", "[config]") {
    CHECK_THAT(error_of("", {{"PORT", "70000"}}), Contains("PORT=70000"));
    CHECK_THROWS_AS(mq::load_config("", {{"PORT", "65536"}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"PORT", "-1"}}), mq::ValidationError);
    CHECK(mq::load_config("", {{"PORT", "65535"}}).port == 65535);
}

TEST_CASE("config_refuses_an_unknown_log_format", "[config]") {
    CHECK_THAT(error_of("", {{"LOG_FORMAT", "xml"}}), Contains("LOG_FORMAT=xml"));
    CHECK_THROWS_AS(mq::load_config("", {{"LOG_FORMAT", "JSON"}}), mq::ValidationError);
}

TEST_CASE("config_refuses_an_unknown_log_level", "[config]") {
    CHECK_THAT(error_of("", {{"LOG_LEVEL", "verbose"}}), Contains("LOG_LEVEL=verbose"));
    for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"})
        CHECK(mq::load_config("", {{"LOG_LEVEL", level}}).log_level == level);
}

TEST_CASE("config_reads_booleans_in_the_usual_spellings", "[config]") {
    for (const char* yes : {"1", "true", "TRUE", "True", "yes", "on"})
        CHECK(mq::load_config("", {{"METRICS_ENABLED", yes}}).metrics_enabled);
    for (const char* no : {"0", "false", "FALSE", "no", "off", "Off"})
        CHECK_FALSE(mq::load_config("", {{"METRICS_ENABLED", no}}).metrics_enabled);
}

TEST_CASE("config_refuses_a_boolean_it_cannot_read", "[config]") {
    CHECK_THAT(error_of("", {{"METRICS_ENABLED", "maybe"}}), Contains("METRICS_ENABLED=maybe"));
    CHECK_THROWS_AS(mq::load_config("", {{"METRICS_ENABLED", ""}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"METRICS_ENABLED", "2"}}), mq::ValidationError);
}

TEST_CASE("config_refuses_a_key_prefix_with_hash_tag_braces", "[config]") {
    CHECK_THAT(error_of("", {{"REDIS_KEY_PREFIX", "mq{"}}), Contains("REDIS_KEY_PREFIX"));
    CHECK_THROWS_AS(mq::load_config("", {{"REDIS_KEY_PREFIX", "{mq}:"}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"REDIS_KEY_PREFIX", "mq}"}}), mq::ValidationError);
    CHECK(mq::load_config("", {{"REDIS_KEY_PREFIX", "test-1:"}}).key_prefix == "test-1:");
}

TEST_CASE("config_refuses_an_invalid_tenant_name", "[config]") {
    CHECK_THAT(error_of("", {{"MQ_TENANT", "a:b"}}), Contains("tenant"));
    CHECK_THROWS_AS(mq::load_config("", {{"MQ_TENANT", ""}}), mq::ValidationError);
}

TEST_CASE("config_refuses_zero_or_out_of_range_sizes_and_durations", "[config]") {
    CHECK_THROWS_AS(mq::load_config("", {{"MAX_MESSAGE_SIZE", "0"}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"MAX_MESSAGE_SIZE", "536870913"}}), mq::ValidationError);
    CHECK(mq::load_config("", {{"MAX_MESSAGE_SIZE", "536870912"}}).max_message_size == 536870912);
    CHECK_THROWS_AS(mq::load_config("", {{"DEFAULT_TTL", "0"}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"DEFAULT_TTL", "-5"}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"CONSUMER_TIMEOUT", "0"}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"MAX_QUEUE_LENGTH", "-1"}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"MAX_QUEUE_LENGTH", "lots"}}), mq::ValidationError);
}

TEST_CASE("config_max_queue_length_zero_or_empty_means_unset", "[config]") {
    CHECK_FALSE(mq::load_config("", {{"MAX_QUEUE_LENGTH", "0"}}).max_queue_length.has_value());
    CHECK_FALSE(mq::load_config("", {{"MAX_QUEUE_LENGTH", ""}}).max_queue_length.has_value());
    const auto set = mq::load_config("", {{"MAX_QUEUE_LENGTH", "100"}}).max_queue_length;
    REQUIRE(set.has_value());
    CHECK(*set == 100);
}

TEST_CASE("config_environment_zero_max_queue_length_unsets_the_yaml_value", "[config]") {
    TempYaml yaml("max_queue_length: 1000\n");
    REQUIRE(mq::load_config(yaml.path(), {}).max_queue_length == std::optional<std::int64_t>(1000));
    CHECK_FALSE(
        mq::load_config(yaml.path(), {{"MAX_QUEUE_LENGTH", "0"}}).max_queue_length.has_value());
}

TEST_CASE("config_yaml_syntax_error_names_file_and_line", "[config]") {
    TempYaml yaml(
        "port: 1\n"
        "log_level: info\n"
        "  bad: indent\n");
    const std::string msg = error_of(yaml.path(), {});
    CHECK_THAT(msg, Contains(yaml.path() + ":3"));
}

TEST_CASE("config_yaml_tab_indentation_error_names_file_and_line", "[config]") {
    TempYaml yaml("port: 1\n\tlog_level: info\n");
    CHECK_THAT(error_of(yaml.path(), {}), Contains(yaml.path() + ":2"));
}

TEST_CASE("config_yaml_unknown_key_is_refused_naming_file_and_line", "[config]") {
    TempYaml yaml(
        "port: 8080\n"
        "log_level: info\n"
        "redis_ulr: redis://typo:6379\n");
    const std::string msg = error_of(yaml.path(), {});
    CHECK_THAT(msg, Contains(yaml.path() + ":3"));
    CHECK_THAT(msg, Contains("unknown setting 'redis_ulr' (did you mean 'redis_url'?)"));
}

TEST_CASE("config_yaml_bad_value_names_file_and_line", "[config]") {
    TempYaml yaml(
        "log_level: info\n"
        "port: abc\n");
    const std::string msg = error_of(yaml.path(), {});
    CHECK_THAT(msg, Contains("PORT=abc"));
    CHECK_THAT(msg, Contains(yaml.path() + ":2"));
}

TEST_CASE("config_yaml_bad_value_is_refused_even_when_environment_would_override_it", "[config]") {
    TempYaml yaml("port: abc\n");
    CHECK_THROWS_AS(mq::load_config(yaml.path(), {{"PORT", "80"}}), mq::ValidationError);
}

TEST_CASE("config_yaml_nested_value_is_refused", "[config]") {
    TempYaml yaml(
        "port: 1\n"
        "redis_url:\n"
        "  host: cache\n");
    const std::string msg = error_of(yaml.path(), {});
    CHECK_THAT(msg, Contains(yaml.path() + ":2"));
    CHECK_THAT(msg, Contains("scalar"));
}

TEST_CASE("config_yaml_that_is_not_a_mapping_is_refused", "[config]") {
    TempYaml yaml("- port\n- 8080\n");
    CHECK_THAT(error_of(yaml.path(), {}), Contains("expected a mapping"));
}

TEST_CASE("config_missing_yaml_file_is_refused_naming_the_file", "[config]") {
    const std::string missing = "/nonexistent/mq-config-test/mq.yaml";
    const std::string msg = error_of(missing, {});
    CHECK_THAT(msg, Contains("cannot read config file"));
    CHECK_THAT(msg, Contains(missing));
}

TEST_CASE("apply_setting_refuses_an_unknown_name_naming_the_source", "[config]") {
    mq::Config c;
    CHECK_THROWS_WITH(mq::apply_setting(c, "POTR", "1", "flag --potr"),
                      Contains("unknown setting 'POTR'") && Contains("flag --potr"));
    mq::apply_setting(c, "PORT", "1234", "flag --port");
    CHECK(c.port == 1234);
}
