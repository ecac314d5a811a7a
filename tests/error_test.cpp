// mq::Error and the code tables shared by mq-api (HTTP status), mqctl (exit status) and
// the JSON error body.

#include "mq/error.hpp"

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

using mq::ErrorCode;

namespace {

const std::vector<ErrorCode> kEveryCode = {
    ErrorCode::kInternal,           ErrorCode::kValidation,
    ErrorCode::kSchemaValidation,   ErrorCode::kPayloadTooLarge,
    ErrorCode::kQueueNotFound,      ErrorCode::kSubscriptionNotFound,
    ErrorCode::kNotFound,           ErrorCode::kConflict,
    ErrorCode::kQueueFull,          ErrorCode::kQuotaExceeded,
    ErrorCode::kUnauthorized,       ErrorCode::kForbidden,
    ErrorCode::kBackendUnavailable, ErrorCode::kPublishFailed,
    ErrorCode::kHandlerForbidden,   ErrorCode::kWebhookDestinationForbidden,
};

}  // namespace

TEST_CASE("every_error_code_has_its_documented_wire_name", "[error]") {
    CHECK(mq::code_name(ErrorCode::kInternal) == "MQ_INTERNAL_ERROR");
    CHECK(mq::code_name(ErrorCode::kValidation) == "MQ_VALIDATION_ERROR");
    CHECK(mq::code_name(ErrorCode::kSchemaValidation) == "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(mq::code_name(ErrorCode::kPayloadTooLarge) == "MQ_PAYLOAD_TOO_LARGE");
    CHECK(mq::code_name(ErrorCode::kQueueNotFound) == "MQ_QUEUE_NOT_FOUND");
    CHECK(mq::code_name(ErrorCode::kSubscriptionNotFound) == "MQ_SUBSCRIPTION_NOT_FOUND");
    CHECK(mq::code_name(ErrorCode::kNotFound) == "MQ_NOT_FOUND");
    CHECK(mq::code_name(ErrorCode::kConflict) == "MQ_CONFLICT");
    CHECK(mq::code_name(ErrorCode::kQueueFull) == "MQ_QUEUE_FULL");
    CHECK(mq::code_name(ErrorCode::kHandlerForbidden) == "MQ_HANDLER_FORBIDDEN");
    CHECK(mq::http_status(ErrorCode::kHandlerForbidden) == 403);
    CHECK(mq::code_name(ErrorCode::kWebhookDestinationForbidden) ==
          "MQ_WEBHOOK_DESTINATION_FORBIDDEN");
    CHECK(mq::http_status(ErrorCode::kWebhookDestinationForbidden) == 422);
    CHECK(mq::code_name(ErrorCode::kQuotaExceeded) == "MQ_QUOTA_EXCEEDED");
    CHECK(mq::code_name(ErrorCode::kUnauthorized) == "MQ_UNAUTHORIZED");
    CHECK(mq::code_name(ErrorCode::kForbidden) == "MQ_FORBIDDEN");
    CHECK(mq::code_name(ErrorCode::kBackendUnavailable) == "MQ_BACKEND_UNAVAILABLE");
    CHECK(mq::code_name(ErrorCode::kPublishFailed) == "MQ_PUBLISH_FAILED");
}

TEST_CASE("error_code_names_are_distinct_and_prefixed_with_mq", "[error]") {
    std::set<std::string> names;
    for (ErrorCode code : kEveryCode) {
        std::string name(mq::code_name(code));
        INFO(name);
        CHECK(name.rfind("MQ_", 0) == 0);
        names.insert(name);
    }
    CHECK(names.size() == kEveryCode.size());
}

TEST_CASE("http_status_maps_each_code_to_its_status", "[error]") {
    CHECK(mq::http_status(ErrorCode::kValidation) == 400);
    CHECK(mq::http_status(ErrorCode::kUnauthorized) == 401);
    CHECK(mq::http_status(ErrorCode::kForbidden) == 403);
    CHECK(mq::http_status(ErrorCode::kQueueNotFound) == 404);
    CHECK(mq::http_status(ErrorCode::kSubscriptionNotFound) == 404);
    CHECK(mq::http_status(ErrorCode::kNotFound) == 404);
    CHECK(mq::http_status(ErrorCode::kConflict) == 409);
    CHECK(mq::http_status(ErrorCode::kPayloadTooLarge) == 413);
    CHECK(mq::http_status(ErrorCode::kSchemaValidation) == 422);
    CHECK(mq::http_status(ErrorCode::kQueueFull) == 429);
    CHECK(mq::http_status(ErrorCode::kQuotaExceeded) == 429);
    CHECK(mq::http_status(ErrorCode::kBackendUnavailable) == 503);
    CHECK(mq::http_status(ErrorCode::kPublishFailed) == 500);
    CHECK(mq::http_status(ErrorCode::kInternal) == 500);
}

TEST_CASE("exit_status_maps_each_code_to_the_mqctl_exit_status", "[error]") {
    // 2 usage/invalid input, 3 not found, 4 conflict, 5 backend down, 1 anything else.
    CHECK(mq::exit_status(ErrorCode::kValidation) == 2);
    CHECK(mq::exit_status(ErrorCode::kSchemaValidation) == 2);
    CHECK(mq::exit_status(ErrorCode::kPayloadTooLarge) == 2);
    CHECK(mq::exit_status(ErrorCode::kQueueNotFound) == 3);
    CHECK(mq::exit_status(ErrorCode::kSubscriptionNotFound) == 3);
    CHECK(mq::exit_status(ErrorCode::kNotFound) == 3);
    CHECK(mq::exit_status(ErrorCode::kConflict) == 4);
    CHECK(mq::exit_status(ErrorCode::kBackendUnavailable) == 5);
    CHECK(mq::exit_status(ErrorCode::kInternal) == 1);
    CHECK(mq::exit_status(ErrorCode::kPublishFailed) == 1);
    CHECK(mq::exit_status(ErrorCode::kQueueFull) == 1);
    CHECK(mq::exit_status(ErrorCode::kQuotaExceeded) == 1);
    CHECK(mq::exit_status(ErrorCode::kUnauthorized) == 1);
    CHECK(mq::exit_status(ErrorCode::kForbidden) == 1);
}

TEST_CASE("exit_status_is_never_zero_for_an_error", "[error]") {
    for (ErrorCode code : kEveryCode) {
        INFO(mq::code_name(code));
        CHECK(mq::exit_status(code) != 0);
        CHECK(mq::http_status(code) >= 400);
        CHECK(mq::http_status(code) <= 599);
    }
}

TEST_CASE("error_to_json_has_code_message_and_details_under_error", "[error]") {
    mq::Error e(ErrorCode::kQueueNotFound, "queue 'orders' not found", {{"queue", "orders"}});
    nlohmann::json j = e.to_json();
    REQUIRE(j.is_object());
    REQUIRE(j.size() == 1);
    REQUIRE(j.contains("error"));
    const auto& body = j["error"];
    CHECK(body["code"] == "MQ_QUEUE_NOT_FOUND");
    CHECK(body["message"] == "queue 'orders' not found");
    CHECK(body["details"] == nlohmann::json{{"queue", "orders"}});
    REQUIRE(body.contains("retryAfter"));
    CHECK(body["retryAfter"].is_null());
    CHECK(body.size() == 4);
}

TEST_CASE("error_to_json_has_empty_details_object_by_default", "[error]") {
    mq::Error e(ErrorCode::kInternal, "boom");
    nlohmann::json body = e.to_json()["error"];
    CHECK(body["details"].is_object());
    CHECK(body["details"].empty());
    CHECK(body["retryAfter"].is_null());
}

TEST_CASE("error_to_json_retry_after_is_the_wait_or_null", "[error]") {
    mq::Error full(ErrorCode::kQueueFull, "queue is full", nlohmann::json::object(), 7);
    REQUIRE(full.retry_after_s().has_value());
    CHECK(*full.retry_after_s() == 7);
    nlohmann::json body = full.to_json()["error"];
    REQUIRE(body.contains("retryAfter"));
    CHECK(body["retryAfter"] == 7);
    CHECK(body["code"] == "MQ_QUEUE_FULL");

    mq::Error zero(ErrorCode::kQuotaExceeded, "slow down", nlohmann::json::object(), 0);
    nlohmann::json zero_body = zero.to_json()["error"];
    REQUIRE(zero_body.contains("retryAfter"));
    CHECK(zero_body["retryAfter"] == 0);

    mq::Error unset(ErrorCode::kQueueFull, "queue is full");
    CHECK_FALSE(unset.retry_after_s().has_value());
    REQUIRE(unset.to_json()["error"].contains("retryAfter"));
    CHECK(unset.to_json()["error"]["retryAfter"].is_null());
}

TEST_CASE("error_keeps_code_message_and_details", "[error]") {
    mq::Error e(ErrorCode::kConflict, "already exists", {{"name", "q"}});
    CHECK(e.code() == ErrorCode::kConflict);
    CHECK(std::string(e.what()) == "already exists");
    CHECK(e.details()["name"] == "q");
}

TEST_CASE("validation_error_is_an_error_with_the_validation_code", "[error]") {
    try {
        throw mq::ValidationError("bad input", {{"field", "name"}});
    } catch (const mq::Error& e) {
        CHECK(e.code() == ErrorCode::kValidation);
        CHECK(std::string(e.what()) == "bad input");
        CHECK(e.details()["field"] == "name");
        CHECK(mq::http_status(e.code()) == 400);
        CHECK(mq::exit_status(e.code()) == 2);
    }
    CHECK_THROWS_AS(throw mq::ValidationError("x"), std::runtime_error);
}

TEST_CASE("backend_unavailable_is_an_error_with_the_backend_code", "[error]") {
    mq::BackendUnavailable e("cannot reach Redis at 127.0.0.1:6379");
    const mq::Error& base = e;
    CHECK(base.code() == ErrorCode::kBackendUnavailable);
    CHECK(base.to_json()["error"]["code"] == "MQ_BACKEND_UNAVAILABLE");
    CHECK(mq::http_status(base.code()) == 503);
    CHECK(mq::exit_status(base.code()) == 5);
}

TEST_CASE("terminal_text_keeps_utf8_and_escapes_control_sequences", "[error]") {
    CHECK(mq::terminal_text("orders für Zürich — 注文") == "orders für Zürich — 注文");
    CHECK(mq::terminal_text("a\x1b]52;c;x\x07z") == "a\\x1b]52;c;x\\x07z");
    CHECK(mq::terminal_text("line\nnext\r\tdel\x7f") == "line\\x0anext\\x0d\\x09del\\x7f");
    // C1 controls (CSI is U+009B) are escaped byte by byte; U+00A0 and later stay.
    CHECK(mq::terminal_text("\xc2\x9b"
                            "2J\xc2\xa0") == "\\xc2\\x9b2J\xc2\xa0");
    // Not UTF-8: a lone continuation byte, an overlong '/', a surrogate, a cut sequence.
    CHECK(mq::terminal_text("\x80") == "\\x80");
    CHECK(mq::terminal_text("\xc0\xaf") == "\\xc0\\xaf");
    CHECK(mq::terminal_text("\xed\xa0\x80") == "\\xed\\xa0\\x80");
    CHECK(mq::terminal_text("ok\xe6\xb3") == "ok\\xe6\\xb3");
    CHECK(mq::terminal_text("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");
    CHECK(mq::terminal_text("\xf0\x9f\x98\x80") == "\xf0\x9f\x98\x80");
}
