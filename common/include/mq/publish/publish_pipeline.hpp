#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <vector>

#include "mq/publish/publisher.hpp"
#include "mq/redis/async_connection.hpp"

namespace mq {

/// Publishing for servers that run many concurrent callers on Asio I/O threads (mq-api).
/// Each attached io_context gets a Redis connection of its own (redis::AsyncConnection),
/// and a publish made on an I/O thread is prepared, sent and answered on that thread: no
/// hand-off to another thread and no lock. Group commit comes from the connection: every
/// publish made in one turn of the event loop leaves in one write, so under load many
/// publishes share a round trip, and when idle a publish goes out at once.
class PublishPipeline {
  public:
    /// outcomes: one per request in order. error: set when Redis failed (then the
    /// outcomes are empty and the messages may or may not be stored).
    using Callback =
        std::function<void(std::vector<PublishOutcome> outcomes, std::exception_ptr error)>;

    PublishPipeline(redis::Endpoint endpoint, KeyLayout keys, PublishLimits limits,
                    redis::ConnectOptions options = {});
    /// Closes the connections; call when no attached io_context runs any more.
    ~PublishPipeline();
    PublishPipeline(const PublishPipeline&) = delete;
    PublishPipeline& operator=(const PublishPipeline&) = delete;

    /// Gives `ioc` a connection of its own. Attach every I/O context before submitting.
    void attach(std::shared_ptr<boost::asio::io_context> ioc);

    /// Publishes `requests` to `queue`; `done` runs on the caller's thread when that runs
    /// an attached io_context, otherwise on one of them (picked in turn). Requests of one
    /// call stay together and in order. Throws Error when nothing is attached.
    void submit(std::shared_ptr<const Queue> queue, std::vector<PublishRequest> requests,
                Callback done);

    /// Publish calls made and Redis writes made so far (the ratio is the coalescing).
    std::uint64_t jobs() const;
    std::uint64_t round_trips() const;

  private:
    struct Loop {
        std::unique_ptr<redis::AsyncConnection> redis;
        std::unique_ptr<Publisher> publisher;  // prepare/complete only; one per thread
    };
    void run(Loop& loop, std::shared_ptr<const Queue> queue, std::vector<PublishRequest> requests,
             Callback done);

    redis::Endpoint endpoint_;
    KeyLayout keys_;
    PublishLimits limits_;
    redis::ConnectOptions options_;
    std::vector<std::unique_ptr<Loop>> loops_;
    std::atomic<std::uint64_t> next_loop_{0};
    std::atomic<std::uint64_t> jobs_{0};
};

}  // namespace mq
