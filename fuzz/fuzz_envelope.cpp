// Publish envelopes as mq-api bodies and batch lines carry them: one object, or
// {"messages": [...]} with extra fields. Anything but a value or mq::Error is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mq/error.hpp"
#include "mq/publish/envelope.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static mq::EnvelopeParser parser;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    mq::PublishLimits limits;
    try {
        mq::PublishRequest r = parser.parse(text);
        mq::validate(r, limits);
    } catch (const mq::Error&) {
    }
    try {
        mq::PublishBody body = parser.parse_body(text, {"queue"}, true, 100);
        for (std::size_t i = 0; i < body.messages.size(); ++i) {
            if (i < body.errors.size() && body.errors[i]) continue;
            try {
                mq::validate(body.messages[i], limits);
            } catch (const mq::Error&) {
            }
        }
    } catch (const mq::Error&) {
    }
    return 0;
}
