#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mq/core/history_event.hpp"
#include "mq/core/keys.hpp"
#include "mq/pg/database.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// Settings of the history writer (docs/history.md).
struct HistoryWriterOptions {
    std::int64_t batch = 1000;  ///< events per partition and transaction (HISTORY_BATCH)
    /// Called after the PostgreSQL commit and before the buffer entries are deleted; tests
    /// throw from it to imitate a crash between the two.
    std::function<void()> before_delete;
};

/// What one drain() did.
struct HistoryDrain {
    std::int64_t written = 0;    ///< events committed to PostgreSQL (duplicates included)
    std::int64_t malformed = 0;  ///< buffer entries that were not events: logged and dropped
    bool more = false;           ///< some partition had a full batch: call again
};

/// Moves a queue's history events to PostgreSQL message_events. Per partition: the events
/// of its Redis buffer (KeyLayout::history, XRANGE h - + COUNT batch) and, on a recording
/// queue, its stream entries after the history cursor (KeyLayout::history_cursor), each
/// of which is a published event; one INSERT ... ON CONFLICT DO NOTHING per partition in
/// one transaction; then XDEL of exactly those buffer ids and the cursor moved past the
/// entries read. The unique key (tenant, queue, partition, buffer id or "s:<stream id>")
/// makes a re-run after a crash between commit and XDEL insert nothing twice. PostgreSQL
/// down: throws BackendUnavailable; the buffers keep what they hold and the trimmer keeps
/// the unread stream entries (publishing never waits for this).
class HistoryWriter {
  public:
    HistoryWriter(redis::Connection& redis, pg::Database& db, KeyLayout keys,
                  HistoryWriterOptions options = {});

    /// One batch per partition. Drains whatever the buffers hold, also for a queue whose
    /// recording was just turned off.
    HistoryDrain drain(const Queue& queue);

  private:
    redis::Connection& redis_;
    pg::Database& db_;
    KeyLayout keys_;
    HistoryWriterOptions options_;
};

/// One row of message_events, as a timeline line.
struct HistoryRecord {
    std::string event;
    std::int64_t at_ms = 0;
    std::string tenant;
    std::string queue;
    int partition = 0;
    HistoryEvent detail;  ///< the event's fields (kind and message_id repeated)
};
nlohmann::json to_json(const HistoryRecord& record);

/// A recorded message as the list shows it: its published event and what became of it.
struct MessageSummary {
    std::string message_id;
    std::string queue;
    int partition = 0;
    std::int64_t published_ms = 0;
    std::string producer;
    std::string key;
    std::int64_t size = -1;
    std::string trace_id;
    /// acked, dead_lettered, expired, failed (a failed attempt, nothing final yet), or
    /// pending (docs/history.md, "Status").
    std::string status;
    int attempts = 0;
};
nlohmann::json to_json(const MessageSummary& summary);

/// Statuses a list may filter by.
inline const std::vector<std::string>& history_statuses() {
    static const std::vector<std::string> k{"pending",       "failed",  "acked",
                                            "dead_lettered", "expired", "replayed"};
    return k;
}

/// A list request. Every field is checked by validate(): ValidationError naming it.
struct MessageFilter {
    std::optional<std::int64_t> since_ms;  ///< published at or after
    std::string status;                    ///< empty: any; else one of history_statuses()
    std::size_t limit = 50;                ///< 1..kMaxHistoryPage
    std::string cursor;                    ///< opaque, from the previous page
};
inline constexpr std::size_t kMaxHistoryPage = 500;
/// The longest a page of a queue's messages may take in PostgreSQL (statement_timeout);
/// past it the list answers MQ_OVERLOADED (503) rather than hold a connection.
inline constexpr std::chrono::milliseconds kListTimeout{10000};
/// Most events a timeline shows (a message with more says truncated).
inline constexpr std::size_t kMaxTimeline = 1000;
void validate(const MessageFilter& filter);

struct MessagePage {
    std::vector<MessageSummary> items;
    std::string next_cursor;  ///< empty: last page
};

struct MessageTimeline {
    std::vector<HistoryRecord> events;  ///< time-ordered
    bool truncated = false;
};

/// Reads the history. Every read is within one tenant: another tenant's message is
/// simply not there.
class HistoryStore {
  public:
    explicit HistoryStore(pg::Database& db) : db_(db) {}

    /// The message's events; NotFound (404) when the tenant has none for it, ValidationError
    /// {"field": "id"} when `message_id` is not a uuid.
    MessageTimeline timeline(const std::string& tenant, const std::string& message_id);
    /// Recorded messages of a queue, newest first, one page.
    MessagePage list(const std::string& tenant, const std::string& queue,
                     const MessageFilter& filter);
    /// Deletes events older than `retention`, at most `batch` rows per statement and
    /// `max_batches` statements, and no new statement once `budget` has passed; returns
    /// how many. The defaults keep up with far more than a busy instance writes per minute
    /// (the retention task runs every minute) without holding the lease for long.
    std::int64_t purge(std::chrono::milliseconds retention, std::int64_t batch = 5000,
                       int max_batches = 1000,
                       std::chrono::milliseconds budget = std::chrono::seconds(20));

  private:
    pg::Database& db_;
};

/// A `since` filter: an age ("30m", "1h", "2d": that long ago) or an RFC 3339 time, to Unix
/// ms. ValidationError {"field": field} otherwise.
std::int64_t parse_since(const std::string& text, const std::string& field);

/// Whether `text` is a canonical uuid (8-4-4-4-12 hex).
bool is_uuid(const std::string& text);

}  // namespace mq
