// Tenant, queue and subscription names: they end up inside Redis hash tags.

#include "mq/core/names.hpp"

#include <catch2/catch.hpp>
#include <string>

#include "mq/error.hpp"

using Catch::Matchers::Contains;

TEST_CASE("plain_names_of_letters_digits_dot_underscore_dash_are_valid", "[names]") {
    for (const char* name : {"orders", "Orders", "o", "7", "0rders", "orders.v2", "orders_eu-west",
                             "a.b_c-d", "A-1", "queue...", "x__"}) {
        INFO(name);
        CHECK(mq::is_valid_name(name));
        CHECK_NOTHROW(mq::validate_name("queue name", name));
    }
}

TEST_CASE("a_name_of_exactly_64_characters_is_valid", "[names]") {
    std::string name(mq::kMaxNameLength, 'a');
    REQUIRE(name.size() == 64);
    CHECK(mq::is_valid_name(name));
    CHECK_NOTHROW(mq::validate_name("queue name", name));
}

TEST_CASE("a_name_of_65_characters_is_refused_as_too_long", "[names]") {
    std::string name(65, 'a');
    CHECK_FALSE(mq::is_valid_name(name));
    CHECK_THROWS_WITH(mq::validate_name("queue name", name), Contains("longer than 64"));
}

TEST_CASE("an_empty_name_is_refused", "[names]") {
    CHECK_FALSE(mq::is_valid_name(""));
    CHECK_THROWS_AS(mq::validate_name("tenant", ""), mq::ValidationError);
    CHECK_THROWS_WITH(mq::validate_name("tenant", ""), Contains("must not be empty"));
}

TEST_CASE("a_name_must_start_with_a_letter_or_digit", "[names]") {
    for (const char* name : {".orders", "_orders", "-orders", ".", "-", "_"}) {
        INFO(name);
        CHECK_FALSE(mq::is_valid_name(name));
        CHECK_THROWS_AS(mq::validate_name("queue name", name), mq::ValidationError);
    }
}

TEST_CASE("hash_tag_and_path_characters_are_refused_in_names", "[names]") {
    for (const char* name : {"a:b", "a{b", "a}b", "{orders}", "a/b", "a b", " orders", "orders ",
                             "a*b", "a?b", "a[b]", "a\\b", "a\tb", "a\nb", "a@b", "a%b", "a+b"}) {
        INFO(name);
        CHECK_FALSE(mq::is_valid_name(name));
        CHECK_THROWS_AS(mq::validate_name("queue name", name), mq::ValidationError);
    }
}

TEST_CASE("a_name_with_a_nul_byte_is_refused", "[names]") {
    std::string name("ab\0cd", 5);
    CHECK_FALSE(mq::is_valid_name(name));
}

TEST_CASE("non_ascii_names_are_refused", "[names]") {
    for (const char* name : {"caf\xc3\xa9", "\xc3\xa9t\xc3\xa9", "\xe9\x98\x9f\xe5\x88\x97",
                             "orders\xf0\x9f\x9a\x80"}) {
        INFO(name);
        CHECK_FALSE(mq::is_valid_name(name));
        CHECK_THROWS_AS(mq::validate_name("queue name", name), mq::ValidationError);
    }
}

TEST_CASE("validation_error_message_names_the_field_and_the_value", "[names]") {
    try {
        mq::validate_name("subscription name", "bad:name");
        FAIL("validate_name accepted 'bad:name'");
    } catch (const mq::ValidationError& e) {
        std::string msg = e.what();
        CHECK_THAT(msg, Contains("subscription name"));
        CHECK_THAT(msg, Contains("'bad:name'"));
        CHECK(e.code() == mq::ErrorCode::kValidation);
        CHECK(e.details()["field"] == "subscription name");
        CHECK(e.details()["value"] == "bad:name");
    }
}

TEST_CASE("validation_error_names_whichever_field_the_caller_says", "[names]") {
    CHECK_THROWS_WITH(mq::validate_name("tenant", ""), Contains("invalid tenant"));
    CHECK_THROWS_WITH(mq::validate_name("queue name", "a b"), Contains("invalid queue name"));
    CHECK_THROWS_WITH(mq::validate_name("queue name", "a b"),
                      Contains("starting with a letter or digit"));
}
