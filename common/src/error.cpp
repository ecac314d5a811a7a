#include "mq/error.hpp"

#include "mq/core/codec.hpp"

namespace mq {

std::string_view code_name(ErrorCode code) {
    switch (code) {
        case ErrorCode::kInternal:
            return "MQ_INTERNAL_ERROR";
        case ErrorCode::kValidation:
            return "MQ_VALIDATION_ERROR";
        case ErrorCode::kSchemaValidation:
            return "MQ_SCHEMA_VALIDATION_ERROR";
        case ErrorCode::kPayloadTooLarge:
            return "MQ_PAYLOAD_TOO_LARGE";
        case ErrorCode::kQueueNotFound:
            return "MQ_QUEUE_NOT_FOUND";
        case ErrorCode::kSubscriptionNotFound:
            return "MQ_SUBSCRIPTION_NOT_FOUND";
        case ErrorCode::kNotFound:
            return "MQ_NOT_FOUND";
        case ErrorCode::kConflict:
            return "MQ_CONFLICT";
        case ErrorCode::kQueueFull:
            return "MQ_QUEUE_FULL";
        case ErrorCode::kQuotaExceeded:
            return "MQ_QUOTA_EXCEEDED";
        case ErrorCode::kUnauthorized:
            return "MQ_UNAUTHORIZED";
        case ErrorCode::kForbidden:
            return "MQ_FORBIDDEN";
        case ErrorCode::kBackendUnavailable:
            return "MQ_BACKEND_UNAVAILABLE";
        case ErrorCode::kPublishFailed:
            return "MQ_PUBLISH_FAILED";
        case ErrorCode::kSchemaInvalid:
            return "MQ_SCHEMA_INVALID";
        case ErrorCode::kHandlerForbidden:
            return "MQ_HANDLER_FORBIDDEN";
        case ErrorCode::kWebhookDestinationForbidden:
            return "MQ_WEBHOOK_DESTINATION_FORBIDDEN";
    }
    return "MQ_INTERNAL_ERROR";
}

int http_status(ErrorCode code) {
    switch (code) {
        case ErrorCode::kValidation:
            return 400;
        case ErrorCode::kUnauthorized:
            return 401;
        case ErrorCode::kForbidden:
        case ErrorCode::kHandlerForbidden:
            return 403;
        case ErrorCode::kQueueNotFound:
        case ErrorCode::kSubscriptionNotFound:
        case ErrorCode::kNotFound:
            return 404;
        case ErrorCode::kConflict:
            return 409;
        case ErrorCode::kPayloadTooLarge:
            return 413;
        case ErrorCode::kSchemaValidation:
        case ErrorCode::kSchemaInvalid:
        case ErrorCode::kWebhookDestinationForbidden:
            return 422;
        case ErrorCode::kQueueFull:
        case ErrorCode::kQuotaExceeded:
            return 429;
        case ErrorCode::kBackendUnavailable:
            return 503;
        case ErrorCode::kPublishFailed:
        case ErrorCode::kInternal:
            return 500;
    }
    return 500;
}

int exit_status(ErrorCode code) {
    switch (code) {
        case ErrorCode::kValidation:
        case ErrorCode::kSchemaValidation:
        case ErrorCode::kSchemaInvalid:
        case ErrorCode::kPayloadTooLarge:
        case ErrorCode::kWebhookDestinationForbidden:
            return 2;
        case ErrorCode::kQueueNotFound:
        case ErrorCode::kSubscriptionNotFound:
        case ErrorCode::kNotFound:
            return 3;
        case ErrorCode::kConflict:
            return 4;
        case ErrorCode::kBackendUnavailable:
            return 5;
        default:
            return 1;
    }
}

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

nlohmann::json Error::to_json() const {
    nlohmann::json body = {{"code", code_name(code_)}, {"message", what()}, {"details", details_}};
    // Always present, so clients can read it without checking: null when not retryable later.
    body["retryAfter"] = retry_after_s_ ? nlohmann::json(*retry_after_s_) : nlohmann::json(nullptr);
    return {{"error", body}};
}

}  // namespace mq
