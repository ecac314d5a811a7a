#include "mq/queue/streams.hpp"

#include "mq/redis/stream_commands.hpp"

namespace mq {

namespace {

// XTRIM s MAXLEN 0; for every group: XPENDING + XACK until empty, XGROUP SETID $; DEL d.
// KEYS: stream, delayed. Returns {entries removed, delayed removed}. One script per
// partition, so no publish lands between counting and trimming.
const redis::Script kPurgeScript(R"lua(
local n = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  n = redis.call('XLEN', KEYS[1])
  redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local name = g[2]
    while true do
      local pending = redis.call('XPENDING', KEYS[1], name, '-', '+', 1000)
      if #pending == 0 then break end
      local ids = {}
      for _, e in ipairs(pending) do ids[#ids + 1] = e[1] end
      redis.call('XACK', KEYS[1], name, unpack(ids))
    end
    redis.call('XGROUP', 'SETID', KEYS[1], name, '$')
  end
end
local d = redis.call('ZCARD', KEYS[2])
redis.call('DEL', KEYS[2])
return {n, d}
)lua");

}  // namespace

std::vector<PartitionStats> QueueStreams::stats(const Queue& queue) {
    redis::Pipeline p;
    for (int i = 0; i < queue.partition_count; ++i) {
        std::string s = keys_.stream(queue.tenant, queue.name, i);
        std::string d = keys_.delayed(queue.tenant, queue.name, i);
        p.add({"XLEN", s});
        p.add({"ZCARD", d});
        p.add({"XLEN", keys_.dead_letters(queue.tenant, queue.name, i)});
        p.add({"XRANGE", s, "-", "+", "COUNT", "1"});
        p.add({"ZRANGE", d, "0", "0", "WITHSCORES"});
        p.add({"XINFO", "GROUPS", s});  // an error reply when the stream does not exist yet
        p.add({"HGETALL", keys_.expired(queue.tenant, queue.name, i)});
    }
    auto replies = redis_.execute(p);
    std::vector<PartitionStats> out;
    for (int i = 0; i < queue.partition_count; ++i) {
        const auto* r = &replies[static_cast<std::size_t>(i) * 7];
        PartitionStats ps;
        ps.partition = i;
        ps.length = r[0].as_integer();
        ps.delayed = r[1].as_integer();
        ps.dead_letters = r[2].as_integer();
        if (r[3].is_array() && !r[3].elements.empty())
            ps.oldest_ms = redis::stream_id_millis(r[3].elements[0].elements.at(0).str);
        if (r[4].is_array() && r[4].elements.size() >= 2)
            ps.next_due_ms = r[4].elements[1].as_integer();
        for (auto& g : redis::parse_xinfo_groups(r[5]))
            ps.groups.push_back(GroupStats{std::move(g.name), g.consumers, g.pending, g.lag,
                                           std::move(g.last_delivered_id)});
        if (r[6].is_array())  // group -> expired count (Trimmer)
            for (std::size_t k = 0; k + 1 < r[6].elements.size(); k += 2)
                for (auto& g : ps.groups)
                    if (g.name == r[6].elements[k].str)
                        g.expired = r[6].elements[k + 1].as_integer();
        out.push_back(std::move(ps));
    }
    return out;
}

QueueStreams::Purged QueueStreams::purge(const Queue& queue) {
    Purged total;
    for (int i = 0; i < queue.partition_count; ++i) {
        redis::Reply r = redis_.eval(
            kPurgeScript,
            {keys_.stream(queue.tenant, queue.name, i), keys_.delayed(queue.tenant, queue.name, i)},
            {});
        total.entries += r.elements.at(0).as_integer();
        total.delayed += r.elements.at(1).as_integer();
    }
    return total;
}

std::int64_t QueueStreams::drop(const Queue& queue) {
    std::int64_t removed = 0;
    for (int i = 0; i < queue.partition_count; ++i) {
        removed += redis_
                       .command({"UNLINK", keys_.stream(queue.tenant, queue.name, i),
                                 keys_.delayed(queue.tenant, queue.name, i),
                                 keys_.dead_letters(queue.tenant, queue.name, i),
                                 keys_.retry_after(queue.tenant, queue.name, i),
                                 keys_.expired(queue.tenant, queue.name, i),
                                 keys_.history(queue.tenant, queue.name, i),
                                 keys_.history_cursor(queue.tenant, queue.name, i)})
                       .as_integer();
        // Idempotency keys: SCAN for this partition's pattern, UNLINK what it finds.
        std::string cursor = "0";
        const std::string pattern = keys_.idempotency_pattern(queue.tenant, queue.name, i);
        do {
            redis::Reply r = redis_.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
            cursor = r.elements.at(0).str;
            std::vector<std::string> argv{"UNLINK"};
            for (const auto& k : r.elements.at(1).elements) argv.push_back(k.str);
            if (argv.size() > 1) removed += redis_.command(argv).as_integer();
        } while (cursor != "0");
    }
    return removed;
}

}  // namespace mq
