#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mq {

struct Message;

/// W3C Trace Context (https://www.w3.org/TR/trace-context/): parsing of the `traceparent`
/// and `tracestate` headers a publisher sends, and the `traceparent` mq hands on with each
/// delivery (docs/wire-format.md, "Trace context").
namespace trace {

/// A valid traceparent, reduced to what version 00 carries.
struct TraceParent {
    std::string trace_id;   ///< 32 lowercase hex digits, not all zero
    std::string parent_id;  ///< 16 lowercase hex digits, not all zero (the caller's span)
    std::string flags;      ///< 2 lowercase hex digits; only the sampled bit is kept ("00"/"01")
};

/// Limits of a stored tracestate (W3C §3.3.1: at most 32 members; 512 characters is the
/// length a platform must propagate).
inline constexpr std::size_t kMaxTraceStateMembers = 32;
inline constexpr std::size_t kMaxTraceStateChars = 512;

/// The header, or nothing when it is malformed: wrong length or separators, uppercase or
/// non-hex digits, an all-zero trace id or parent id, version ff. A version above 00 is
/// read by its first four fields when what follows them starts with '-'. Surrounding
/// spaces and tabs are ignored.
std::optional<TraceParent> parse_traceparent(std::string_view header);

/// The tracestate header with empty members and optional white space removed, or nothing
/// when it is malformed (a bad key or value, a duplicate key, more than 32 members) or
/// longer than 512 characters once cleaned.
std::optional<std::string> parse_tracestate(std::string_view header);

/// True for 32 lowercase hex digits that are not all zero.
bool is_trace_id(std::string_view s);

/// The W3C trace id a stored trace id stands for: itself when it is one, lowercased when
/// it is 32 hex digits in another case, its digits when it is a UUID (8-4-4-4-12 hex);
/// nothing for any other string (a body "trace_id" may be anything).
std::optional<std::string> w3c_trace_id(std::string_view stored);

/// A random span id: 16 lowercase hex digits, never all zero.
std::string new_span_id();

/// "00-<trace id>-<span id>-<flags>".
std::string format_traceparent(std::string_view trace_id, std::string_view span_id,
                               std::string_view flags);

/// The trace context one delivery of `m` carries: its trace id with a new span id (one per
/// delivery attempt), the flags it was published with ("01" when it came without any) and
/// its tracestate. Empty traceparent when the message has no W3C trace id.
struct Handoff {
    std::string traceparent;
    std::string tracestate;
};
Handoff handoff(const Message& m);

}  // namespace trace
}  // namespace mq
