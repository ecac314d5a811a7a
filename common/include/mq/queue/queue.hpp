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
    std::string encryption = "none";
    bool is_public = false;
    std::vector<std::string> allowed_producers;
    std::vector<std::string> allowed_consumers;
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
};

/// A partial update: only the set fields change.
struct QueueChanges {
    std::optional<std::string> description;
    std::optional<int> partition_count;
    std::optional<std::chrono::milliseconds> retention;
    std::optional<std::optional<std::int64_t>> max_length;  ///< set to nullopt: unlimited
    std::optional<std::chrono::milliseconds> dedup_window;
    bool empty() const {
        return !description && !partition_count && !retention && !max_length && !dedup_window;
    }
};

/// The queue as the API and `mqctl -o json` show it (durations in ms).
nlohmann::json to_json(const Queue& queue);

/// Throws ValidationError for out-of-range values (partitions 1-256, positive durations
/// and lengths, description up to 1024 bytes).
void validate(const QueueSpec& spec);
void validate(const QueueChanges& changes);

}  // namespace mq
