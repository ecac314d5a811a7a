#include "mq/publish/scheduler.hpp"

#include <algorithm>

namespace mq {

namespace {

// ZRANGEBYSCORE d -inf now LIMIT 0 n; XADD s * <fields> for each; ZREM d member.
// KEYS: delayed zset, stream. ARGV: n. Returns {moved, score of the next entry or -1}.
// "now" is the Redis clock, the same clock the publish script scored entries with.
const redis::Script kMoveScript(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', unpack(cmsgpack.unpack(member)))
  redis.call('ZREM', KEYS[1], member)
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_due = -1
if head[2] then next_due = tonumber(head[2]) end
return {#due, next_due}
)lua");

}  // namespace

Scheduler::Pass Scheduler::move_due(const Queue& queue, std::int64_t batch) {
    Pass pass;
    for (int p = 0; p < queue.partition_count; ++p) {
        Pass one = move_due_partition(queue, p, batch);
        pass.moved += one.moved;
        if (one.next_due_ms)
            pass.next_due_ms =
                std::min(pass.next_due_ms.value_or(*one.next_due_ms), *one.next_due_ms);
    }
    return pass;
}

Scheduler::Pass Scheduler::move_due_partition(const Queue& queue, int partition,
                                              std::int64_t batch) {
    Pass pass;
    const std::string n = std::to_string(batch);
    const std::vector<std::string> keys{keys_.delayed(queue.tenant, queue.name, partition),
                                        keys_.stream(queue.tenant, queue.name, partition)};
    for (;;) {
        redis::Reply r = redis_.eval(kMoveScript, keys, {n});
        std::int64_t moved = r.elements.at(0).as_integer();
        std::int64_t next = r.elements.at(1).as_integer();
        pass.moved += moved;
        if (moved < batch) {
            if (next >= 0) pass.next_due_ms = next;
            break;
        }
    }
    return pass;
}

}  // namespace mq
