// The Redis key layout: exact key strings and one hash tag per partition.

#include "mq/core/keys.hpp"

#include <catch2/catch.hpp>
#include <set>
#include <string>

namespace {

// What Redis Cluster hashes: the bytes between the first '{' and the first '}' after it.
std::string hash_tag(const std::string& key) {
    auto open = key.find('{');
    if (open == std::string::npos) return key;
    auto close = key.find('}', open + 1);
    if (close == std::string::npos || close == open + 1) return key;
    return key.substr(open + 1, close - open - 1);
}

}  // namespace

TEST_CASE("default_prefix_is_mq_colon", "[keys]") {
    mq::KeyLayout keys;
    CHECK(keys.prefix() == "mq:");
}

TEST_CASE("partition_keys_have_the_documented_exact_spelling", "[keys]") {
    mq::KeyLayout keys;
    CHECK(keys.partition_base("t", "q", 0) == "mq:{t:q:0}");
    CHECK(keys.stream("t", "q", 0) == "mq:{t:q:0}:s");
    CHECK(keys.delayed("t", "q", 0) == "mq:{t:q:0}:d");
    CHECK(keys.dead_letters("t", "q", 0) == "mq:{t:q:0}:dlq");
    CHECK(keys.retry_after("t", "q", 0) == "mq:{t:q:0}:ra");
    CHECK(keys.expired("t", "q", 0) == "mq:{t:q:0}:x");
    CHECK(keys.idempotency("t", "q", 0, "order-42") == "mq:{t:q:0}:k:order-42");
}

TEST_CASE("partition_number_is_written_in_decimal_inside_the_tag", "[keys]") {
    mq::KeyLayout keys;
    CHECK(keys.stream("acme", "orders.v2", 17) == "mq:{acme:orders.v2:17}:s");
    CHECK(keys.stream("acme", "orders", 255) == "mq:{acme:orders:255}:s");
}

TEST_CASE("all_keys_of_one_partition_share_one_hash_tag", "[keys]") {
    mq::KeyLayout keys;
    const std::string expected = "acme:orders:3";
    CHECK(hash_tag(keys.stream("acme", "orders", 3)) == expected);
    CHECK(hash_tag(keys.delayed("acme", "orders", 3)) == expected);
    CHECK(hash_tag(keys.dead_letters("acme", "orders", 3)) == expected);
    CHECK(hash_tag(keys.expired("acme", "orders", 3)) == expected);
    CHECK(hash_tag(keys.retry_after("acme", "orders", 3)) == expected);
    CHECK(hash_tag(keys.idempotency("acme", "orders", 3, "abc")) == expected);
    // An idempotency key carrying braces must not change the slot.
    CHECK(hash_tag(keys.idempotency("acme", "orders", 3, "{evil}")) == expected);
}

TEST_CASE("different_partitions_queues_and_tenants_get_different_hash_tags", "[keys]") {
    mq::KeyLayout keys;
    std::set<std::string> tags;
    for (int p = 0; p < 8; ++p) tags.insert(hash_tag(keys.stream("acme", "orders", p)));
    tags.insert(hash_tag(keys.stream("acme", "invoices", 0)));
    tags.insert(hash_tag(keys.stream("other", "orders", 0)));
    CHECK(tags.size() == 10);
}

TEST_CASE("custom_prefix_is_put_before_the_hash_tag", "[keys]") {
    mq::KeyLayout keys("test-1234:");
    CHECK(keys.prefix() == "test-1234:");
    CHECK(keys.stream("t", "q", 0) == "test-1234:{t:q:0}:s");
    CHECK(keys.delayed("t", "q", 1) == "test-1234:{t:q:1}:d");
    CHECK(keys.dead_letters("t", "q", 2) == "test-1234:{t:q:2}:dlq");
    CHECK(keys.idempotency("t", "q", 3, "k") == "test-1234:{t:q:3}:k:k");
    CHECK(hash_tag(keys.stream("t", "q", 0)) == "t:q:0");
}

TEST_CASE("empty_prefix_starts_keys_with_the_hash_tag", "[keys]") {
    mq::KeyLayout keys("");
    CHECK(keys.stream("t", "q", 0) == "{t:q:0}:s");
}

TEST_CASE("idempotency_pattern_matches_every_idempotency_key_of_the_partition", "[keys]") {
    mq::KeyLayout keys;
    // '{', '}' and ':' are not glob metacharacters, so the base is used verbatim.
    CHECK(keys.idempotency_pattern("t", "q", 0) == "mq:{t:q:0}:k:*");
    const std::string key = keys.idempotency("t", "q", 0, "anything");
    const std::string pattern = keys.idempotency_pattern("t", "q", 0);
    REQUIRE(pattern.back() == '*');
    CHECK(key.rfind(pattern.substr(0, pattern.size() - 1), 0) == 0);
}

TEST_CASE("idempotency_pattern_escapes_glob_characters_in_the_prefix", "[keys]") {
    mq::KeyLayout keys("a*b?c[d]e\\f:");
    CHECK(keys.idempotency_pattern("t", "q", 2) == "a\\*b\\?c\\[d\\]e\\\\f:{t:q:2}:k:*");
    // The concrete keys themselves stay unescaped.
    CHECK(keys.idempotency("t", "q", 2, "x") == "a*b?c[d]e\\f:{t:q:2}:k:x");
}

TEST_CASE("idempotency_pattern_leaves_a_plain_prefix_unchanged", "[keys]") {
    mq::KeyLayout keys("test-1234:");
    CHECK(keys.idempotency_pattern("acme", "orders", 5) == "test-1234:{acme:orders:5}:k:*");
}
