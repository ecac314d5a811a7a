#pragma once

// Bounded waiting for something another thread or process does.

#include <chrono>
#include <thread>

namespace mqtest {

/// Polls `pred` every `every` (20 ms unless told) until it holds, then answers true at once;
/// after `limit` it answers pred's last value.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit,
                std::chrono::milliseconds every = std::chrono::milliseconds(20)) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) return true;
        std::this_thread::sleep_for(every);
    }
    return pred();
}

}  // namespace mqtest
