#include "mq/core/message.hpp"

#include <charconv>

#include "mq/error.hpp"

namespace mq {

void encode_fields(const Message& m, std::vector<std::string>& out) {
    auto put = [&out](const char* field, const std::string& value) {
        out.emplace_back(field);
        out.push_back(value);
    };
    put(wire::kId, m.id);
    if (!m.key.empty()) put(wire::kKey, m.key);
    if (!m.headers_json.empty()) put(wire::kHeaders, m.headers_json);
    put(wire::kPayload, m.payload);
    if (!m.content_type.empty()) put(wire::kContentType, m.content_type);
    put(wire::kPublished, std::to_string(m.published_ms));
    if (!m.trace_id.empty()) put(wire::kTrace, m.trace_id);
    if (!m.trace_parent_id.empty()) put(wire::kTraceParent, m.trace_parent_id);
    if (!m.trace_flags.empty()) put(wire::kTraceFlags, m.trace_flags);
    if (!m.trace_state.empty()) put(wire::kTraceState, m.trace_state);
    if (!m.encryption_key_id.empty()) put(wire::kEncryptionKey, m.encryption_key_id);
}

Message decode_fields(const FieldList& fields) {
    Message m;
    bool has_id = false, has_payload = false;
    for (const auto& [f, v] : fields) {
        if (f == wire::kId) {
            m.id = v;
            has_id = true;
        } else if (f == wire::kPayload) {
            m.payload = v;
            has_payload = true;
        } else if (f == wire::kKey) {
            m.key = v;
        } else if (f == wire::kHeaders) {
            m.headers_json = v;
        } else if (f == wire::kContentType) {
            m.content_type = v;
        } else if (f == wire::kPublished) {
            std::from_chars(v.data(), v.data() + v.size(), m.published_ms);
        } else if (f == wire::kTrace) {
            m.trace_id = v;
        } else if (f == wire::kTraceParent) {
            m.trace_parent_id = v;
        } else if (f == wire::kTraceFlags) {
            m.trace_flags = v;
        } else if (f == wire::kTraceState) {
            m.trace_state = v;
        } else if (f == wire::kEncryptionKey) {
            m.encryption_key_id = v;
        }
    }
    if (!has_id || !has_payload)
        throw ValidationError("stream entry is not an mq message (missing 'id' or 'p' field)");
    return m;
}

}  // namespace mq
