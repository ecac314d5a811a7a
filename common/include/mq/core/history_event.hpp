#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mq/core/message.hpp"

namespace mq {

/// One event of a message's life as it waits in a partition's history buffer
/// (KeyLayout::history, docs/history.md). The buffer entry's id is the event's time and,
/// with tenant, queue and partition, its unique key in PostgreSQL (message_events).
/// Wire field names are short like the message's (docs/wire-format.md); other fields are
/// ignored by the reader, so later writers may add some.
struct HistoryEvent {
    std::string kind;          ///< published, attempt, dead_lettered, replayed, expired (wire "e")
    std::string message_id;    ///< wire "m"
    std::string subscription;  ///< consumer group, wire "s"
    std::string consumer;      ///< wire "c"
    int attempt = 0;           ///< wire "a" (0: not an attempt)
    std::string outcome;       ///< attempt: acked, failed, dead_lettered, filtered, dropped ("o")
    std::int64_t duration_ms = -1;  ///< wire "d" (-1: unknown)
    std::string error;              ///< wire "er" (at most kMaxError bytes)
    std::string producer;           ///< principal that published, wire "pr"
    std::string key;                ///< wire "k"
    std::string headers_json;       ///< wire "h"
    std::int64_t size = -1;         ///< payload bytes, wire "sz"
    std::string trace_id;           ///< wire "tr"
    std::string stream_id;          ///< the message's entry id in its partition, wire "sid"
    std::string detail;  ///< free text: a reason, a replay target, groups that lost it ("x")

    static constexpr std::size_t kMaxError = 2000;
};

namespace history {
inline constexpr const char* kPublished = "published";
inline constexpr const char* kAttempt = "attempt";
inline constexpr const char* kDeadLettered = "dead_lettered";
inline constexpr const char* kReplayed = "replayed";
inline constexpr const char* kExpired = "expired";
}  // namespace history

/// Appends the field/value pairs of `e` (flat, set fields only) to `out`.
void encode_history_fields(const HistoryEvent& e, std::vector<std::string>& out);
/// The event of a buffer entry; unknown fields are ignored, bad numbers read as unset.
HistoryEvent decode_history_fields(const FieldList& fields);

/// The events of one buffer entry. An entry may hold several events one after another
/// (the worker writes one entry per acknowledged batch): each starts at its "e" field, and
/// one without "s" or "c" has the subscription and consumer of the event before it.
/// Fields before the first "e" form an event without a kind, which the writer refuses.
std::vector<HistoryEvent> decode_history_entry(const FieldList& fields);

/// `XADD <history key> * <fields>` for one event (MAXLEN is not used: the buffer never
/// drops an event; docs/history.md says how large it may grow).
std::vector<std::string> history_xadd(const std::string& history_key, const HistoryEvent& e);
/// One XADD holding every event of `events` (one entry instead of one per event: a
/// batch's attempts cost one command), subscription and consumer written only where they
/// change. `events` must not be empty.
std::vector<std::string> history_xadd(const std::string& history_key,
                                      const std::vector<HistoryEvent>& events);

}  // namespace mq
