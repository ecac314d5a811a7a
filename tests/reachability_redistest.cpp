// mq::redis::Reachability, the answer behind /readyz: a PING measured at most once per TTL
// however often it is asked (also from many threads at once), false soon after Redis
// stops, true again once it is back (the broken connection is replaced).
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "mq/redis/reachability.hpp"
#include "private_services.hpp"

using namespace std::chrono_literals;

namespace {

mq::redis::Endpoint endpoint_of(const std::string& url) {
    mq::Config config;
    config.redis_url = url;
    return mq::redis::endpoint_from_config(config);
}

}  // namespace

TEST_CASE("reachability_pings_at_most_once_per_ttl_even_under_concurrent_probes",
          "[redis][lifecycle]") {
    mq::redis::Reachability r(endpoint_of(mqtest::services().redis_url), 60s);
    CHECK(r.reachable());
    CHECK(r.pings() == 1);
    std::atomic<int> yes{0};  // Catch2 assertions are not thread-safe: count, check after
    std::vector<std::thread> probes;
    for (int t = 0; t < 8; ++t)
        probes.emplace_back([&] {
            for (int i = 0; i < 200; ++i) yes += r.reachable() ? 1 : 0;
        });
    for (auto& p : probes) p.join();
    CHECK(yes == 1600);
    CHECK(r.pings() == 1);  // 1600 answers, one PING
}

TEST_CASE("reachability_turns_false_when_redis_stops_and_true_when_it_is_back",
          "[redis][lifecycle]") {
    mqtest::PrivateRedis redis;
    mq::redis::Reachability r(endpoint_of(redis.url()), 100ms);
    REQUIRE(r.reachable());
    redis.stop();
    CHECK(mqtest::eventually([&] { return !r.reachable(); }, 2s));
    auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(r.reachable());  // a refused connection answers at once
    CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
    redis.start();
    CHECK(mqtest::eventually([&] { return r.reachable(); }, 3s));

    // Never reached at all: false, not an exception.
    mq::redis::Reachability nowhere(
        endpoint_of("redis://127.0.0.1:" + std::to_string(mqtest::dead_port()) + "/0"));
    CHECK_FALSE(nowhere.reachable());
}
