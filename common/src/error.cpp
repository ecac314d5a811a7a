#include "mq/error.hpp"

#include "mq/core/codec.hpp"
#include "mq/core/json.hpp"

namespace mq {

namespace {

// The one table of error codes (error.hpp). Exit statuses: 1 failure, 2 usage/invalid input,
// 3 not found, 4 conflict, 5 backend down (DESIGN.md).
constexpr ErrorCodeInfo kErrorCodes[] = {
    {ErrorCode::kInternal, "MQ_INTERNAL_ERROR", 500, 1},
    {ErrorCode::kValidation, "MQ_VALIDATION_ERROR", 400, 2},
    {ErrorCode::kSchemaValidation, "MQ_SCHEMA_VALIDATION_ERROR", 422, 2},
    {ErrorCode::kPayloadTooLarge, "MQ_PAYLOAD_TOO_LARGE", 413, 2},
    {ErrorCode::kQueueNotFound, "MQ_QUEUE_NOT_FOUND", 404, 3},
    {ErrorCode::kSubscriptionNotFound, "MQ_SUBSCRIPTION_NOT_FOUND", 404, 3},
    {ErrorCode::kNotFound, "MQ_NOT_FOUND", 404, 3},
    {ErrorCode::kConflict, "MQ_CONFLICT", 409, 4},
    {ErrorCode::kQueueFull, "MQ_QUEUE_FULL", 429, 1},
    {ErrorCode::kQuotaExceeded, "MQ_QUOTA_EXCEEDED", 429, 1},
    {ErrorCode::kUnauthorized, "MQ_UNAUTHORIZED", 401, 1},
    {ErrorCode::kForbidden, "MQ_FORBIDDEN", 403, 1},
    {ErrorCode::kBackendUnavailable, "MQ_BACKEND_UNAVAILABLE", 503, 5},
    {ErrorCode::kPublishFailed, "MQ_PUBLISH_FAILED", 500, 1},
    {ErrorCode::kSchemaInvalid, "MQ_SCHEMA_INVALID", 422, 2},
    {ErrorCode::kHandlerForbidden, "MQ_HANDLER_FORBIDDEN", 403, 1},
    {ErrorCode::kWebhookDestinationForbidden, "MQ_WEBHOOK_DESTINATION_FORBIDDEN", 422, 2},
    {ErrorCode::kMethodNotAllowed, "MQ_METHOD_NOT_ALLOWED", 405, 2},
    {ErrorCode::kOverloaded, "MQ_OVERLOADED", 503, 5},
    {ErrorCode::kTooManyAuthFailures, "MQ_TOO_MANY_AUTH_FAILURES", 429, 1},
    {ErrorCode::kHttpsRequired, "MQ_HTTPS_REQUIRED", 400, 2},
};

constexpr bool in_enum_order() {
    for (std::size_t i = 0; i < std::size(kErrorCodes); ++i)
        if (static_cast<std::size_t>(kErrorCodes[i].code) != i) return false;
    return true;
}
static_assert(in_enum_order(), "kErrorCodes lists every ErrorCode once, in enum order");
static_assert(static_cast<std::size_t>(ErrorCode::kHttpsRequired) + 1 == std::size(kErrorCodes),
              "a new ErrorCode needs a row in kErrorCodes");

const ErrorCodeInfo& info(ErrorCode code) {
    auto i = static_cast<std::size_t>(code);
    return i < std::size(kErrorCodes) ? kErrorCodes[i] : kErrorCodes[0];
}

}  // namespace

std::span<const ErrorCodeInfo> error_codes() { return kErrorCodes; }

std::string_view code_name(ErrorCode code) { return info(code).name; }

int http_status(ErrorCode code) { return info(code).http_status; }

int exit_status(ErrorCode code) { return info(code).exit_status; }

std::string printable(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            codec::append_hex_byte(out, c);
        }
    }
    return out;
}

std::string terminal_text(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
            ++i;
            continue;
        }
        const std::size_t n = c >= 0x80 ? utf8_sequence_length(text, i) : 0;
        // U+0080..U+009F (C1 controls, e.g. CSI) are \xc2\x80..\xc2\x9f.
        if (n > 0 && !(c == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0)) {
            out.append(text.substr(i, n));
            i += n;
            continue;
        }
        out += "\\x";
        codec::append_hex_byte(out, c);
        ++i;
    }
    return out;
}

nlohmann::json Error::to_json() const {
    nlohmann::json body = {{"code", code_name(code_)}, {"message", what()}, {"details", details_}};
    // Always present, so clients can read it without checking: null when not retryable later.
    body["retryAfter"] = retry_after_s_ ? nlohmann::json(*retry_after_s_) : nlohmann::json(nullptr);
    return {{"error", body}};
}

}  // namespace mq
