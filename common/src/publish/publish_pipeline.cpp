#include "mq/publish/publish_pipeline.hpp"

#include <boost/asio/post.hpp>

namespace mq {

PublishPipeline::PublishPipeline(redis::Endpoint endpoint, KeyLayout keys, PublishLimits limits,
                                 redis::ConnectOptions options)
    : endpoint_(std::move(endpoint)), keys_(std::move(keys)), limits_(limits), options_(options) {}

PublishPipeline::~PublishPipeline() = default;

void PublishPipeline::attach(std::shared_ptr<boost::asio::io_context> ioc) {
    auto loop = std::make_unique<Loop>();
    loop->redis = std::make_unique<redis::AsyncConnection>(std::move(ioc), endpoint_, options_);
    loop->publisher = std::make_unique<Publisher>(keys_, limits_);
    loops_.push_back(std::move(loop));
}

void PublishPipeline::submit(std::shared_ptr<const Queue> queue,
                             std::vector<PublishRequest> requests, Callback done) {
    if (loops_.empty())
        throw Error(ErrorCode::kInternal, "publish pipeline has no I/O context attached");
    for (auto& loop : loops_)
        if (loop->redis->context().get_executor().running_in_this_thread())
            return run(*loop, std::move(queue), std::move(requests), std::move(done));
    // From another thread (the blocking pool): hand it to an I/O thread.
    Loop& loop = *loops_[next_loop_.fetch_add(1, std::memory_order_relaxed) % loops_.size()];
    boost::asio::post(loop.redis->context(),
                      [this, &loop, queue = std::move(queue), requests = std::move(requests),
                       done = std::move(done)]() mutable {
                          run(loop, std::move(queue), std::move(requests), std::move(done));
                      });
}

void PublishPipeline::run(Loop& loop, std::shared_ptr<const Queue> queue,
                          std::vector<PublishRequest> requests, Callback done) {
    jobs_.fetch_add(1, std::memory_order_relaxed);
    struct Job {
        std::shared_ptr<const Queue> queue;
        Publisher::Prepared prepared;
        Callback done;
    };
    auto job = std::make_shared<Job>();
    job->queue = std::move(queue);
    job->done = std::move(done);
    job->prepared = loop.publisher->prepare(*job->queue, requests);
    const redis::Pipeline& pipeline = job->prepared.pipeline;
    auto finished = [job](std::vector<redis::Reply> replies, std::exception_ptr error) {
        if (error) return job->done({}, std::move(error));
        std::vector<PublishOutcome> outcomes;
        try {
            outcomes = Publisher::complete(*job->queue, job->prepared, replies);
        } catch (...) {
            return job->done({}, std::current_exception());
        }
        job->done(std::move(outcomes), nullptr);
    };
    // durability "replica": the turn's write to each node ends with WAIT 1, and nothing is
    // acknowledged before a replica confirmed it.
    if (job->queue->durability == "replica")
        loop.redis->execute_replicated(pipeline, kReplicaWaitTimeout, std::move(finished));
    else
        loop.redis->execute(pipeline, std::move(finished));
}

std::uint64_t PublishPipeline::jobs() const { return jobs_.load(std::memory_order_relaxed); }

std::uint64_t PublishPipeline::round_trips() const {
    // Read from other threads for metrics: a slightly stale sum is fine.
    std::uint64_t n = 0;
    for (const auto& loop : loops_) n += loop->redis->writes();
    return n;
}

}  // namespace mq
