// Retention settings of the dead-letter streams and archive (docs/retention.md).
#include <catch2/catch.hpp>

#include "mq/config/config.hpp"
#include "mq/error.hpp"
#include "mq/queue/trimmer.hpp"

using namespace std::chrono_literals;

TEST_CASE("dead_letter_retention_settings_have_documented_defaults", "[config][retention]") {
    auto c = mq::load_config("", {});
    CHECK(c.dead_letter_max_length == 10000);
    CHECK(c.dead_letter_max_age == 604800s);
    CHECK(c.dead_letter_retention == 2592000s);
    auto o = mq::trim_options(c);
    CHECK(o.dead_letter_max_length == 10000);
    CHECK(o.dead_letter_max_age == 604800000ms);
}

TEST_CASE("dead_letter_retention_settings_come_from_the_environment_and_zero_disables_a_cap",
          "[config][retention]") {
    auto c = mq::load_config("", {{"DEAD_LETTER_MAX_LENGTH", "0"},
                                  {"DEAD_LETTER_MAX_AGE", "0"},
                                  {"DEAD_LETTER_RETENTION", "86400"}});
    CHECK(c.dead_letter_max_length == 0);
    CHECK(c.dead_letter_max_age == 0s);
    CHECK(c.dead_letter_retention == 86400s);
}

TEST_CASE("dead_letter_retention_settings_refuse_negative_zero_or_garbage", "[config][retention]") {
    CHECK_THROWS_AS(mq::load_config("", {{"DEAD_LETTER_MAX_LENGTH", "-1"}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"DEAD_LETTER_MAX_AGE", "1h"}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"DEAD_LETTER_RETENTION", "0"}}), mq::ValidationError);
}
