#pragma once

// A Redis connection driven by an Asio io_context: commands are pipelined and replies
// read as they arrive, without blocking the thread. Used by mq-api, whose I/O threads
// publish themselves instead of handing work to other threads.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <vector>

#include "mq/redis/client.hpp"

namespace mq::redis {

/// One connection bound to one io_context. Every call must come from a thread running
/// that io_context (for mq-api: the connection's own I/O thread).
///
/// Commands given to execute() in one turn of the event loop leave in one write (group
/// commit): under load many callers share a round trip; when idle a command goes out at
/// the end of the current handler. Replies come back in order.
///
/// On a Redis Cluster (Endpoint::cluster()) there is one such connection per node: a
/// pipeline is split by its keys' slots, each node's part joins that node's next write (one
/// round trip per node per turn), MOVED/ASK are followed and the slot map is read again
/// (asynchronously) after a redirection, a failure, and every 30 s.
///
/// Failure is never retried: when the connection breaks or Redis does not answer within
/// the command timeout, every call in flight gets BackendUnavailable (the commands may or
/// may not have run) and the next call connects afresh. Scripts are loaded on first use
/// and, when the server lost them (NOSCRIPT: SCRIPT FLUSH, restart), loaded again and the
/// command run once more; the script did not run, so that is safe.
class AsyncConnection {
  public:
    /// replies: one per command, in order, error replies as values. error: set when the
    /// connection failed (then replies is empty).
    using Callback = std::function<void(std::vector<Reply> replies, std::exception_ptr error)>;

    AsyncConnection(std::shared_ptr<boost::asio::io_context> ioc, Endpoint endpoint,
                    ConnectOptions options = {});
    /// Closes the socket; callbacks of calls in flight are dropped without being called.
    /// Destroy it on its io_context's thread or when that io_context runs no more.
    ~AsyncConnection();
    AsyncConnection(const AsyncConnection&) = delete;
    AsyncConnection& operator=(const AsyncConnection&) = delete;

    /// Sends `pipeline` (which must stay alive until `done` runs) and calls `done` on this
    /// connection's thread with its replies. An empty pipeline completes at once.
    void execute(const Pipeline& pipeline, Callback done);
    /// As execute(), but `done` gets the replies only once `WAIT 1 <replica_wait ms>` on
    /// every node written confirmed that a replica has them. One WAIT per node per write
    /// (group commit: the calls of one turn share it). When it answers 0 (no replica
    /// confirmed in time) or fails, `done` gets BackendUnavailable: the commands ran on the
    /// master, but are not known to be replicated.
    void execute_replicated(const Pipeline& pipeline, std::chrono::milliseconds replica_wait,
                            Callback done);

    /// Writes made so far (each carries every command queued since the previous one).
    std::uint64_t writes() const;
    boost::asio::io_context& context() const;

    struct Impl;
    struct Cluster;

  private:
    std::shared_ptr<Impl> impl_;        // one server; null on a cluster
    std::shared_ptr<Cluster> cluster_;  // a Redis Cluster: one Impl per node
};

}  // namespace mq::redis
