#include "mq/queue/queue.hpp"

#include "mq/core/names.hpp"
#include "mq/error.hpp"

namespace mq {

std::optional<std::int64_t> Queue::max_length_per_partition() const {
    if (!max_length) return std::nullopt;
    return *max_length / partition_count + (*max_length % partition_count != 0);
}

nlohmann::json to_json(const Queue& q) {
    return {{"id", q.id},
            {"tenant", q.tenant},
            {"name", q.name},
            {"description", q.description},
            {"partitions", q.partition_count},
            {"retention_ms", q.retention.count()},
            {"max_length", q.max_length ? nlohmann::json(*q.max_length) : nlohmann::json(nullptr)},
            {"dedup_window_ms", q.dedup_window.count()},
            {"encryption", q.encryption},
            {"is_public", q.is_public},
            {"allowed_producers", q.allowed_producers},
            {"allowed_consumers", q.allowed_consumers},
            {"status", q.status},
            {"created_at", q.created_at},
            {"updated_at", q.updated_at}};
}

namespace {
void check_partitions(int n) {
    if (n < 1 || n > kMaxPartitions)
        throw ValidationError("partitions must be from 1 to " + std::to_string(kMaxPartitions) +
                                  ", got " + std::to_string(n),
                              {{"field", "partitions"}});
}
void check_positive(std::chrono::milliseconds d, const char* field) {
    if (d.count() <= 0)
        throw ValidationError(std::string(field) + " must be greater than zero", {{"field", field}});
}
void check_description(const std::string& d) {
    if (d.size() > 1024)
        throw ValidationError("description is longer than 1024 bytes",
                              {{"field", "description"}});
}
// Lua numbers are doubles: beyond 2^53 the check in the publish script would be inexact.
constexpr std::int64_t kMaxQueueLength = std::int64_t{1} << 53;
void check_max_length(std::int64_t n) {
    if (n <= 0 || n > kMaxQueueLength)
        throw ValidationError("max length must be from 1 to " + std::to_string(kMaxQueueLength) +
                                  " (omit it for unlimited)",
                              {{"field", "max_length"}});
}
}  // namespace

void validate(const QueueSpec& spec) {
    validate_name("queue name", spec.name);
    check_description(spec.description);
    if (spec.partition_count) check_partitions(*spec.partition_count);
    if (spec.retention) check_positive(*spec.retention, "retention");
    if (spec.dedup_window) check_positive(*spec.dedup_window, "dedup_window");
    if (spec.max_length) check_max_length(*spec.max_length);
}

void validate(const QueueChanges& c) {
    if (c.description) check_description(*c.description);
    if (c.partition_count) check_partitions(*c.partition_count);
    if (c.retention) check_positive(*c.retention, "retention");
    if (c.dedup_window) check_positive(*c.dedup_window, "dedup_window");
    if (c.max_length && *c.max_length) check_max_length(**c.max_length);
}

}  // namespace mq
