// UUIDv7 message ids: RFC 9562 layout, unique, and sorted in creation order.

#include "mq/core/uuid.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace {

std::int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

bool lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

TEST_CASE("uuid_v7_is_36_lowercase_hex_characters_with_dashes_at_8_13_18_23", "[uuid]") {
    for (int i = 0; i < 1000; ++i) {
        const std::string id = mq::new_uuid_v7();
        INFO(id);
        REQUIRE(id.size() == 36);
        for (std::size_t pos = 0; pos < id.size(); ++pos) {
            if (pos == 8 || pos == 13 || pos == 18 || pos == 23)
                CHECK(id[pos] == '-');
            else
                CHECK(lower_hex(id[pos]));
        }
    }
}

TEST_CASE("uuid_v7_has_version_nibble_7_and_rfc_variant", "[uuid]") {
    for (int i = 0; i < 1000; ++i) {
        const std::string id = mq::new_uuid_v7();
        INFO(id);
        CHECK(id[14] == '7');
        const char variant = id[19];
        CHECK((variant == '8' || variant == '9' || variant == 'a' || variant == 'b'));
    }
}

TEST_CASE("uuid_v7_is_unique_over_100k_ids", "[uuid]") {
    std::unordered_set<std::string> seen;
    seen.reserve(100'000);
    for (int i = 0; i < 100'000; ++i) seen.insert(mq::new_uuid_v7());
    CHECK(seen.size() == 100'000);
}

TEST_CASE("uuid_v7_sorts_in_creation_order_over_100k_ids", "[uuid]") {
    std::string previous = mq::new_uuid_v7();
    int out_of_order = 0;
    for (int i = 0; i < 100'000; ++i) {
        std::string next = mq::new_uuid_v7();
        if (!(previous < next)) {
            if (out_of_order == 0)
                UNSCOPED_INFO("first out of order: " << previous << " then " << next);
            ++out_of_order;
        }
        previous = std::move(next);
    }
    CHECK(out_of_order == 0);
}

TEST_CASE("uuid_v7_is_unique_across_threads", "[uuid]") {
    std::mutex mu;
    std::unordered_set<std::string> seen;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            std::vector<std::string> mine;
            std::string previous;
            bool ordered = true;
            for (int i = 0; i < 10'000; ++i) {
                mine.push_back(mq::new_uuid_v7());
                if (!previous.empty() && !(previous < mine.back())) ordered = false;
                previous = mine.back();
            }
            std::lock_guard lock(mu);
            seen.insert(mine.begin(), mine.end());
            if (!ordered) seen.insert("unordered");  // poisons the count below
        });
    for (auto& th : threads) th.join();
    CHECK(seen.size() == 40'000);
}

TEST_CASE("uuid_v7_millis_is_the_creation_time_within_a_few_ms", "[uuid]") {
    const std::int64_t before = wall_ms();
    const std::string id = mq::new_uuid_v7();
    const std::int64_t after = wall_ms();
    const std::int64_t ms = mq::uuid_v7_millis(id);
    INFO(id << " before=" << before << " ms=" << ms << " after=" << after);
    // The generator may borrow the next millisecond when its counter runs out.
    CHECK(ms >= before);
    CHECK(ms <= after + 5);
}

TEST_CASE("uuid_v7_millis_reads_the_rfc_9562_example", "[uuid]") {
    // RFC 9562 appendix A.6: 017F22E2-79B0-7CC3-98C4-DC0C0C07398F is 2022-02-22T19:22:22Z.
    CHECK(mq::uuid_v7_millis("017f22e2-79b0-7cc3-98c4-dc0c0c07398f") == 1645557742000);
    CHECK(mq::uuid_v7_millis("00000000-0000-7000-8000-000000000000") == 0);
    CHECK(mq::uuid_v7_millis("ffffffff-ffff-7fff-bfff-ffffffffffff") == 0xffffffffffffLL);
}

TEST_CASE("uuid_v7_millis_is_minus_one_for_other_versions_and_garbage", "[uuid]") {
    CHECK(mq::uuid_v7_millis("550e8400-e29b-41d4-a716-446655440000") == -1);  // v4
    CHECK(mq::uuid_v7_millis("017f22e2-79b0-6cc3-98c4-dc0c0c07398f") == -1);  // v6
    CHECK(mq::uuid_v7_millis("") == -1);
    CHECK(mq::uuid_v7_millis("not-a-uuid") == -1);
    CHECK(mq::uuid_v7_millis("017f22e2-79b0-7cc3-98c4-dc0c0c07398") == -1);    // 35 chars
    CHECK(mq::uuid_v7_millis("017f22e2-79b0-7cc3-98c4-dc0c0c07398f0") == -1);  // 37 chars
    CHECK(mq::uuid_v7_millis("017f22g2-79b0-7cc3-98c4-dc0c0c07398f") == -1);   // 'g' in time
}

TEST_CASE("uuid_v7_millis_round_trips_a_generated_id", "[uuid]") {
    const std::string a = mq::new_uuid_v7();
    const std::string b = mq::new_uuid_v7();
    CHECK(mq::uuid_v7_millis(a) > 1'600'000'000'000);
    CHECK(mq::uuid_v7_millis(a) <= mq::uuid_v7_millis(b));
}
