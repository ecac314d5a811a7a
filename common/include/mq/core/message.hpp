#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mq {

/// One message as it lives in a partition stream. Field names on the wire are short and
/// documented in docs/wire-format.md; other clients may read them.
struct Message {
    std::string id;            ///< UUIDv7, wire "id"
    std::string key;           ///< partition/ordering key, wire "k" (omitted when empty)
    std::string headers_json;  ///< JSON object of string headers, wire "h" (omitted when empty)
    std::string payload;       ///< opaque bytes, wire "p"
    std::string content_type;  ///< wire "ct" (omitted when empty)
    std::int64_t published_ms = 0;  ///< wire "t", Unix ms at publish
    std::string trace_id;           ///< wire "tr" (omitted when empty)
    std::string trace_parent_id;    ///< W3C parent (publisher's span) id, wire "sp"
    std::string trace_flags;        ///< W3C trace flags, "00" or "01", wire "tf"
    std::string trace_state;        ///< W3C tracestate, cleaned, wire "tst"
    std::string encryption_key_id;  ///< wire "ek", set when payload is AES-256-GCM sealed
};

namespace wire {
inline constexpr const char* kId = "id";
inline constexpr const char* kKey = "k";
inline constexpr const char* kHeaders = "h";
inline constexpr const char* kPayload = "p";
inline constexpr const char* kContentType = "ct";
inline constexpr const char* kPublished = "t";
inline constexpr const char* kTrace = "tr";
inline constexpr const char* kTraceParent = "sp";
inline constexpr const char* kTraceFlags = "tf";
inline constexpr const char* kTraceState = "tst";
inline constexpr const char* kEncryptionKey = "ek";
/// Present (its value the producer principal, possibly empty) only on entries of a queue
/// that records messages: the history writer records such an entry as published when it
/// reads it (docs/history.md). Not part of Message: consumers are not told who published.
inline constexpr const char* kProducer = "pr";
/// On an entry that waited in the delayed set of a recording queue: its due time (Unix ms).
/// Its published event was recorded when it was delayed, so the writer skips it.
inline constexpr const char* kDelayedUntil = "dl";
}  // namespace wire

using FieldList = std::vector<std::pair<std::string, std::string>>;

/// Appends the field/value pairs of `m` in wire order to `out` (flat: f1, v1, f2, v2...).
void encode_fields(const Message& m, std::vector<std::string>& out);

/// Builds a Message from stream entry fields; unknown fields are ignored so newer writers
/// can add fields. Throws ValidationError when "id" or "p" is missing.
Message decode_fields(const FieldList& fields);

}  // namespace mq
