#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "mq/publish/publisher.hpp"

namespace mq {

/// Reads publish envelopes (one JSON object each) into PublishRequests with simdjson:
/// the whole text is validated, and a non-string payload keeps its exact bytes (key
/// order, number spelling) instead of being re-serialised. Reuse one parser per thread;
/// it is not thread-safe.
///
/// Envelope: {"payload": <string | any JSON>, "key", "headers": {name: string},
/// "idempotency_key", "content_type", "trace_id", "delay": "90s" | "delay_ms": N,
/// "deliver_at": RFC 3339}; camelCase spellings are accepted too. Unknown fields are
/// refused so a typo never silently drops an option.
class EnvelopeParser {
public:
    EnvelopeParser();
    ~EnvelopeParser();
    EnvelopeParser(const EnvelopeParser&) = delete;
    EnvelopeParser& operator=(const EnvelopeParser&) = delete;

    /// Throws ValidationError describing the first problem.
    PublishRequest parse(std::string_view json);

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace mq
