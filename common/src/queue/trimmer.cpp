#include "mq/queue/trimmer.hpp"

#include <spdlog/spdlog.h>

namespace mq {

namespace {

// One partition, atomically (one slot: every key shares the partition's hash tag).
// KEYS: stream, retry-after hash, expired-count hash, dead-letter stream, history stream,
//   history cursor.
// ARGV: retention ms, batch, dead-letter max length (0 none), dead-letter max age ms (0 none),
//   record ('1': the queue records history: each trimmed entry older than the cutoff gets
//   XADD h * e expired m <id> sid <entry id> x <groups that had not finished it>).
// Stream: for every group (XINFO GROUPS) its finished point is its oldest pending id
// (XPENDING - + 1) or the id after last-delivered-id. The trim bound is the minimum of those
// (no groups: nothing is finished), raised to the retention cutoff. On a recording queue
// it is then capped just after the history cursor: an entry the history writer has not
// read yet is not recorded as published, and stays (no cursor yet: nothing goes). XRANGE - (bound
// COUNT batch lists what goes; per group, listed entries below the cutoff that are after its
// last-delivered-id, and its pending entries below the trim point (XACKed here), count as
// expired (HINCRBY x group n) and undelivered ones move its cursor (XGROUP SETID), so lag
// stays true. HDEL the :ra notes of removed ids, then XTRIM MINID (exact).
// Dead letters: only entries before the mq-archive group's finished point may go, and of
// those the ones beyond the length cap or older than the age cap (XTRIM MINID).
// Returns {trimmed, more (0/1), dead letters trimmed, group, expired, group, expired, ...}.
// Stream ids are compared as decimal strings: groups may sit at any id up to 2^64-1.
const redis::Script kTrimScript(R"lua(
local MAXN = '18446744073709551615'
local function cmpnum(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function split(id)
  local d = string.find(id, '-', 1, true)
  return string.sub(id, 1, d - 1), string.sub(id, d + 1)
end
local function cmp(a, b)
  local am, as = split(a)
  local bm, bs = split(b)
  local c = cmpnum(am, bm)
  if c ~= 0 then return c end
  return cmpnum(as, bs)
end
local function incr(n)
  local out, carry = '', 1
  for i = #n, 1, -1 do
    local d = string.byte(n, i) - 48 + carry
    if d == 10 then d = 0; carry = 1 else carry = 0 end
    out = string.char(48 + d) .. out
  end
  if carry == 1 then out = '1' .. out end
  return out
end
-- The smallest id greater than `id`; nil when there is none (id is the maximum).
local function after(id)
  local ms, seq = split(id)
  if seq == MAXN then
    if ms == MAXN then return nil end
    return incr(ms) .. '-0'
  end
  return ms .. '-' .. incr(seq)
end
local function fields(reply)
  local info = {}
  for i = 1, #reply, 2 do info[reply[i]] = reply[i + 1] end
  return info
end
-- XTRIM key MINID to, or everything when `to` is nil.
local function trim(key, to)
  if to then return redis.call('XTRIM', key, 'MINID', to) end
  return redis.call('XTRIM', key, 'MAXLEN', 0)
end

local retention = tonumber(ARGV[1])
local batch = tonumber(ARGV[2])
local dlq_max = tonumber(ARGV[3])
local dlq_age = tonumber(ARGV[4])
local record = ARGV[5] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local trimmed, more, dlq_trimmed = 0, 0, 0
local out_groups = {}

if redis.call('EXISTS', KEYS[1]) == 1 then
  local cutoff = '0-0'
  if now - retention > 0 then cutoff = string.format('%.0f', now - retention) .. '-0' end
  local groups = {}
  local consumed = nil  -- nil with groups: every group is past any possible id
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local info = fields(g)
    local done
    if tonumber(info['pending']) > 0 then
      done = redis.call('XPENDING', KEYS[1], info['name'], '-', '+', 1)[1][1]
    else
      done = after(info['last-delivered-id'])
    end
    groups[#groups + 1] = {name = info['name'], last = info['last-delivered-id'], expired = 0}
    if done and (consumed == nil or cmp(done, consumed) < 0) then consumed = done end
  end
  local bound = cutoff
  if #groups > 0 then
    if consumed == nil then bound = nil
    elseif cmp(consumed, cutoff) > 0 then bound = consumed end
  end
  if record then
    local read = redis.call('HGET', KEYS[6], 'id')
    local cap = '0-0'
    if read then cap = after(read) end
    if cap and (bound == nil or cmp(cap, bound) < 0) then bound = cap end
  end
  if bound ~= '0-0' then
    local entries = redis.call('XRANGE', KEYS[1], '-', bound and ('(' .. bound) or '+', 'COUNT', batch)
    if #entries > 0 then
      local to = bound
      if #entries >= batch then
        to = after(entries[#entries][1])
        more = 1
      end
      local has_notes = redis.call('HLEN', KEYS[2]) > 0
      local lost = {}
      local function lose(id, group)
        if lost[id] then lost[id] = lost[id] .. ' ' .. group else lost[id] = group end
      end
      for _, g in ipairs(groups) do
        -- Listed entries below the cutoff the group never got: expired undelivered.
        local newest = nil
        for _, e in ipairs(entries) do
          local id = e[1]
          if cmp(id, cutoff) < 0 and cmp(id, g.last) > 0 then
            g.expired = g.expired + 1
            newest = id
            if record then lose(id, g.name) end
          end
        end
        if newest then redis.call('XGROUP', 'SETID', KEYS[1], g.name, newest) end
        -- Pending entries below the trim point can only be expired ones: ack them.
        for _ = 1, 100 do
          local p = redis.call('XPENDING', KEYS[1], g.name, '-', to and ('(' .. to) or '+', batch)
          if #p == 0 then break end
          local ids, notes = {}, {}
          for i, row in ipairs(p) do
            ids[i] = row[1]
            notes[i] = g.name .. ' ' .. row[1]
            if record then lose(row[1], g.name) end
          end
          g.expired = g.expired + redis.call('XACK', KEYS[1], g.name, unpack(ids))
          if has_notes then redis.call('HDEL', KEYS[2], unpack(notes)) end
          if #p < batch then break end
        end
        if has_notes then
          local notes = {}
          for i, e in ipairs(entries) do notes[i] = g.name .. ' ' .. e[1] end
          redis.call('HDEL', KEYS[2], unpack(notes))
        end
        if g.expired > 0 then
          redis.call('HINCRBY', KEYS[3], g.name, g.expired)
          out_groups[#out_groups + 1] = g.name
          out_groups[#out_groups + 1] = g.expired
        end
      end
      if record then
        for _, e in ipairs(entries) do
          if cmp(e[1], cutoff) < 0 then
            local mid = ''
            for i = 1, #e[2], 2 do if e[2][i] == 'id' then mid = e[2][i + 1] end end
            if mid ~= '' then
              local ev = {'e', 'expired', 'm', mid, 'sid', e[1]}
              if lost[e[1]] then ev[#ev + 1] = 'x'; ev[#ev + 1] = 'unfinished by ' .. lost[e[1]] end
              redis.call('XADD', KEYS[5], '*', unpack(ev))
            end
          end
        end
      end
      trimmed = trim(KEYS[1], to)
    end
  end
end

if (dlq_max > 0 or dlq_age > 0) and redis.call('EXISTS', KEYS[4]) == 1 then
  local found, archived = false, nil
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[4])) do
    local info = fields(g)
    if info['name'] == 'mq-archive' then
      found = true
      if tonumber(info['pending']) > 0 then
        archived = redis.call('XPENDING', KEYS[4], 'mq-archive', '-', '+', 1)[1][1]
      else
        archived = after(info['last-delivered-id'])
      end
    end
  end
  if found and archived ~= '0-0' then
    local over = 0
    if dlq_max > 0 then over = redis.call('XLEN', KEYS[4]) - dlq_max end
    local age_cut = nil
    if dlq_age > 0 and now - dlq_age > 0 then age_cut = string.format('%.0f', now - dlq_age) .. '-0' end
    if over > 0 or age_cut then
      local range = redis.call('XRANGE', KEYS[4], '-', archived and ('(' .. archived) or '+', 'COUNT', batch)
      local k = 0
      for i, e in ipairs(range) do
        if i <= over or (age_cut and cmp(e[1], age_cut) < 0) then k = i else break end
      end
      if k > 0 then
        dlq_trimmed = trim(KEYS[4], after(range[k][1]))
        if k >= batch then more = 1 end
      end
    end
  end
end

local out = {trimmed, more, dlq_trimmed}
for _, v in ipairs(out_groups) do out[#out + 1] = v end
return out
)lua");

}  // namespace

TrimOptions trim_options(const Config& config) {
    TrimOptions o;
    o.dead_letter_max_length = config.dead_letter_max_length;
    o.dead_letter_max_age = config.dead_letter_max_age;
    return o;
}

Trimmer::Trimmer(redis::Connection& redis, KeyLayout keys, TrimOptions options)
    : redis_(redis), keys_(std::move(keys)), options_(options) {
    if (options_.batch < 1 || options_.batch > 100000)
        throw ValidationError("trim batch must be between 1 and 100000", {{"field", "batch"}});
    if (options_.dead_letter_max_length < 0 || options_.dead_letter_max_age.count() < 0)
        throw ValidationError("dead-letter bounds must not be negative",
                              {{"field", "dead_letter"}});
}

TrimPass Trimmer::trim(const Queue& q) {
    if (q.partition_count < 1 || q.partition_count > kMaxPartitions)
        throw ValidationError("queue '" + q.name + "' has an invalid partition count",
                              {{"queue", q.name}});
    const std::vector<std::string> args{
        std::to_string(std::max<std::int64_t>(1, q.retention.count())),
        std::to_string(options_.batch), std::to_string(options_.dead_letter_max_length),
        std::to_string(options_.dead_letter_max_age.count()), q.record_messages ? "1" : "0"};
    redis::Pipeline pipe;
    for (int p = 0; p < q.partition_count; ++p)
        pipe.add_script(
            kTrimScript,
            {keys_.stream(q.tenant, q.name, p), keys_.retry_after(q.tenant, q.name, p),
             keys_.expired(q.tenant, q.name, p), keys_.dead_letters(q.tenant, q.name, p),
             keys_.history(q.tenant, q.name, p), keys_.history_cursor(q.tenant, q.name, p)},
            args);
    auto replies = redis_.execute(pipe);
    TrimPass pass;
    std::string failure;
    for (const auto& r : replies) {
        if (r.is_error() || !r.is_array() || r.elements.size() < 3) {
            if (failure.empty()) failure = r.is_error() ? r.str : "unexpected reply";
            continue;
        }
        pass.trimmed += r.elements[0].as_integer();
        pass.more = pass.more || r.elements[1].as_integer() != 0;
        pass.dead_letters_trimmed += r.elements[2].as_integer();
        for (std::size_t i = 3; i + 1 < r.elements.size(); i += 2) {
            std::int64_t n = r.elements[i + 1].as_integer();
            pass.expired += n;
            pass.expired_by_subscription[r.elements[i].str] += n;
        }
    }
    for (const auto& [sub, n] : pass.expired_by_subscription)
        spdlog::warn(
            "queue {}/{}: {} entries expired unconsumed by subscription {} (retention {} ms)",
            q.tenant, q.name, n, sub, q.retention.count());
    if (!failure.empty())
        throw Error(ErrorCode::kInternal, "trimming queue '" + q.name + "' failed: " + failure,
                    {{"queue", q.name}});
    return pass;
}

}  // namespace mq
