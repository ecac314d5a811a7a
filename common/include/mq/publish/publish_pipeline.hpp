#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "mq/publish/publisher.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// Group commit for publishers that serve many concurrent callers (mq-api): callers
/// submit work and are called back later; each lane (one thread, one Redis connection)
/// takes everything queued since its last round trip, writes all of it as one pipelined
/// write and reads the replies. Under load many publishes share one round trip; when idle
/// a publish goes out at once (no timer, no added latency).
class PublishPipeline {
public:
    /// outcomes: one per request in order. error: set when Redis failed (then the
    /// outcomes are empty and the messages may or may not be stored).
    using Callback = std::function<void(std::vector<PublishOutcome> outcomes, std::exception_ptr error)>;

    PublishPipeline(redis::Endpoint endpoint, KeyLayout keys, PublishLimits limits, int lanes = 2);
    ~PublishPipeline();  ///< finishes what was submitted, then stops
    PublishPipeline(const PublishPipeline&) = delete;
    PublishPipeline& operator=(const PublishPipeline&) = delete;

    /// Queues `requests` for `queue`; `done` runs on a lane thread (keep it short: post
    /// the rest elsewhere). Requests of one caller stay together and in order.
    void submit(std::shared_ptr<const Queue> queue, std::vector<PublishRequest> requests, Callback done);

    /// Jobs sent and round trips made so far (the ratio is the coalescing factor).
    std::uint64_t jobs() const;
    std::uint64_t round_trips() const;

private:
    struct Job {
        std::shared_ptr<const Queue> queue;
        std::vector<PublishRequest> requests;
        Callback done;
    };
    struct Lane {
        std::mutex mutex;
        std::condition_variable wake;
        std::deque<Job> jobs;
        bool stopping = false;
        std::thread thread;
    };
    void run(Lane& lane);

    redis::Endpoint endpoint_;
    KeyLayout keys_;
    PublishLimits limits_;
    std::vector<std::unique_ptr<Lane>> lanes_;
    std::atomic<std::uint64_t> next_lane_{0};
    std::atomic<std::uint64_t> jobs_{0};
    std::atomic<std::uint64_t> round_trips_{0};
};

}  // namespace mq
