#pragma once

#include <string>
#include <string_view>

namespace mq {

/// The Redis key layout of DESIGN.md §3. Every key of one partition shares the hash tag
/// `{<tenant>:<queue>:<p>}`, so one Lua script touches a single cluster slot.
class KeyLayout {
  public:
    explicit KeyLayout(std::string prefix = "mq:") : prefix_(std::move(prefix)) {}

    const std::string& prefix() const { return prefix_; }

    /// `{prefix}{t:q:p}` — the common part; append a suffix for a concrete key.
    std::string partition_base(std::string_view tenant, std::string_view queue,
                               int partition) const;
    std::string stream(std::string_view tenant, std::string_view queue, int partition) const;
    std::string delayed(std::string_view tenant, std::string_view queue, int partition) const;
    std::string dead_letters(std::string_view tenant, std::string_view queue, int partition) const;
    /// `{t:q:p}:ra` — hash "<group> <stream id>" -> not-before ms of a nacked entry.
    std::string retry_after(std::string_view tenant, std::string_view queue, int partition) const;
    /// `{t:q:p}:x` — hash "<group>" -> entries that expired (retention) before that
    /// subscription finished them.
    std::string expired(std::string_view tenant, std::string_view queue, int partition) const;
    /// `{t:q:p}:h` — the partition's message-history buffer (docs/history.md): events
    /// appended by the scripts that change an entry, drained to PostgreSQL by the writer.
    std::string history(std::string_view tenant, std::string_view queue, int partition) const;
    /// `{t:q:p}:hc` — the id of the partition's last stream entry the history writer has
    /// read: entries of a recording queue after it are not yet recorded as published, and
    /// the trimmer keeps them (docs/history.md).
    std::string history_cursor(std::string_view tenant, std::string_view queue,
                               int partition) const;
    std::string idempotency(std::string_view tenant, std::string_view queue, int partition,
                            std::string_view idempotency_key) const;
    /// SCAN pattern matching every idempotency key of one partition.
    std::string idempotency_pattern(std::string_view tenant, std::string_view queue,
                                    int partition) const;

    /// `{prefix}maint:lease:<shard>` — the maintenance lease of one shard (value: holder).
    std::string maintenance_lease(int shard) const;
    /// `{prefix}maint:lease:global` — the lease of the maintenance tasks that run once.
    std::string maintenance_global_lease() const;
    /// `{prefix}maint:members` — ZSET of live maintenance instances, score = expiry ms.
    std::string maintenance_members() const;

  private:
    std::string prefix_;
};

}  // namespace mq
