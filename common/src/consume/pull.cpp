#include "mq/consume/pull.hpp"

#include <array>
#include <charconv>
#include <mutex>
#include <unordered_map>

#include "mq/core/codec.hpp"
#include "mq/core/time.hpp"

namespace mq {

namespace {

constexpr std::string_view kReceiptVersion = "r1";
constexpr std::size_t kTagSize = 32;  // HMAC-SHA256

// The partition the next pull of a subscription starts at. One cursor per subscription,
// shared by every PullConsumer of the process: mq-api makes a PullConsumer per request,
// so a cursor kept in the object always started at partition 0 and a busy partition 0
// starved the others.
unsigned next_start_partition(const Queue& q, const Subscription& sub) {
    static std::mutex mu;
    static std::unordered_map<std::string, unsigned> cursors;
    std::lock_guard lock(mu);
    if (cursors.size() > 100000) cursors.clear();  // bounded; a reset only restarts rotation
    return cursors[q.tenant + '\n' + q.name + '\n' + consumer_group(sub)]++;
}

// ---- receipts ---------------------------------------------------------------------------

void require_key(std::string_view key) {
    if (key.empty())
        throw Error(ErrorCode::kInternal, "the pull receipt key is empty; configure one");
}

[[noreturn]] void invalid_receipt() {
    throw ValidationError("invalid receipt", {{"field", "receipt"}});
}

// A non-negative decimal without sign or leading zeros, up to `max`.
bool parse_number(std::string_view text, std::int64_t max, std::int64_t& out) {
    if (text.empty() || (text.size() > 1 && text[0] == '0')) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size() && out >= 0 && out <= max;
}

bool is_stream_id(std::string_view id) {
    auto dash = id.find('-');
    if (dash == std::string_view::npos) return false;
    std::int64_t n = 0;
    return parse_number(id.substr(0, dash), INT64_MAX, n) &&
           parse_number(id.substr(dash + 1), INT64_MAX, n);
}

// ---- settling a delivery ----------------------------------------------------------------

// KEYS: stream, retry-after hash (KeyLayout::retry_after).
// ARGV: mode (ack|nack|extend), group, id, delivery count, consumer, not-before ms (0 none).
// XPENDING s g id id 1: only while the entry is pending with this delivery count, then
//   ack:    XACK s g id; HDEL ra
//   nack:   XCLAIM s g mq-retry 0 id IDLE <a day> JUSTID (backoff already served, so only
//           the not-before note gates the redelivery); HSET or HDEL ra
//   extend: XCLAIM s g consumer 0 id JUSTID (idle back to zero), unless waiting for retry.
// With a history stream (KEYS[3], the queue records messages) ack and nack also append the
// attempt: XADD h * e attempt m <message id> s g a <count> o acked|failed c pull.
// Returns 1 when done, 0 when the receipt is stale (or the group is gone).
const redis::Script kSettle(R"lua(
local p = redis.pcall('XPENDING', KEYS[1], ARGV[2], ARGV[3], ARGV[3], 1)
if type(p) ~= 'table' or p.err or #p == 0 or tonumber(p[1][4]) ~= tonumber(ARGV[4]) then return 0 end
local note = ARGV[2] .. ' ' .. ARGV[3]
if ARGV[1] == 'ack' then
  redis.call('XACK', KEYS[1], ARGV[2], ARGV[3])
  redis.call('HDEL', KEYS[2], note)
elseif ARGV[1] == 'nack' then
  redis.call('XCLAIM', KEYS[1], ARGV[2], 'mq-retry', 0, ARGV[3], 'IDLE', 86400000, 'JUSTID')
  if tonumber(ARGV[6]) > 0 then
    redis.call('HSET', KEYS[2], note, ARGV[6])
  else
    redis.call('HDEL', KEYS[2], note)
  end
else
  if p[1][2] == 'mq-retry' then return 0 end
  redis.call('XCLAIM', KEYS[1], ARGV[2], ARGV[5], 0, ARGV[3], 'JUSTID')
  return 1
end
if KEYS[3] then
  local found = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])
  local mid = ''
  if #found > 0 then
    local f = found[1][2]
    for i = 1, #f, 2 do if f[i] == 'id' then mid = f[i + 1] end end
  end
  if mid ~= '' then
    redis.call('XADD', KEYS[3], '*', 'e', 'attempt', 'm', mid, 's', ARGV[2], 'c', p[1][2],
      'a', ARGV[4], 'o', ARGV[1] == 'ack' and 'acked' or 'failed', 'sid', ARGV[3])
  end
end
return 1
)lua");

}  // namespace

std::string encode_receipt(const Receipt& r, std::string_view key) {
    require_key(key);
    std::string body = std::string(kReceiptVersion) + "\n" + r.subscription_id + "\n" +
                       std::to_string(r.partition) + "\n" + r.stream_id + "\n" +
                       std::to_string(r.delivery_count);
    return codec::base64url_encode(body + codec::hmac_sha256(key, body));
}

Receipt decode_receipt(std::string_view text, std::string_view key,
                       const std::string& expected_subscription_id) {
    require_key(key);
    if (text.size() > 1024) invalid_receipt();
    std::optional<std::string> decoded = codec::base64url_decode(text);
    if (!decoded || decoded->size() <= kTagSize) invalid_receipt();
    const std::string& raw = *decoded;
    std::string_view body(raw.data(), raw.size() - kTagSize);
    if (!codec::constant_time_equal(codec::hmac_sha256(key, body),
                                    std::string_view(raw).substr(body.size())))
        invalid_receipt();

    std::vector<std::string_view> parts;
    for (std::size_t from = 0;;) {
        auto nl = body.find('\n', from);
        parts.push_back(
            body.substr(from, nl == std::string_view::npos ? std::string_view::npos : nl - from));
        if (nl == std::string_view::npos) break;
        from = nl + 1;
    }
    std::int64_t partition = 0, count = 0;
    if (parts.size() != 5 || parts[0] != kReceiptVersion || parts[1] != expected_subscription_id ||
        !parse_number(parts[2], kMaxPartitions - 1, partition) || !is_stream_id(parts[3]) ||
        !parse_number(parts[4], INT32_MAX, count) || count < 1)
        invalid_receipt();
    return Receipt{std::string(parts[1]), static_cast<int>(partition), std::string(parts[3]),
                   static_cast<int>(count)};
}

PullConsumer::PullConsumer(redis::Connection& redis, KeyLayout keys, std::string receipt_key)
    : redis_(redis),
      keys_(std::move(keys)),
      receipt_key_(std::move(receipt_key)),
      groups_(redis_, keys_) {
    require_key(receipt_key_);
}

std::vector<PulledMessage> PullConsumer::pull(const Queue& q, const Subscription& sub,
                                              const std::string& consumer, int max_messages) {
    if (max_messages < 1 || max_messages > kMaxPull)
        throw ValidationError("max_messages must be between 1 and " + std::to_string(kMaxPull),
                              {{"field", "max_messages"}});
    if (sub.type != "pull")
        throw ValidationError("subscription '" + sub.name + "' delivers by " + sub.type +
                                  "; only pull subscriptions can be pulled",
                              {{"subscription", sub.name}});
    std::vector<PulledMessage> out;
    if (sub.status == "paused" || q.partition_count < 1) return out;

    const int partitions = q.partition_count;
    const int first =
        static_cast<int>(next_start_partition(q, sub) % static_cast<unsigned>(partitions));
    auto take = [&](Fetched&& f) {
        if (!filter_matches(sub.filter, f.message.headers_json)) {
            groups_.ack(q, consumer_group(sub), f.partition, {f.stream_id});
            return;
        }
        PulledMessage m;
        m.receipt = encode_receipt(Receipt{sub.id, f.partition, f.stream_id, f.delivery_count},
                                   receipt_key_);
        m.lease_expires_ms = now_ms() + sub.visibility_timeout.count();
        m.fetched = std::move(f);
        out.push_back(std::move(m));
    };
    auto remaining = [&] { return max_messages - static_cast<int>(out.size()); };

    // Due redeliveries first: they have waited longest.
    for (int i = 0; i < partitions && remaining() > 0; ++i) {
        int p = (first + i) % partitions;
        for (auto& f : groups_.reclaim(q, sub, consumer, p, remaining()).claimed)
            take(std::move(f));
    }
    for (int i = 0; i < partitions && remaining() > 0; ++i) {
        int p = (first + i) % partitions;
        for (;;) {
            int want = remaining();
            auto got = groups_.read_new(q, sub, consumer, p, want, std::chrono::milliseconds(0));
            const bool drained = static_cast<int>(got.size()) < want;
            for (auto& f : got) take(std::move(f));
            if (drained || remaining() <= 0) break;  // else filtered entries made room: read on
        }
    }
    return out;
}

void PullConsumer::check(const Queue& q, const Subscription& sub, const Receipt& r) const {
    if (r.subscription_id != sub.id || r.partition < 0 || r.partition >= q.partition_count ||
        r.delivery_count < 1 || !is_stream_id(r.stream_id))
        invalid_receipt();
}

std::vector<std::string> PullConsumer::settle_keys(const Queue& q, const Subscription& sub,
                                                   int partition) const {
    std::vector<std::string> keys{keys_.stream(q.tenant, q.name, partition),
                                  keys_.retry_after(q.tenant, q.name, partition)};
    // Another tenant's acks stay out of the owner's history (docs/history.md).
    if (q.record_messages && !is_cross_tenant(sub))
        keys.push_back(keys_.history(q.tenant, q.name, partition));
    return keys;
}

AckResult PullConsumer::settle(const Queue& q, const Subscription& sub, const Receipt& r,
                               const std::string& mode, const std::string& consumer,
                               std::int64_t not_before_ms) {
    check(q, sub, r);
    auto reply =
        redis_.eval(kSettle, settle_keys(q, sub, r.partition),
                    {mode, consumer_group(sub), r.stream_id, std::to_string(r.delivery_count),
                     consumer, std::to_string(not_before_ms)});
    return reply.as_integer() == 1 ? AckResult::kAcked : AckResult::kLeaseLost;
}

std::vector<AckResult> PullConsumer::ack(const Queue& q, const Subscription& sub,
                                         const std::vector<Receipt>& receipts) {
    for (const auto& r : receipts) check(q, sub, r);
    redis::Pipeline pipe;
    const std::string group = consumer_group(sub);
    for (const auto& r : receipts)
        pipe.add_script(kSettle, settle_keys(q, sub, r.partition),
                        {"ack", group, r.stream_id, std::to_string(r.delivery_count), "", "0"});
    std::vector<AckResult> out;
    if (pipe.empty()) return out;
    for (const auto& reply : redis_.execute(pipe)) {
        if (reply.is_error()) throw redis::reply_error(reply, "ack");
        out.push_back(reply.as_integer() == 1 ? AckResult::kAcked : AckResult::kLeaseLost);
    }
    return out;
}

AckResult PullConsumer::nack(const Queue& q, const Subscription& sub, const Receipt& r,
                             std::chrono::milliseconds delay) {
    if (delay.count() < 0 || delay > kMaxNackDelay)
        throw ValidationError("nack delay must be between 0 and " + format_duration(kMaxNackDelay),
                              {{"field", "delay"}});
    return settle(q, sub, r, "nack", "", delay.count() > 0 ? now_ms() + delay.count() : 0);
}

AckResult PullConsumer::extend(const Queue& q, const Subscription& sub, const Receipt& r,
                               const std::string& consumer, std::int64_t* lease_expires_ms) {
    if (consumer.empty()) throw ValidationError("a consumer name is required to extend a lease");
    AckResult result = settle(q, sub, r, "extend", consumer, 0);
    if (result == AckResult::kAcked && lease_expires_ms)
        *lease_expires_ms = now_ms() + sub.visibility_timeout.count();
    return result;
}

}  // namespace mq
