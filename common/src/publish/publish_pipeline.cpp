#include "mq/publish/publish_pipeline.hpp"

#include <spdlog/spdlog.h>

namespace mq {

namespace {
// Jobs taken per round trip: bounds the memory of one pipeline and the wait of the last.
constexpr std::size_t kMaxJobsPerTrip = 256;
}  // namespace

PublishPipeline::PublishPipeline(redis::Endpoint endpoint, KeyLayout keys, PublishLimits limits, int lanes)
    : endpoint_(std::move(endpoint)), keys_(std::move(keys)), limits_(limits) {
    if (lanes < 1) lanes = 1;
    for (int i = 0; i < lanes; ++i) lanes_.push_back(std::make_unique<Lane>());
    for (auto& lane : lanes_) lane->thread = std::thread([this, l = lane.get()] { run(*l); });
}

PublishPipeline::~PublishPipeline() {
    for (auto& lane : lanes_) {
        {
            std::lock_guard lock(lane->mutex);
            lane->stopping = true;
        }
        lane->wake.notify_one();
    }
    for (auto& lane : lanes_) lane->thread.join();
}

void PublishPipeline::submit(std::shared_ptr<const Queue> queue, std::vector<PublishRequest> requests,
                             Callback done) {
    Lane& lane = *lanes_[next_lane_.fetch_add(1, std::memory_order_relaxed) % lanes_.size()];
    bool was_idle;
    {
        std::lock_guard lock(lane.mutex);
        was_idle = lane.jobs.empty();
        lane.jobs.push_back(Job{std::move(queue), std::move(requests), std::move(done)});
    }
    if (was_idle) lane.wake.notify_one();
}

std::uint64_t PublishPipeline::jobs() const { return jobs_.load(); }
std::uint64_t PublishPipeline::round_trips() const { return round_trips_.load(); }

void PublishPipeline::run(Lane& lane) {
    // The connection is made on first use and remade after a failure (Connection does).
    std::unique_ptr<redis::Connection> redis;
    std::unique_ptr<Publisher> publisher;
    std::vector<Job> batch;
    std::vector<Publisher::Prepared> prepared;
    for (;;) {
        batch.clear();
        {
            std::unique_lock lock(lane.mutex);
            lane.wake.wait(lock, [&] { return lane.stopping || !lane.jobs.empty(); });
            if (lane.jobs.empty()) return;  // stopping, and everything submitted is done
            while (!lane.jobs.empty() && batch.size() < kMaxJobsPerTrip) {
                batch.push_back(std::move(lane.jobs.front()));
                lane.jobs.pop_front();
            }
        }
        jobs_ += batch.size();
        round_trips_ += 1;
        prepared.clear();
        prepared.reserve(batch.size());
        std::size_t sent = 0;
        std::exception_ptr failure;
        try {
            if (!redis) {
                redis = std::make_unique<redis::Connection>(endpoint_);
                publisher = std::make_unique<Publisher>(*redis, keys_, limits_);
            }
            for (auto& job : batch) prepared.push_back(publisher->prepare(*job.queue, job.requests));
            for (auto& p : prepared) {
                publisher->send(p);
                ++sent;
            }
        } catch (...) {
            failure = std::current_exception();
        }
        // Every job sent gets its replies read, in order, even after a failure elsewhere:
        // the connection must not be left with replies in flight.
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (i < sent && !failure) {
                try {
                    auto outcomes = publisher->finish(*batch[i].queue, prepared[i]);
                    batch[i].done(std::move(outcomes), nullptr);
                    continue;
                } catch (...) {
                    failure = std::current_exception();
                }
            }
            if (!failure) failure = std::make_exception_ptr(BackendUnavailable("publish was not sent"));
            batch[i].done({}, failure);
        }
        if (failure) {
            // A failed connection may hold half-read replies: start afresh next time.
            publisher.reset();
            redis.reset();
        }
    }
}

}  // namespace mq
