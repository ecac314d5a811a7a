#pragma once

// The request/response types handlers see: plain data, independent of the socket.

#include <boost/beast/http.hpp>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mq/auth/token.hpp"
#include "mq/error.hpp"

namespace mqapi {

namespace http = boost::beast::http;

struct Request {
    http::verb method = http::verb::get;
    std::string path;                           ///< target without the query
    std::map<std::string, std::string> query;   ///< decoded
    std::map<std::string, std::string> params;  ///< {name} segments of the route
    std::string request_id;
    std::optional<mq::Principal> principal;  ///< set for bearer-authenticated routes
    const http::request<http::string_body>* raw = nullptr;

    std::string_view header(std::string_view name) const;
    const std::string& body() const { return raw->body(); }
    const std::string& param(const std::string& name) const { return params.at(name); }
    /// The caller's tenant (bearer routes only).
    const std::string& tenant() const { return principal->tenant; }
};

struct Response {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
};

Response json_response(int status, const nlohmann::json& body);
/// {"error": {...}} with the code's HTTP status, and Retry-After when the error has one.
Response error_response(const mq::Error& error);
/// A status without an mq::Error behind it (404 route, 405 method, 429 and 503 of the
/// admission control); `retry_after_s` set: Retry-After header and "retryAfter".
Response error_response(int status, std::string_view code, const std::string& message,
                        std::optional<int> retry_after_s = std::nullopt);

/// Completes a request: call exactly once, from any thread.
using Reply = std::function<void(Response)>;

/// Parses a JSON body with mq::parse_json (nesting deeper than `max_depth`, numbers out of
/// range and invalid UTF-8 refused, naming the field). Throws ValidationError.
nlohmann::json parse_json_body(std::string_view body, int max_depth = 64);
/// An object body; empty body reads as {}.
nlohmann::json parse_object_body(std::string_view body);

/// "a=1&b=x%20y" -> map, percent-decoded.
std::map<std::string, std::string> parse_query(std::string_view query);
std::string percent_decode(std::string_view text);

}  // namespace mqapi
