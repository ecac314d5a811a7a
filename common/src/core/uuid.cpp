#include "mq/core/uuid.hpp"

#include <chrono>
#include <mutex>
#include <random>

#include "mq/core/codec.hpp"

namespace mq {

namespace {

struct Generator {
    std::mutex mu;
    std::mt19937_64 rng{std::random_device{}()};
    std::int64_t last_ms = 0;
    std::uint32_t counter = 0;  // 12 bits used
};

Generator& generator() {
    static Generator g;
    return g;
}

}  // namespace

std::string new_uuid_v7() {
    auto& g = generator();
    std::uint8_t b[16];
    std::int64_t ms;
    std::uint64_t rand_b;
    std::uint32_t counter;
    {
        std::lock_guard lock(g.mu);
        ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
        if (ms <= g.last_ms) {
            ms = g.last_ms;  // clock went back or same ms: keep order with the counter
            if (++g.counter > 0xFFF) {
                ++ms;  // counter exhausted: borrow the next millisecond
                g.counter = static_cast<std::uint32_t>(g.rng() & 0x7FF);
            }
        } else {
            g.counter = static_cast<std::uint32_t>(g.rng() & 0x7FF);  // leave room to count
        }
        g.last_ms = ms;
        counter = g.counter;
        rand_b = g.rng();
    }
    for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
    b[6] = static_cast<std::uint8_t>(0x70 | ((counter >> 8) & 0x0F));
    b[7] = static_cast<std::uint8_t>(counter & 0xFF);
    for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<std::uint8_t>(rand_b >> (56 - 8 * i));
    b[8] = static_cast<std::uint8_t>(0x80 | (b[8] & 0x3F));

    std::string out;
    out.reserve(36);
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        codec::append_hex_byte(out, b[i]);
    }
    return out;
}

std::int64_t uuid_v7_millis(const std::string& uuid) {
    if (uuid.size() != 36 || uuid[14] != '7') return -1;
    std::int64_t ms = 0;
    int digits = 0;
    for (char c : uuid) {
        if (c == '-') continue;
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else
            return -1;
        ms = (ms << 4) | v;
        if (++digits == 12) break;
    }
    return ms;
}

}  // namespace mq
