// The small pieces behind mq-api's admission control: the LRU cache, the per-client
// failed-authentication limit and the throttled log.
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "mq/auth/auth_failures.hpp"
#include "mq/config/config.hpp"
#include "mq/core/lru_cache.hpp"
#include "mq/core/throttled_log.hpp"
#include "mq/error.hpp"

using namespace std::chrono_literals;

TEST_CASE("lru_cache_drops_the_least_recently_used_entry_not_everything", "[admission]") {
    mq::LruCache<int, int> cache(3);
    cache.put(1, 10);
    cache.put(2, 20);
    cache.put(3, 30);
    REQUIRE(cache.find(1));  // 1 is now the most recent; 2 the least
    cache.put(4, 40);
    CHECK(cache.size() == 3);
    CHECK(cache.peek(2) == nullptr);
    CHECK(*cache.peek(1) == 10);
    CHECK(*cache.peek(3) == 30);
    CHECK(*cache.peek(4) == 40);
    cache.put(3, 33);  // replacing refreshes
    cache.put(5, 50);
    CHECK(cache.peek(1) == nullptr);
    CHECK(*cache.peek(3) == 33);
    CHECK(cache.erase(3));
    CHECK_FALSE(cache.erase(3));
    cache.clear();
    CHECK(cache.size() == 0);
}

TEST_CASE("lru_cache_keeps_a_hot_key_while_many_cold_ones_pass", "[admission]") {
    mq::LruCache<std::string, int> cache(10000);
    cache.put("hot", 1);
    for (int i = 0; i < 50000; ++i) {
        cache.put("cold" + std::to_string(i), i);
        if (i % 1000 == 0) REQUIRE(cache.find("hot"));
    }
    CHECK(cache.size() == 10000);
    CHECK(cache.find("hot"));
}

TEST_CASE("auth_failure_limiter_blocks_a_client_after_its_burst_and_forgives_over_time",
          "[admission]") {
    using Clock = mq::AuthFailureLimiter::Clock;
    mq::AuthFailureLimiter limiter(3, 3000ms);  // one more failure per second
    auto t = Clock::now();
    for (int i = 0; i < 3; ++i) {
        CHECK_FALSE(limiter.blocked("10.0.0.1", t));
        limiter.record_failure("10.0.0.1", t);
    }
    auto wait = limiter.blocked("10.0.0.1", t);
    REQUIRE(wait);
    CHECK(*wait > 900ms);
    CHECK(*wait <= 1000ms);
    CHECK_FALSE(limiter.blocked("10.0.0.2", t));  // other clients are not affected
    CHECK_FALSE(limiter.blocked("10.0.0.1", t + 1001ms));
    limiter.record_failure("10.0.0.1", t + 1001ms);
    CHECK(limiter.blocked("10.0.0.1", t + 1002ms));
    CHECK_FALSE(limiter.blocked("10.0.0.1", t + 10s));  // a whole window later: all forgiven
}

TEST_CASE("auth_failure_limiter_memory_is_bounded_and_zero_turns_it_off", "[admission]") {
    mq::AuthFailureLimiter limiter(1, 60s, 100);
    for (int i = 0; i < 1000; ++i) limiter.record_failure("client" + std::to_string(i));
    CHECK(limiter.clients() == 100);
    CHECK(limiter.blocked("client999"));
    CHECK_FALSE(limiter.blocked("client0"));  // forgotten, i.e. forgiven

    mq::AuthFailureLimiter off(0, 60s);
    for (int i = 0; i < 100; ++i) off.record_failure("x");
    CHECK_FALSE(off.blocked("x"));
    CHECK(off.clients() == 0);
}

TEST_CASE("throttled_log_admits_one_occurrence_per_interval_and_counts_the_rest", "[admission]") {
    mq::ThrottledLog log(200ms);
    auto first = log.admit();
    REQUIRE(first);
    CHECK(*first == 0);
    for (int i = 0; i < 1000; ++i) CHECK_FALSE(log.admit());
    std::this_thread::sleep_for(250ms);
    auto next = log.admit();
    REQUIRE(next);
    CHECK(*next == 1000);
    CHECK(log.total() == 1002);

    // Many threads at once: exactly one of them writes.
    mq::ThrottledLog shared(10s);
    std::atomic<int> written{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i)
                if (shared.admit()) ++written;
        });
    for (auto& t : threads) t.join();
    CHECK(written == 1);
}

TEST_CASE("admission_and_tls_settings_are_read_from_the_environment_and_checked", "[admission]") {
    auto c = mq::load_config("", {{"MAX_CONNECTIONS", "500"},
                                  {"BLOCKING_QUEUE_LIMIT", "64"},
                                  {"HEADER_TIMEOUT_MS", "2500"},
                                  {"AUTH_FAILURE_LIMIT", "0"},
                                  {"TLS_CERT_FILE", "/etc/mq/cert.pem"},
                                  {"TLS_KEY_FILE", "/etc/mq/key.pem"},
                                  {"TLS_MIN_VERSION", "1.3"}});
    CHECK(c.api.max_connections == 500);
    CHECK(c.api.blocking_queue_limit == 64);
    CHECK(c.api.header_timeout == 2500ms);
    CHECK(c.api.auth_failure_limit == 0);
    CHECK(c.api.tls());
    CHECK(c.api.tls_min_version == "1.3");
    CHECK_FALSE(mq::load_config("", {}).api.tls());
    CHECK_THROWS_AS(mq::load_config("", {{"HEADER_TIMEOUT_MS", "0"}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"BLOCKING_QUEUE_LIMIT", "-1"}}), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("", {{"TLS_MIN_VERSION", "1.0"}}), mq::ValidationError);
    try {
        mq::load_config("", {{"MAX_CONNECTIONS", "lots"}});
        FAIL("accepted MAX_CONNECTIONS=lots");
    } catch (const mq::ValidationError& e) {
        CHECK(std::string(e.what()).find("MAX_CONNECTIONS") != std::string::npos);
    }
}
