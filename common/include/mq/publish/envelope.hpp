#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mq/publish/publisher.hpp"

namespace mq {

/// A publish request body as the API takes it: one envelope, or {"messages": [...]}.
struct PublishBody {
    std::vector<PublishRequest> messages;
    bool batch = false;
    std::map<std::string, std::string> extras;  ///< string fields named by the caller ("queue")
    /// Per message of a batch: why it was refused (its request in `messages` is empty).
    std::vector<std::optional<Error>> errors;
};

/// Reads publish envelopes (one JSON object each) into PublishRequests with simdjson:
/// the whole text is validated, and a non-string payload keeps its exact bytes (key
/// order, number spelling) instead of being re-serialised. Reuse one parser per thread;
/// it is not thread-safe.
///
/// Envelope: {"payload": <string | any JSON>, "key", "headers": {name: string},
/// "idempotency_key", "content_type", "trace_id", "delay": "90s" | "delay_ms": N,
/// "deliver_at": RFC 3339, "tenantId"}; camelCase spellings are accepted too. Unknown fields are
/// refused so a typo never silently drops an option.
class EnvelopeParser {
  public:
    EnvelopeParser();
    ~EnvelopeParser();
    EnvelopeParser(const EnvelopeParser&) = delete;
    EnvelopeParser& operator=(const EnvelopeParser&) = delete;

    /// Throws ValidationError describing the first problem.
    PublishRequest parse(std::string_view json);

    /// An API body: one envelope whose extra string fields `extras` (e.g. "queue") are
    /// returned apart, or, when `allow_batch`, {"messages": [envelope...], extras...} with
    /// at most `max_batch` messages. A batch message with bad fields is refused alone (see
    /// PublishBody::errors); malformed JSON refuses the whole body.
    PublishBody parse_body(std::string_view json, const std::vector<std::string_view>& extras,
                           bool allow_batch, std::size_t max_batch = 1000);

  private:
    struct State;
    std::unique_ptr<State> state_;
};

/// Applies a W3C `traceparent` (and `tracestate`) header to a request: a valid traceparent
/// replaces the body's trace_id and sets the parent id, flags and (when valid) tracestate;
/// a malformed traceparent changes nothing and a malformed tracestate is dropped
/// (docs/wire-format.md, "Trace context"). Never throws.
void apply_trace_context(PublishRequest& r, std::string_view traceparent,
                         std::string_view tracestate);

}  // namespace mq
