#include "mq/core/keys.hpp"

namespace mq {

std::string KeyLayout::partition_base(std::string_view tenant, std::string_view queue,
                                      int partition) const {
    std::string key;
    key.reserve(prefix_.size() + tenant.size() + queue.size() + 16);
    key += prefix_;
    key += '{';
    key += tenant;
    key += ':';
    key += queue;
    key += ':';
    key += std::to_string(partition);
    key += '}';
    return key;
}

std::string KeyLayout::stream(std::string_view t, std::string_view q, int p) const {
    return partition_base(t, q, p) + ":s";
}
std::string KeyLayout::delayed(std::string_view t, std::string_view q, int p) const {
    return partition_base(t, q, p) + ":d";
}
std::string KeyLayout::dead_letters(std::string_view t, std::string_view q, int p) const {
    return partition_base(t, q, p) + ":dlq";
}
std::string KeyLayout::retry_after(std::string_view t, std::string_view q, int p) const {
    return partition_base(t, q, p) + ":ra";
}
std::string KeyLayout::history(std::string_view t, std::string_view q, int p) const {
    return partition_base(t, q, p) + ":h";
}
std::string KeyLayout::history_cursor(std::string_view t, std::string_view q, int p) const {
    return partition_base(t, q, p) + ":hc";
}
std::string KeyLayout::expired(std::string_view t, std::string_view q, int p) const {
    return partition_base(t, q, p) + ":x";
}
std::string KeyLayout::idempotency(std::string_view t, std::string_view q, int p,
                                   std::string_view idempotency_key) const {
    return partition_base(t, q, p) + ":k:" + std::string(idempotency_key);
}

std::string KeyLayout::idempotency_pattern(std::string_view t, std::string_view q, int p) const {
    // Glob metacharacters in the base would break MATCH; names cannot contain them, but a
    // prefix could, so escape it.
    std::string out;
    for (char c : partition_base(t, q, p)) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
        out += c;
    }
    return out + ":k:*";
}

std::string KeyLayout::maintenance_lease(int shard) const {
    return prefix_ + "maint:lease:" + std::to_string(shard);
}
std::string KeyLayout::maintenance_global_lease() const { return prefix_ + "maint:lease:global"; }
std::string KeyLayout::maintenance_members() const { return prefix_ + "maint:members"; }

}  // namespace mq
