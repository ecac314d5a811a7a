#include "http.hpp"

#include "mq/core/json.hpp"

namespace mqapi {

std::string_view Request::header(std::string_view name) const {
    auto it = raw->find(boost::beast::string_view(name.data(), name.size()));
    if (it == raw->end()) return {};
    auto v = it->value();
    return std::string_view(v.data(), v.size());
}

Response json_response(int status, const nlohmann::json& body) {
    Response r;
    r.status = status;
    r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return r;
}

Response error_response(const mq::Error& error) {
    Response r = json_response(mq::http_status(error.code()), error.to_json());
    if (error.retry_after_s())
        r.headers.emplace_back("Retry-After", std::to_string(*error.retry_after_s()));
    return r;
}

Response error_response(int status, std::string_view code, const std::string& message,
                        std::optional<int> retry_after_s) {
    nlohmann::json body = {{"error",
                            {{"code", code},
                             {"message", message},
                             {"details", nlohmann::json::object()},
                             {"retryAfter", retry_after_s ? nlohmann::json(*retry_after_s)
                                                          : nlohmann::json(nullptr)}}}};
    Response r = json_response(status, body);
    if (retry_after_s) r.headers.emplace_back("Retry-After", std::to_string(*retry_after_s));
    return r;
}

nlohmann::json parse_json_body(std::string_view body, int max_depth) {
    return mq::parse_json(body, "request body", {static_cast<std::size_t>(max_depth), 0});
}

nlohmann::json parse_object_body(std::string_view body) {
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
        return nlohmann::json::object();
    auto j = parse_json_body(body);
    if (!j.is_object()) throw mq::ValidationError("the request body must be a JSON object");
    return j;
}

std::string percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size()) {
            int hi = hex(text[i + 1]);
            int lo = hex(text[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        out.push_back(text[i] == '+' ? ' ' : text[i]);
    }
    return out;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
    std::map<std::string, std::string> out;
    while (!query.empty()) {
        auto amp = query.find('&');
        auto part = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (part.empty()) continue;
        auto eq = part.find('=');
        if (eq == std::string_view::npos)
            out[percent_decode(part)] = "";
        else
            out[percent_decode(part.substr(0, eq))] = percent_decode(part.substr(eq + 1));
    }
    return out;
}

}  // namespace mqapi
