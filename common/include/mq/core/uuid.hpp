#pragma once

#include <cstdint>
#include <string>

namespace mq {

/// A new UUIDv7 (RFC 9562) as 36 lowercase hex characters with dashes. 48-bit Unix ms
/// timestamp, then a 12-bit counter seeded randomly each millisecond (RFC 9562 §6.2
/// method 1), so ids made by one process sort in creation order.
std::string new_uuid_v7();

/// Unix milliseconds encoded in a UUIDv7 string; -1 when it is not one.
std::int64_t uuid_v7_millis(const std::string& uuid);

}  // namespace mq
