#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mq/error.hpp"
#include "mq/redis/client.hpp"

/// Typed Redis Streams commands: each `*_command` builds an argv, each `parse_*` turns the
/// reply into a struct. A reply whose shape is not what the command documents (a server
/// or proxy that answers something else) throws ReplyShapeError, the one error for that.
namespace mq::redis {

/// A Redis reply that does not have the documented shape of its command (ErrorCode::kInternal).
class ReplyShapeError : public Error {
  public:
    explicit ReplyShapeError(const std::string& message) : Error(ErrorCode::kInternal, message) {}
};

/// One stream entry. `deleted` is set when the reply names an id whose entry is gone
/// (XREADGROUP reading a consumer's history, XCLAIM on Redis < 7): `fields` is then empty.
struct StreamEntry {
    std::string id;
    std::vector<std::pair<std::string, std::string>> fields;
    bool deleted = false;
};

/// Unix milliseconds of a stream id "<ms>-<seq>"; nullopt when it is not one.
std::optional<std::int64_t> stream_id_millis(std::string_view id);

/// Throws the Error a command's error reply means (NOGROUP -> kSubscriptionNotFound,
/// anything else kInternal with the command name); does nothing for other replies.
void throw_if_error(const Reply& reply, std::string_view command);

// ---- XREADGROUP --------------------------------------------------------------------------

/// XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS key id. `block` zero means no BLOCK;
/// `id` ">" reads new entries, "0" the consumer's own pending history.
std::vector<std::string> xreadgroup_command(
    const std::string& group, const std::string& consumer, const std::string& stream, int count,
    std::chrono::milliseconds block = std::chrono::milliseconds(0), const std::string& id = ">");
/// Entries of a one-stream XREADGROUP reply (nil = none). Moves the strings out of `reply`.
std::vector<StreamEntry> parse_xreadgroup(Reply&& reply);

// ---- XPENDING ----------------------------------------------------------------------------

/// XPENDING key group: the summary form.
struct PendingSummary {
    std::int64_t count = 0;
    std::string smallest_id;  ///< empty when nothing is pending
    std::string greatest_id;
    std::vector<std::pair<std::string, std::int64_t>> consumers;  ///< name, entries held
};
std::vector<std::string> xpending_summary_command(const std::string& stream,
                                                  const std::string& group);
PendingSummary parse_xpending_summary(const Reply& reply);

/// One row of XPENDING's extended form.
struct PendingRow {
    std::string id;
    std::string consumer;
    std::int64_t idle_ms = 0;
    std::int64_t deliveries = 0;
};
/// XPENDING key group [IDLE ms] start end count [consumer]. `min_idle` zero means no IDLE.
std::vector<std::string> xpending_command(
    const std::string& stream, const std::string& group, int count,
    std::chrono::milliseconds min_idle = std::chrono::milliseconds(0),
    const std::string& consumer = {}, const std::string& start = "-", const std::string& end = "+");
std::vector<PendingRow> parse_xpending(const Reply& reply);

// ---- XINFO -------------------------------------------------------------------------------

/// One element of XINFO GROUPS.
struct GroupInfo {
    std::string name;
    std::int64_t consumers = 0;
    std::int64_t pending = 0;
    std::string last_delivered_id;
    std::optional<std::int64_t> entries_read;  ///< Redis >= 7; nil when unknown
    std::optional<std::int64_t> lag;  ///< Redis >= 7; nil when Redis cannot tell (after deletions)
};
std::vector<std::string> xinfo_groups_command(const std::string& stream);
/// The groups of a stream. A stream that does not exist (error "no such key") has none.
std::vector<GroupInfo> parse_xinfo_groups(const Reply& reply);

/// One element of XINFO CONSUMERS.
struct ConsumerInfo {
    std::string name;
    std::int64_t pending = 0;
    std::int64_t idle_ms = 0;                 ///< since the last attempted interaction
    std::optional<std::int64_t> inactive_ms;  ///< Redis >= 7.2: since the last successful one
};
std::vector<std::string> xinfo_consumers_command(const std::string& stream,
                                                 const std::string& group);
/// The consumers of a group; none when the stream or group does not exist.
std::vector<ConsumerInfo> parse_xinfo_consumers(const Reply& reply);

/// XINFO STREAM key (the summary form).
struct StreamInfo {
    std::int64_t length = 0;
    std::int64_t groups = 0;
    std::string last_generated_id;
    std::optional<std::int64_t> entries_added;  ///< Redis >= 7
    std::optional<StreamEntry> first_entry;
    std::optional<StreamEntry> last_entry;
};
std::vector<std::string> xinfo_stream_command(const std::string& stream);
/// nullopt when the stream does not exist.
std::optional<StreamInfo> parse_xinfo_stream(const Reply& reply);

// ---- XCLAIM / XAUTOCLAIM -----------------------------------------------------------------

struct ClaimOptions {
    std::optional<std::chrono::milliseconds> idle;  ///< IDLE: set the entries' idle time
    std::optional<std::int64_t> retry_count;        ///< RETRYCOUNT: set the delivery count
    bool just_id = false;                           ///< JUSTID: ids only, count unchanged
};
/// XCLAIM key group consumer min-idle id... [IDLE ms] [RETRYCOUNT n] [JUSTID].
std::vector<std::string> xclaim_command(const std::string& stream, const std::string& group,
                                        const std::string& consumer,
                                        std::chrono::milliseconds min_idle,
                                        const std::vector<std::string>& ids,
                                        const ClaimOptions& options = {});
/// Claimed entries (with JUSTID: ids only, empty fields). Moves strings out of `reply`.
std::vector<StreamEntry> parse_xclaim(Reply&& reply);

struct AutoClaimed {
    std::string next_cursor;  ///< "0-0" when the scan is complete
    std::vector<StreamEntry> entries;
    std::vector<std::string> deleted_ids;  ///< pending ids whose entries were gone (Redis >= 7)
};
/// XAUTOCLAIM key group consumer min-idle start COUNT n [JUSTID].
std::vector<std::string> xautoclaim_command(const std::string& stream, const std::string& group,
                                            const std::string& consumer,
                                            std::chrono::milliseconds min_idle,
                                            const std::string& start, int count,
                                            bool just_id = false);
AutoClaimed parse_xautoclaim(Reply&& reply);

}  // namespace mq::redis
