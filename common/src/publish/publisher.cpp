#include "mq/publish/publisher.hpp"

#include <algorithm>

#include "mq/core/message.hpp"
#include "mq/core/time.hpp"
#include "mq/core/uuid.hpp"
#include "mq/publish/envelope.hpp"

namespace mq {

namespace {

// Publishes a chunk of messages to one partition.
// KEYS: stream, delayed zset, history stream, then the idempotency keys of the messages
//   that have one.
// ARGV: per-partition max length (0 = none), dedup window ms, message count, record
//   ('1': the queue records history), then per message: due ('0' now, '+N' N ms from now,
//   'N' absolute ms), has idempotency key ('0'/'1'), message id, producer, field count,
//   fields...
// On a recording queue every entry carries the producer field (wire "pr"): the history
// writer records it as published when it reads the stream (docs/history.md). A delayed one
// instead gets XADD h * e published m <id> ... here, in the same call as its ZADD, and its
// packed fields gain "dl" <due ms>, so the writer skips it once it reaches the stream.
// Per message: GET idem key -> duplicate; backlog >= max -> full; else XADD (or ZADD
// of the msgpack'd fields, scored by due time) and SET idem key PX window. Everything
// for one message happens in one script, so no reader sees half of it.
// The backlog (docs/retention.md) is what the slowest group has not finished, from XINFO
// GROUPS: lag + pending; XLEN where Redis cannot tell the lag (after XDEL), and XLEN when
// the stream has no group; plus ZCARD of the delayed set. Consumed entries never count.
const redis::Script kPublishScript(R"lua(
local maxlen = tonumber(ARGV[1])
local window = ARGV[2]
local n = tonumber(ARGV[3])
local backlog = -1
if maxlen > 0 then
  backlog = redis.call('ZCARD', KEYS[2])
  local groups = {}
  if redis.call('EXISTS', KEYS[1]) == 1 then groups = redis.call('XINFO', 'GROUPS', KEYS[1]) end
  local len = nil
  local slowest = 0
  if #groups == 0 then slowest = redis.call('XLEN', KEYS[1]) end
  for _, g in ipairs(groups) do
    local pending, lag = 0, false
    for i = 1, #g, 2 do
      if g[i] == 'pending' then pending = g[i + 1] elseif g[i] == 'lag' then lag = g[i + 1] end
    end
    local unfinished
    if type(lag) == 'number' then
      unfinished = pending + lag
    else
      if not len then len = redis.call('XLEN', KEYS[1]) end
      unfinished = math.max(len, pending)
    end
    if unfinished > slowest then slowest = unfinished end
  end
  backlog = backlog + slowest
end
local record = ARGV[4] == '1'
local now = nil
local out = {}
local a = 5
local k = 4
for i = 1, n do
  local due = ARGV[a]
  local has_idem = ARGV[a + 1]
  local id = ARGV[a + 2]
  local producer = ARGV[a + 3]
  local m = tonumber(ARGV[a + 4])
  local first = a + 5
  a = first + m
  local ikey = nil
  if has_idem == '1' then
    ikey = KEYS[k]
    k = k + 1
  end
  local existing = false
  if ikey then existing = redis.call('GET', ikey) end
  if existing then
    out[i] = {'dup', existing}
  elseif backlog >= 0 and backlog >= maxlen then
    out[i] = {'full', ''}
  else
    local when = 0
    if due ~= '0' then
      if not now then
        local t = redis.call('TIME')
        now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      end
      if string.sub(due, 1, 1) == '+' then
        when = now + tonumber(string.sub(due, 2))
      else
        when = tonumber(due)
      end
      if when <= now then when = 0 end
    end
    local res
    if when > 0 then
      local packed = {unpack(ARGV, first, a - 1)}
      if record then
        packed[#packed + 1] = 'dl'
        packed[#packed + 1] = tostring(when)
      end
      redis.call('ZADD', KEYS[2], when, cmsgpack.pack(packed))
      res = ''
    else
      res = redis.call('XADD', KEYS[1], '*', unpack(ARGV, first, a - 1))
    end
    if ikey then redis.call('SET', ikey, id, 'PX', window) end
    if record and when > 0 then
      local ev = {'e', 'published', 'm', id}
      if producer ~= '' then ev[#ev + 1] = 'pr'; ev[#ev + 1] = producer end
      for f = first, a - 2, 2 do
        local name, value = ARGV[f], ARGV[f + 1]
        if name == 'p' then
          ev[#ev + 1] = 'sz'; ev[#ev + 1] = tostring(#value)
        elseif name == 'k' or name == 'h' or name == 'tr' then
          ev[#ev + 1] = name; ev[#ev + 1] = value
        end
      end
      ev[#ev + 1] = 'x'; ev[#ev + 1] = 'delayed until ' .. when
      redis.call('XADD', KEYS[3], '*', unpack(ev))
    end
    if backlog >= 0 then backlog = backlog + 1 end
    out[i] = {'ok', res}
  end
end
return out
)lua");

std::string headers_to_json(const std::map<std::string, std::string>& headers) {
    if (headers.empty()) return {};
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : headers) j[k] = v;
    return j.dump();
}

}  // namespace

void validate(const PublishRequest& r, const PublishLimits& limits) {
    const std::size_t overhead = r.encryption_key_id.empty() ? 0 : kSealOverhead;
    if (static_cast<std::int64_t>(r.payload.size() - std::min(overhead, r.payload.size())) >
        limits.max_message_size)
        throw Error(ErrorCode::kPayloadTooLarge,
                    "payload is " + std::to_string(r.payload.size()) + " bytes; the limit is " +
                        std::to_string(limits.max_message_size) + " (MAX_MESSAGE_SIZE)",
                    {{"size", r.payload.size()}, {"limit", limits.max_message_size}});
    if (r.key.size() > limits.max_key_size)
        throw ValidationError(
            "key is longer than " + std::to_string(limits.max_key_size) + " bytes",
            {{"field", "key"}});
    if (r.idempotency_key.size() > limits.max_key_size)
        throw ValidationError(
            "idempotency key is longer than " + std::to_string(limits.max_key_size) + " bytes",
            {{"field", "idempotency_key"}});
    if (r.headers.size() > limits.max_headers)
        throw ValidationError("more than " + std::to_string(limits.max_headers) + " headers",
                              {{"field", "headers"}});
    std::size_t header_bytes = 0;
    for (const auto& [k, v] : r.headers) {
        if (k.empty())
            throw ValidationError("header names must not be empty", {{"field", "headers"}});
        header_bytes += k.size() + v.size();
    }
    if (header_bytes > limits.max_header_bytes)
        throw ValidationError("headers are " + std::to_string(header_bytes) +
                                  " bytes (names and values); the limit is " +
                                  std::to_string(limits.max_header_bytes),
                              {{"field", "headers"}, {"limit", limits.max_header_bytes}});
    if (r.delay && r.delay->count() < 0)
        throw ValidationError("delay must not be negative", {{"field", "delay"}});
    if (r.delay && *r.delay > kMaxDuration)
        throw ValidationError("delay must not be longer than 100 years", {{"field", "delay"}});
    if (r.deliver_at_ms &&
        (*r.deliver_at_ms < 0 || *r.deliver_at_ms > now_ms() + kMaxDuration.count()))
        throw ValidationError("deliver_at must be between 1970 and 100 years from now",
                              {{"field", "deliver_at"}});
    if (r.delay && r.deliver_at_ms)
        throw ValidationError("give either a delay or a delivery time, not both",
                              {{"field", "deliver_at"}});
}

PublishRequest parse_publish_request(const nlohmann::json& envelope) {
    thread_local EnvelopeParser parser;
    return parser.parse(envelope.dump());
}

Publisher::Publisher(redis::Connection& redis, KeyLayout keys, PublishLimits limits)
    : redis_(&redis), keys_(std::move(keys)), limits_(limits) {}

Publisher::Publisher(KeyLayout keys, PublishLimits limits)
    : keys_(std::move(keys)), limits_(limits) {}

PublishOutcome Publisher::publish(const Queue& queue, const PublishRequest& request) {
    auto outcomes = publish_batch(queue, {request});
    PublishOutcome& o = outcomes.front();
    if (o.status == PublishStatus::kRejected && o.error) throw *o.error;
    return std::move(o);
}

std::vector<PublishOutcome> Publisher::publish_batch(const Queue& queue,
                                                     const std::vector<PublishRequest>& requests) {
    Prepared batch = prepare(queue, requests);
    send(batch);
    return finish(queue, batch);
}

void Publisher::send(Prepared& batch) {
    if (!redis_) throw Error(ErrorCode::kInternal, "Publisher::send without a connection");
    if (!batch.pipeline.empty()) redis_->send(batch.pipeline);
}

Publisher::Prepared Publisher::prepare(const Queue& queue,
                                       const std::vector<PublishRequest>& requests) {
    Prepared batch;
    auto& outcomes = batch.outcomes;
    outcomes.resize(requests.size());
    // Group request indexes by partition, validating as we go.
    std::vector<std::vector<std::size_t>> by_partition(
        static_cast<std::size_t>(queue.partition_count));
    for (std::size_t i = 0; i < requests.size(); ++i) {
        const auto& r = requests[i];
        try {
            validate(r, limits_);
            if (queue.encryption != "none" && r.encryption_key_id.empty())
                throw Error(ErrorCode::kInternal,
                            "queue '" + queue.name + "' is encrypted (" + queue.encryption +
                                "): the payload must be sealed before publishing (MQ_KEYRING_FILE)",
                            {{"queue", queue.name}});
        } catch (const Error& e) {
            outcomes[i].error = e;
            continue;
        }
        int p = partitioner_.choose(queue.partition_count, r.key, r.idempotency_key);
        outcomes[i].partition = p;
        by_partition[static_cast<std::size_t>(p)].push_back(i);
    }

    const std::int64_t max_len = queue.max_length_per_partition().value_or(0);
    const std::string max_len_arg = std::to_string(max_len);
    const std::string window_arg = std::to_string(queue.dedup_window.count());
    // On a recording queue the entry itself is the published event (its "pr" field marks
    // it for the history writer), so the plain XADD path stays open to it.
    const bool record = queue.record_messages;
    const std::string record_arg = record ? "1" : "0";
    const std::int64_t now = now_ms();

    auto& pipeline = batch.pipeline;
    auto& call_members = batch.call_members;
    std::vector<std::string> keys, args, fields;
    for (int p = 0; p < queue.partition_count; ++p) {
        const auto& members = by_partition[static_cast<std::size_t>(p)];
        const std::string stream = keys_.stream(queue.tenant, queue.name, p);
        const std::string delayed = keys_.delayed(queue.tenant, queue.name, p);
        const std::string history = keys_.history(queue.tenant, queue.name, p);
        // A message with no idempotency key and no delay, on a queue without a length
        // limit, needs no check: a plain XADD is atomic on its own and skips the Lua
        // overhead. Everything else goes through the publish script in chunks.
        std::vector<std::size_t> scripted;
        auto flush_script = [&] {
            if (scripted.empty()) return;
            args[2] = std::to_string(scripted.size());
            pipeline.add_script(kPublishScript, keys, args);
            call_members.push_back(std::move(scripted));
            batch.plain.push_back(false);
            scripted = {};
        };
        keys.assign({stream, delayed, history});
        args.assign({max_len_arg, window_arg, "0", record_arg});
        for (std::size_t i : members) {
            const PublishRequest& r = requests[i];
            Message msg;
            msg.id = new_uuid_v7();
            msg.key = r.key;
            msg.headers_json = headers_to_json(r.headers);
            msg.payload = r.payload;
            msg.content_type = r.content_type;
            msg.published_ms = now;
            msg.trace_id = r.trace_id;
            msg.trace_parent_id = r.trace_parent_id;
            msg.trace_flags = r.trace_flags;
            msg.trace_state = r.trace_state;
            msg.encryption_key_id = r.encryption_key_id;
            outcomes[i].message_id = msg.id;
            outcomes[i].published_ms = now;
            fields.clear();
            const bool delayed_msg = (r.delay && r.delay->count() > 0) || r.deliver_at_ms;
            if (max_len == 0 && r.idempotency_key.empty() && !delayed_msg) {
                // XADD stream * field value ...
                fields.push_back("XADD");
                fields.push_back(stream);
                fields.push_back("*");
                encode_fields(msg, fields);
                if (record) {
                    fields.emplace_back(wire::kProducer);
                    fields.push_back(r.producer);
                }
                pipeline.add(std::move(fields));
                fields = {};
                call_members.push_back({i});
                batch.plain.push_back(true);
                continue;
            }
            if (r.delay && r.delay->count() > 0)
                args.push_back("+" + std::to_string(r.delay->count()));
            else if (r.deliver_at_ms)
                args.push_back(std::to_string(*r.deliver_at_ms));
            else
                args.emplace_back("0");
            if (!r.idempotency_key.empty()) {
                keys.push_back(keys_.idempotency(queue.tenant, queue.name, p, r.idempotency_key));
                args.emplace_back("1");
            } else {
                args.emplace_back("0");
            }
            args.push_back(msg.id);
            args.push_back(record ? r.producer : std::string());
            encode_fields(msg, fields);
            if (record) {
                fields.emplace_back(wire::kProducer);
                fields.push_back(r.producer);
            }
            args.push_back(std::to_string(fields.size()));
            for (auto& f : fields) args.push_back(std::move(f));
            scripted.push_back(i);
            if (scripted.size() >= kChunk) {
                flush_script();
                keys.assign({stream, delayed, history});
                args.assign({max_len_arg, window_arg, "0", record_arg});
            }
        }
        flush_script();
    }
    return batch;
}

std::vector<PublishOutcome> Publisher::finish(const Queue& queue, Prepared& batch) {
    if (batch.pipeline.empty()) return std::move(batch.outcomes);
    if (!redis_) throw Error(ErrorCode::kInternal, "Publisher::finish without a connection");
    auto replies = redis_->receive(batch.pipeline);
    // durability "replica": nothing is acknowledged before a replica of each node has it.
    if (queue.durability == "replica")
        redis_->wait_for_replica(batch.pipeline, kReplicaWaitTimeout);
    return complete(queue, batch, replies);
}

std::vector<PublishOutcome> Publisher::complete(const Queue& queue, Prepared& batch,
                                                const std::vector<redis::Reply>& replies) {
    auto& outcomes = batch.outcomes;
    const auto& call_members = batch.call_members;
    if (replies.size() != call_members.size())
        throw Error(ErrorCode::kPublishFailed,
                    "publish got " + std::to_string(replies.size()) + " replies for " +
                        std::to_string(call_members.size()) + " commands");
    for (std::size_t c = 0; c < replies.size(); ++c) {
        const redis::Reply& reply = replies[c];
        const auto& members = call_members[c];
        if (batch.plain[c] && !reply.is_error()) {
            PublishOutcome& o = outcomes[members.front()];
            o.status = PublishStatus::kAccepted;
            o.stream_id = reply.as_string();
            continue;
        }
        if (reply.is_error() ||
            (!batch.plain[c] && (!reply.is_array() || reply.elements.size() != members.size()))) {
            // A try-again reply (LOADING, BUSY, OOM, READONLY...): nothing was stored and the
            // same publish can succeed later, so 503 with Retry-After (exit 5), not a failure.
            Error error = reply.is_error() ? redis::reply_error(reply, "publish")
                                           : Error(ErrorCode::kPublishFailed,
                                                   "unexpected reply from publish script");
            if (error.code() != ErrorCode::kBackendUnavailable)
                error = Error(ErrorCode::kPublishFailed,
                              std::string("publish failed: ") +
                                  (reply.is_error() ? reply.str : error.what()));
            for (std::size_t i : members) {
                outcomes[i].message_id.clear();
                outcomes[i].error = error;
            }
            continue;
        }
        for (std::size_t m = 0; m < members.size(); ++m) {
            PublishOutcome& o = outcomes[members[m]];
            const auto& e = reply.elements[m].elements;
            const std::string& status = e.at(0).as_string();
            if (status == "ok") {
                o.status = PublishStatus::kAccepted;
                o.stream_id = e.at(1).as_string();
                o.delayed = o.stream_id.empty();
            } else if (status == "dup") {
                o.status = PublishStatus::kDuplicate;
                o.message_id = e.at(1).as_string();
            } else {
                o.message_id.clear();
                o.error = Error(ErrorCode::kQueueFull,
                                "queue '" + queue.name + "' is full (max length " +
                                    std::to_string(queue.max_length.value_or(0)) +
                                    "); retry later or raise it with: mqctl queue update " +
                                    queue.name + " --max-length N",
                                {{"queue", queue.name}, {"partition", o.partition}}, 1);
            }
        }
    }
    return std::move(outcomes);
}

}  // namespace mq
