#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mq {

/// The error codes shared by mqctl (exit status), mq-api (HTTP status) and logs.
enum class ErrorCode {
    kInternal,
    kValidation,
    kSchemaValidation,
    kPayloadTooLarge,
    kQueueNotFound,
    kSubscriptionNotFound,
    kNotFound,
    kConflict,
    kQueueFull,
    kQuotaExceeded,
    kUnauthorized,
    kForbidden,
    kBackendUnavailable,
    kPublishFailed,
    kSchemaInvalid,  ///< a queue schema refused when stored (422, exit 2)
    /// A handler an API token may not set: exec, log to a file (docs/security.md).
    kHandlerForbidden,
    /// A webhook URL that reaches a non-public address (docs/security.md, SSRF).
    kWebhookDestinationForbidden,
    /// The path exists with other methods (405, `Allow` lists them).
    kMethodNotAllowed,
    /// mq-api refuses work at its connection or queue limit (503, retry after 1 s).
    kOverloaded,
    /// A client over its failed-authentication limit (429 with retryAfter).
    kTooManyAuthFailures,
    /// Plain HTTP sent to the TLS port (400).
    kHttpsRequired,
};

/// One row of the error-code table: the code as the API spells it, the HTTP status it is
/// answered with and the mqctl exit status. schemas/openapi.json (the ErrorBody code enum) and
/// docs/api.md ("Errors") are checked against this table by tests/error_codes_test.cpp.
struct ErrorCodeInfo {
    ErrorCode code;
    std::string_view name;
    int http_status;
    int exit_status;
};

/// Every error code, in enum order.
std::span<const ErrorCodeInfo> error_codes();

/// "MQ_QUEUE_NOT_FOUND" etc.: the code as the API and `-o json` spell it.
std::string_view code_name(ErrorCode code);
/// HTTP status the API answers with for this code.
int http_status(ErrorCode code);
/// mqctl exit status: 1 failure, 2 usage/invalid input, 3 not found, 4 conflict, 5 backend down.
int exit_status(ErrorCode code);

/// `text` with bytes outside printable ASCII escaped as \xNN: safe to put user input into
/// an error message that becomes JSON or a terminal line.
std::string printable(std::string_view text);
/// `text` for a terminal: valid UTF-8 other than control characters (C0, DEL, C1) stays as
/// it is, so names in any script read well; control characters and bytes that are not
/// UTF-8 become \xNN, so stored text can never move the cursor or send an escape sequence.
std::string terminal_text(std::string_view text);

/// Root of every mq failure. `what()` is safe to show a client or operator; it never
/// contains SQL, other tenants' keys or stack traces.
class Error : public std::runtime_error {
  public:
    Error(ErrorCode code, const std::string& message,
          nlohmann::json details = nlohmann::json::object(),
          std::optional<int> retry_after_s = std::nullopt)
        : std::runtime_error(message),
          code_(code),
          details_(std::move(details)),
          retry_after_s_(retry_after_s) {}

    ErrorCode code() const { return code_; }
    const nlohmann::json& details() const { return details_; }
    std::optional<int> retry_after_s() const { return retry_after_s_; }

    /// {"error":{"code":..,"message":..,"details":..,"retryAfter":..}}
    nlohmann::json to_json() const;

  private:
    ErrorCode code_;
    nlohmann::json details_;
    std::optional<int> retry_after_s_;
};

/// Redis or PostgreSQL cannot be reached or answered with an I/O failure.
class BackendUnavailable : public Error {
  public:
    explicit BackendUnavailable(const std::string& message)
        : Error(ErrorCode::kBackendUnavailable, message) {}
};

/// Bad input from the user: names, durations, JSON, sizes.
class ValidationError : public Error {
  public:
    explicit ValidationError(const std::string& message,
                             nlohmann::json details = nlohmann::json::object())
        : Error(ErrorCode::kValidation, message, std::move(details)) {}
};

}  // namespace mq
