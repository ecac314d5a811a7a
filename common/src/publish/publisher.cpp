#include "mq/publish/publisher.hpp"

#include "mq/core/message.hpp"
#include "mq/core/time.hpp"
#include "mq/core/uuid.hpp"

namespace mq {

namespace {

// Publishes a chunk of messages to one partition.
// KEYS: stream, delayed zset, then the idempotency keys of the messages that have one.
// ARGV: per-partition max length (0 = none), dedup window ms, message count, then per
//   message: due ('0' now, '+N' N ms from now, 'N' absolute ms), has idempotency key
//   ('0'/'1'), message id, field count, fields...
// Per message: GET idem key -> duplicate; XLEN+ZCARD >= max -> full; else XADD (or ZADD
// of the msgpack'd fields, scored by due time) and SET idem key PX window. Everything
// for one message happens in one script, so no reader sees half of it.
const redis::Script kPublishScript(R"lua(
local maxlen = tonumber(ARGV[1])
local window = ARGV[2]
local n = tonumber(ARGV[3])
local backlog = -1
if maxlen > 0 then
  backlog = redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
end
local now = nil
local out = {}
local a = 4
local k = 3
for i = 1, n do
  local due = ARGV[a]
  local has_idem = ARGV[a + 1]
  local id = ARGV[a + 2]
  local m = tonumber(ARGV[a + 3])
  local first = a + 4
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
    local fields = {}
    for j = first, a - 1 do fields[#fields + 1] = ARGV[j] end
    local res
    if when > 0 then
      redis.call('ZADD', KEYS[2], when, cmsgpack.pack(fields))
      res = ''
    else
      res = redis.call('XADD', KEYS[1], '*', unpack(fields))
    end
    if ikey then redis.call('SET', ikey, id, 'PX', window) end
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
    if (static_cast<std::int64_t>(r.payload.size()) > limits.max_message_size)
        throw Error(ErrorCode::kPayloadTooLarge,
                    "payload is " + std::to_string(r.payload.size()) + " bytes; the limit is " +
                        std::to_string(limits.max_message_size) + " (MAX_MESSAGE_SIZE)",
                    {{"size", r.payload.size()}, {"limit", limits.max_message_size}});
    if (r.key.size() > limits.max_key_size)
        throw ValidationError("key is longer than " + std::to_string(limits.max_key_size) + " bytes",
                              {{"field", "key"}});
    if (r.idempotency_key.size() > limits.max_key_size)
        throw ValidationError(
            "idempotency key is longer than " + std::to_string(limits.max_key_size) + " bytes",
            {{"field", "idempotency_key"}});
    if (r.headers.size() > limits.max_headers)
        throw ValidationError("more than " + std::to_string(limits.max_headers) + " headers",
                              {{"field", "headers"}});
    for (const auto& [k, v] : r.headers)
        if (k.empty()) throw ValidationError("header names must not be empty", {{"field", "headers"}});
    if (r.delay && r.delay->count() < 0)
        throw ValidationError("delay must not be negative", {{"field", "delay"}});
    if (r.delay && r.deliver_at_ms)
        throw ValidationError("give either a delay or a delivery time, not both",
                              {{"field", "deliver_at"}});
}

PublishRequest parse_publish_request(const nlohmann::json& j) {
    if (!j.is_object())
        throw ValidationError("expected a JSON object with a \"payload\" field");
    PublishRequest r;
    bool has_payload = false;
    auto need_string = [](const nlohmann::json& v, const std::string& field) -> std::string {
        if (!v.is_string()) throw ValidationError("\"" + field + "\" must be a string", {{"field", field}});
        return v.get<std::string>();
    };
    for (const auto& [field, v] : j.items()) {
        if (field == "payload") {
            has_payload = true;
            if (v.is_string()) {
                r.payload = v.get<std::string>();
            } else {
                r.payload = v.dump();
                if (r.content_type.empty()) r.content_type = "application/json";
            }
        } else if (field == "key") {
            r.key = need_string(v, field);
        } else if (field == "idempotency_key" || field == "idempotencyKey") {
            r.idempotency_key = need_string(v, field);
        } else if (field == "content_type" || field == "contentType") {
            r.content_type = need_string(v, field);
        } else if (field == "trace_id" || field == "traceId") {
            r.trace_id = need_string(v, field);
        } else if (field == "headers") {
            if (!v.is_object())
                throw ValidationError("\"headers\" must be an object of strings", {{"field", field}});
            for (const auto& [hk, hv] : v.items()) {
                if (!hv.is_string())
                    throw ValidationError("header \"" + hk + "\" must be a string", {{"field", "headers"}});
                r.headers[hk] = hv.get<std::string>();
            }
        } else if (field == "delay") {
            r.delay = parse_duration(need_string(v, field), "delay");
        } else if (field == "delay_ms" || field == "delayMs") {
            if (!v.is_number_integer() || v.get<std::int64_t>() < 0)
                throw ValidationError("\"" + field + "\" must be a non-negative integer", {{"field", field}});
            r.delay = std::chrono::milliseconds(v.get<std::int64_t>());
        } else if (field == "deliver_at" || field == "deliverAt") {
            r.deliver_at_ms = parse_rfc3339(need_string(v, field), "deliver_at");
        } else {
            throw ValidationError("unknown field \"" + field + "\"", {{"field", field}});
        }
    }
    if (!has_payload) throw ValidationError("missing \"payload\" field", {{"field", "payload"}});
    // An explicit content type wins over the one implied by a JSON payload.
    if (j.contains("content_type")) r.content_type = j["content_type"].get<std::string>();
    if (j.contains("contentType")) r.content_type = j["contentType"].get<std::string>();
    return r;
}

Publisher::Publisher(redis::Connection& redis, KeyLayout keys, PublishLimits limits)
    : redis_(redis), keys_(std::move(keys)), limits_(limits) {}

PublishOutcome Publisher::publish(const Queue& queue, const PublishRequest& request) {
    auto outcomes = publish_batch(queue, {request});
    PublishOutcome& o = outcomes.front();
    if (o.status == PublishStatus::kRejected && o.error) throw *o.error;
    return std::move(o);
}

std::vector<PublishOutcome> Publisher::publish_batch(const Queue& queue,
                                                     const std::vector<PublishRequest>& requests) {
    std::vector<PublishOutcome> outcomes(requests.size());
    // Group request indexes by partition, validating as we go.
    std::vector<std::vector<std::size_t>> by_partition(static_cast<std::size_t>(queue.partition_count));
    for (std::size_t i = 0; i < requests.size(); ++i) {
        const auto& r = requests[i];
        try {
            validate(r, limits_);
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
    const std::int64_t now = now_ms();

    redis::Pipeline pipeline;
    std::vector<std::vector<std::size_t>> call_members;  // request indexes of each script call
    std::vector<std::string> keys, args, fields;
    for (int p = 0; p < queue.partition_count; ++p) {
        const auto& members = by_partition[static_cast<std::size_t>(p)];
        const std::string stream = keys_.stream(queue.tenant, queue.name, p);
        const std::string delayed = keys_.delayed(queue.tenant, queue.name, p);
        for (std::size_t start = 0; start < members.size(); start += kChunk) {
            std::size_t end = std::min(members.size(), start + kChunk);
            keys.assign({stream, delayed});
            args.assign({max_len_arg, window_arg, std::to_string(end - start)});
            for (std::size_t m = start; m < end; ++m) {
                std::size_t i = members[m];
                const PublishRequest& r = requests[i];
                Message msg;
                msg.id = new_uuid_v7();
                msg.key = r.key;
                msg.headers_json = headers_to_json(r.headers);
                msg.payload = r.payload;
                msg.content_type = r.content_type;
                msg.published_ms = now;
                msg.trace_id = r.trace_id;
                outcomes[i].message_id = msg.id;
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
                fields.clear();
                encode_fields(msg, fields);
                args.push_back(std::to_string(fields.size()));
                for (auto& f : fields) args.push_back(std::move(f));
            }
            pipeline.add_script(kPublishScript, keys, args);
            call_members.emplace_back(members.begin() + static_cast<std::ptrdiff_t>(start),
                                      members.begin() + static_cast<std::ptrdiff_t>(end));
        }
    }
    if (pipeline.empty()) return outcomes;

    std::vector<redis::Reply> replies = redis_.execute(pipeline);
    for (std::size_t c = 0; c < replies.size(); ++c) {
        const redis::Reply& reply = replies[c];
        const auto& members = call_members[c];
        if (reply.is_error() || !reply.is_array() || reply.elements.size() != members.size()) {
            std::string why = reply.is_error() ? reply.str : "unexpected reply from publish script";
            ErrorCode code = reply.error_code() == "OOM" ? ErrorCode::kBackendUnavailable
                                                        : ErrorCode::kPublishFailed;
            for (std::size_t i : members) {
                outcomes[i].message_id.clear();
                outcomes[i].error = Error(code, "publish failed: " + why);
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
    return outcomes;
}

}  // namespace mq
