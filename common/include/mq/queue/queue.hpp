#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace mq {

constexpr int kMaxPartitions = 256;

/// A queue (a "topic" in the platform's tables): its configuration as stored in
/// PostgreSQL message_topics.
struct Queue {
    std::string id;  ///< uuid
    std::string tenant;
    std::string name;
    std::string description;
    int partition_count = 1;
    std::chrono::milliseconds retention{std::chrono::hours(24 * 7)};
    std::optional<std::int64_t> max_length;  ///< whole queue; unset means unlimited
    std::chrono::milliseconds dedup_window{std::chrono::hours(24)};
    std::string encryption = "none";  ///< "none" or "aes-256-gcm" (payloads sealed at rest)
    bool is_public = false;
    /// Message history (docs/history.md): every message's life is recorded in PostgreSQL.
    bool record_messages = false;
    std::vector<std::string> allowed_producers;  ///< principals; empty: any producer of the tenant
    std::vector<std::string> allowed_consumers;  ///< principals; empty: any consumer of the tenant
    nlohmann::json schema;  ///< JSON Schema (draft 7) payloads must match; null: none
    /// "leader": a publish is acknowledged once the master stored it; "replica": only
    /// after WAIT 1 confirmed a replica has it too (docs/cluster.md).
    std::string durability = "leader";
    std::string status = "active";
    std::string created_at;  ///< RFC 3339
    std::string updated_at;

    /// max_length split over partitions (rounded up); unset when unlimited. Back-pressure
    /// is enforced per partition so the check stays inside one Lua call.
    std::optional<std::int64_t> max_length_per_partition() const;
};

/// Settings given when creating a queue; unset fields take the configured defaults.
struct QueueSpec {
    std::string name;
    std::string description;
    std::optional<int> partition_count;
    std::optional<std::chrono::milliseconds> retention;
    std::optional<std::int64_t> max_length;
    std::optional<std::chrono::milliseconds> dedup_window;
    /// max_length explicitly null: unlimited even when MAX_QUEUE_LENGTH sets a default.
    bool unlimited_length = false;
    nlohmann::json schema;                  ///< null: none
    std::optional<std::string> encryption;  ///< unset: "none"
    std::optional<std::vector<std::string>> allowed_producers;
    std::optional<std::vector<std::string>> allowed_consumers;
    std::optional<bool> is_public;
    std::optional<bool> record_messages;    ///< unset: false
    std::optional<std::string> durability;  ///< unset: "leader"
};

/// A partial update: only the set fields change.
struct QueueChanges {
    std::optional<std::string> description;
    std::optional<int> partition_count;
    std::optional<std::chrono::milliseconds> retention;
    std::optional<std::optional<std::int64_t>> max_length;  ///< set to nullopt: unlimited
    std::optional<std::chrono::milliseconds> dedup_window;
    std::optional<nlohmann::json> schema;  ///< set to null: remove the schema
    std::optional<std::string> encryption;
    std::optional<std::vector<std::string>> allowed_producers;  ///< set to empty: anyone
    std::optional<std::vector<std::string>> allowed_consumers;
    std::optional<bool> is_public;
    std::optional<bool> record_messages;
    std::optional<std::string> durability;
    bool empty() const {
        return !description && !partition_count && !retention && !max_length && !dedup_window &&
               !schema && !encryption && !allowed_producers && !allowed_consumers && !is_public &&
               !record_messages && !durability;
    }
};

/// The queue as the API and `mqctl -o json` show it (durations in ms).
nlohmann::json to_json(const Queue& queue);

/// Throws ValidationError for out-of-range values (partitions 1-256, positive durations
/// and lengths, description up to 1024 bytes), an unknown encryption, a bad principal
/// name (1-128 of A-Z a-z 0-9 . _ @ : / + -, starting with a letter or digit; at most 100
/// per list) or a schema that does not compile (details {"field": "schema"}).
void validate(const QueueSpec& spec);
void validate(const QueueChanges& changes);

/// Encryption names a queue accepts: "none", "aes-256-gcm".
bool is_known_encryption(const std::string& name);
/// Durability names a queue accepts: "leader", "replica".
bool is_known_durability(const std::string& name);

/// How long a publish to a queue with durability "replica" waits for a replica to confirm
/// (WAIT 1 <ms> per node written) before it fails as try-again (503, exit 5).
constexpr std::chrono::milliseconds kReplicaWaitTimeout{1000};

/// The body of POST /api/v1/mq/queues: {name, description, partitions, retention_ms,
/// max_length (null: unlimited), dedup_window_ms, schema (null: none), encryption,
/// allowed_producers, allowed_consumers, is_public, record_messages, durability}. Unknown fields
/// and wrong types throw ValidationError with {"field": ...}; values are checked with validate().
QueueSpec queue_spec_from_json(const nlohmann::json& body);
/// The body of PUT /api/v1/mq/queues/{name}: the same fields but name, all optional;
/// max_length null means unlimited, schema null removes the schema. An empty change
/// throws ValidationError.
QueueChanges queue_changes_from_json(const nlohmann::json& body);

}  // namespace mq
