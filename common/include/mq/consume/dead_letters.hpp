#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mq/core/keys.hpp"
#include "mq/core/message.hpp"
#include "mq/pg/database.hpp"
#include "mq/publish/publish_use_case.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// One entry of a partition's dead-letter stream (docs/wire-format.md, "Dead letters").
struct DeadLetter {
    int partition = 0;
    std::string dlq_id;  ///< entry id in the :dlq stream
    Message message;
    std::string subscription;
    std::string reason;
    std::string error;
    int attempts = 0;
    std::int64_t dead_ms = 0;
    std::string original_stream_id;

    /// The id operators use: "<partition>:<stream id>", unique within the queue (stream
    /// ids alone repeat across partitions).
    std::string handle() const {
        return std::to_string(partition) + ":" + dlq_id;
    }  // see entry_ref.hpp
};

nlohmann::json to_json(const DeadLetter& d);

/// Which dead letters a list, replay or purge is about. Empty fields match everything.
struct DeadLetterFilter {
    std::string subscription;               ///< only this subscription's
    std::string reason;                     ///< only this reason ("max_attempts", ...)
    std::optional<std::int64_t> since_ms;   ///< died at or after (Unix ms)
    std::optional<std::int64_t> before_ms;  ///< died before (Unix ms)
    /// Paging cursor: only dead letters after this handle in list order (newest first).
    /// A handle ("<partition>:<stream id>") from DeadLetterPage::next_cursor; ValidationError
    /// (details {"field": "cursor"}) when malformed or naming a partition the queue lacks.
    std::string after;
};

/// One page of a listing, newest first (by stream id, then partition).
struct DeadLetterPage {
    std::vector<DeadLetter> items;
    std::string next_cursor;  ///< empty when this is the last page
};

inline constexpr double kMaxReplayRate = 100000;

/// Parses a --rate / "rate" value: "N", "N/s", "N/m" or "N/h" (N > 0, at most kMaxReplayRate
/// per second). Throws ValidationError naming `field`.
double parse_replay_rate(const std::string& text, const std::string& field);

enum class ReplayStatus {
    kReplayed,     ///< published (or found already published) and removed
    kWouldReplay,  ///< dry run: admission passed
    kFailed,       ///< refused (schema, full queue, cannot decrypt...); the dead letter stays
    kNotFound,     ///< no such dead letter
};
std::string_view replay_status_name(ReplayStatus s);  ///< "replayed", "would_replay", ...

struct ReplayResult {
    std::string id;  ///< dead-letter handle
    ReplayStatus status = ReplayStatus::kFailed;
    PublishOutcome outcome;      ///< kReplayed: the new message
    std::optional<Error> error;  ///< kFailed: why
};

struct ReplayReport {
    std::size_t replayed = 0, would_replay = 0, failed = 0, not_found = 0;
    std::vector<ReplayResult> results;  ///< in replay order
};

nlohmann::json to_json(const ReplayResult& r);

/// How a replay runs.
struct ReplayOptions {
    /// Admit each message (open, schema, seal) and report what would happen; publish and
    /// remove nothing, take no quota.
    bool dry_run = false;
    /// Messages per second, paced evenly from the start (no bursts after a slow one);
    /// nullopt: as fast as Redis takes them. Must be in (0, kMaxReplayRate].
    std::optional<double> rate_per_s;
    /// Called after each dead letter (printing progress); may be empty.
    std::function<void(const ReplayResult&)> on_result;
};

/// Reads, replays and purges a queue's dead letters.
class DeadLetterStore {
  public:
    DeadLetterStore(redis::Connection& redis, KeyLayout keys)
        : redis_(redis), keys_(std::move(keys)) {}

    /// Newest first across partitions; `subscription` empty means all; `since_ms` keeps
    /// those that died at or after it.
    std::vector<DeadLetter> list(const Queue& queue, const std::string& subscription,
                                 std::size_t limit,
                                 std::optional<std::int64_t> since_ms = std::nullopt);
    /// By handle ("<partition>:<stream id>"). ValidationError when malformed.
    std::optional<DeadLetter> find(const Queue& queue, const std::string& handle);
    std::int64_t count(const Queue& queue);

    /// A page of dead letters matching `filter`, at most `limit` (>= 1), newest first;
    /// follow next_cursor for the rest.
    DeadLetterPage page(const Queue& queue, const DeadLetterFilter& filter, std::size_t limit);
    /// Every match of `filter` (cursor ignored), oldest first, at most `limit`: what a
    /// replay by filter works through, in the order the messages died.
    std::vector<DeadLetter> select(const Queue& queue, const DeadLetterFilter& filter,
                                   std::size_t limit);

    /// Publishes the message again to `target` (usually its own queue) as a new message
    /// through the publish use case (PublishUseCase::republish_request: opened, checked
    /// against target's current schema, sealed for target), and only after Redis has
    /// accepted it removes the dead letter. Throws when admission or the publish fails; the
    /// dead letter then stays. The publish carries idempotency key
    /// "mq-replay:<tenant>/<queue>:<handle>", so a replay interrupted between publish and
    /// removal, run again within target's dedup window, publishes nothing new and removes
    /// the dead letter. Note: a message replayed to its queue reaches every subscription.
    PublishOutcome replay(const Queue& from, const DeadLetter& d, const Queue& target,
                          Publisher& publisher, const PublishUseCase& use_case);

    /// replay() for each of `todo` in order, paced by options.rate_per_s, or a dry run.
    /// `missing` handles are reported as kNotFound. Quota (the use case's) is taken for
    /// all of `todo` first: Error(kQuotaExceeded) before anything is replayed. A refused
    /// message is reported and the run goes on; BackendUnavailable stops it (thrown: what
    /// was replayed before is removed, the rest stays).
    ReplayReport replay_all(const Queue& from, const std::vector<DeadLetter>& todo,
                            const std::vector<std::string>& missing, const Queue& target,
                            Publisher& publisher, const PublishUseCase& use_case,
                            const ReplayOptions& options);

    /// Removes dead letters (all, or those that died before `before_ms`). Returns how many.
    std::int64_t purge(const Queue& queue, std::optional<std::int64_t> before_ms = std::nullopt);

  private:
    redis::Connection& redis_;
    KeyLayout keys_;
};

/// DeadLetterStore::replay_all as an admin action: refused (BackendUnavailable, nothing
/// replayed) while PostgreSQL cannot record it, then recorded once as "dead_letter.replay"
/// with the counts and the handles replayed (docs/audit.md). A dry run changes nothing and
/// is not recorded.
ReplayReport replay_dead_letters(pg::Database& db, DeadLetterStore& store, const Queue& from,
                                 const std::vector<DeadLetter>& todo,
                                 const std::vector<std::string>& missing, const Queue& target,
                                 Publisher& publisher, const PublishUseCase& use_case,
                                 const ReplayOptions& options);

/// DeadLetterStore::purge as an admin action, recorded as "dead_letter.purge" (the same
/// rule as replay_dead_letters).
std::int64_t purge_dead_letters(pg::Database& db, DeadLetterStore& store, const Queue& queue,
                                std::optional<std::int64_t> before_ms = std::nullopt);

}  // namespace mq
