// Partition choice: FNV-1a 64 of the key (fixed forever, other clients compute it too),
// else of the idempotency key, else round-robin.

#include "mq/core/partitioner.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <thread>
#include <vector>

TEST_CASE("fnv1a_64_matches_the_published_test_vectors", "[partitioner]") {
    CHECK(mq::fnv1a_64("") == 0xcbf29ce484222325ULL);
    CHECK(mq::fnv1a_64("a") == 0xaf63dc4c8601ec8cULL);
    CHECK(mq::fnv1a_64("foobar") == 0x85944171f73967e8ULL);
}

TEST_CASE("fnv1a_64_hashes_bytes_above_0x7f_as_unsigned", "[partitioner]") {
    // Reference value computed with the FNV-1a definition over the bytes c3 a9.
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : {0xc3, 0xa9}) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    CHECK(mq::fnv1a_64("\xc3\xa9") == h);
}

TEST_CASE("fnv1a_64_hashes_embedded_nul_bytes", "[partitioner]") {
    std::string_view with_nul("a\0b", 3);
    CHECK(mq::fnv1a_64(with_nul) != mq::fnv1a_64("ab"));
    CHECK(mq::fnv1a_64(with_nul) != mq::fnv1a_64("a"));
}

TEST_CASE("partition_of_a_key_never_changes", "[partitioner]") {
    mq::Partitioner a, b;
    const int first = a.choose(16, "customer-42", "");
    for (int i = 0; i < 1000; ++i) {
        CHECK(a.choose(16, "customer-42", "") == first);
        CHECK(b.choose(16, "customer-42", "") == first);
    }
    CHECK(first == static_cast<int>(mq::fnv1a_64("customer-42") % 16));
}

TEST_CASE("partition_of_a_key_is_fnv1a_modulo_partition_count", "[partitioner]") {
    mq::Partitioner p;
    for (int n : {2, 3, 7, 16, 255, 256}) {
        for (const char* key : {"a", "foobar", "customer-1", "customer-2", "\xc3\xa9"}) {
            INFO(n << " " << key);
            CHECK(p.choose(n, key, "") ==
                  static_cast<int>(mq::fnv1a_64(key) % static_cast<std::uint64_t>(n)));
        }
    }
}

TEST_CASE("chosen_partition_is_always_in_range", "[partitioner]") {
    mq::Partitioner p;
    for (int n = 1; n <= 64; ++n) {
        for (int i = 0; i < 50; ++i) {
            int by_key = p.choose(n, "key-" + std::to_string(i), "");
            int by_idem = p.choose(n, "", "idem-" + std::to_string(i));
            int rr = p.choose(n, "", "");
            CHECK((by_key >= 0 && by_key < n));
            CHECK((by_idem >= 0 && by_idem < n));
            CHECK((rr >= 0 && rr < n));
        }
    }
}

TEST_CASE("message_key_wins_over_idempotency_key", "[partitioner]") {
    mq::Partitioner p;
    const int n = 64;
    int differing = 0;
    for (int i = 0; i < 100; ++i) {
        std::string key = "key-" + std::to_string(i);
        std::string idem = "idem-" + std::to_string(i);
        int expected = static_cast<int>(mq::fnv1a_64(key) % n);
        CHECK(p.choose(n, key, idem) == expected);
        if (expected != static_cast<int>(mq::fnv1a_64(idem) % n)) ++differing;
    }
    // The check above only proves something when the two hashes disagree.
    CHECK(differing > 50);
}

TEST_CASE("idempotency_key_chooses_the_partition_when_there_is_no_key", "[partitioner]") {
    mq::Partitioner p;
    for (int i = 0; i < 100; ++i) {
        std::string idem = "idem-" + std::to_string(i);
        int expected = static_cast<int>(mq::fnv1a_64(idem) % 32);
        CHECK(p.choose(32, "", idem) == expected);
        CHECK(p.choose(32, "", idem) == expected);  // a retry lands on the same partition
    }
}

TEST_CASE("round_robin_covers_all_partitions_evenly", "[partitioner]") {
    mq::Partitioner p;
    const int n = 7;
    std::map<int, int> counts;
    for (int i = 0; i < n * 100; ++i) ++counts[p.choose(n, "", "")];
    REQUIRE(counts.size() == static_cast<std::size_t>(n));
    for (auto [partition, count] : counts) {
        INFO("partition " << partition);
        CHECK(count == 100);
    }
}

TEST_CASE("round_robin_visits_partitions_in_turn", "[partitioner]") {
    mq::Partitioner p;
    const int first = p.choose(4, "", "");
    for (int i = 1; i < 12; ++i) CHECK(p.choose(4, "", "") == (first + i) % 4);
}

TEST_CASE("keyed_choices_do_not_advance_round_robin", "[partitioner]") {
    mq::Partitioner p;
    const int first = p.choose(5, "", "");
    p.choose(5, "some-key", "");
    p.choose(5, "", "some-idem");
    CHECK(p.choose(5, "", "") == (first + 1) % 5);
}

TEST_CASE("round_robin_is_even_across_threads", "[partitioner]") {
    mq::Partitioner p;
    const int n = 4;
    std::vector<std::vector<int>> seen(4, std::vector<int>(n, 0));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 1000; ++i)
                ++seen[static_cast<std::size_t>(t)][static_cast<std::size_t>(p.choose(n, "", ""))];
        });
    for (auto& th : threads) th.join();
    for (int part = 0; part < n; ++part) {
        int total = 0;
        for (const auto& s : seen) total += s[static_cast<std::size_t>(part)];
        CHECK(total == 1000);
    }
}

TEST_CASE("partition_count_of_one_always_gives_partition_zero", "[partitioner]") {
    mq::Partitioner p;
    CHECK(p.choose(1, "foobar", "") == 0);
    CHECK(p.choose(1, "", "idem") == 0);
    for (int i = 0; i < 10; ++i) CHECK(p.choose(1, "", "") == 0);
}

TEST_CASE("partition_count_below_one_gives_partition_zero_instead_of_dividing_by_zero",
          "[partitioner]") {
    mq::Partitioner p;
    CHECK(p.choose(0, "foobar", "") == 0);
    CHECK(p.choose(0, "", "") == 0);
    CHECK(p.choose(-3, "", "x") == 0);
}
