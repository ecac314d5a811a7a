#include "router.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "mq/core/log_context.hpp"
#include "mq/redis/client.hpp"

namespace mqapi {

namespace {

bool may_carry_backend_text(mq::ErrorCode code) {
    return code == mq::ErrorCode::kInternal || code == mq::ErrorCode::kPublishFailed ||
           code == mq::ErrorCode::kBackendUnavailable;
}

std::string generic_message(mq::ErrorCode code, std::string_view request_id) {
    std::string id(request_id);
    switch (code) {
        case mq::ErrorCode::kBackendUnavailable:
            return "the message store is unavailable or busy; nothing was changed by this "
                   "request, retry later (request id " +
                   id + ")";
        case mq::ErrorCode::kPublishFailed:
            return "the message could not be stored (request id " + id + ")";
        default:
            return "internal error (request id " + id + ")";
    }
}

std::vector<std::string> split_path(std::string_view path) {
    std::vector<std::string> out;
    std::size_t start = 1;
    while (start <= path.size()) {
        auto slash = path.find('/', start);
        if (slash == std::string_view::npos) slash = path.size();
        out.emplace_back(path.substr(start, slash - start));
        start = slash + 1;
    }
    return out;
}

}  // namespace

mq::Error client_error(const mq::Error& error, std::string_view request_id) {
    if (!may_carry_backend_text(error.code())) return error;
    // Also called off the request's threads (publish completions): names the request itself.
    mq::LogScope scope(mq::LogScope::Show::kJsonOnly, {{"request_id", request_id}});
    spdlog::error("{} {}: {}", request_id, mq::code_name(error.code()),
                  mq::printable(error.what()));
    std::optional<int> retry = error.retry_after_s();
    if (error.code() == mq::ErrorCode::kBackendUnavailable && !retry)
        retry = mq::redis::kTryAgainAfterSeconds;
    return mq::Error(error.code(), generic_message(error.code(), request_id),
                     {{"request_id", std::string(request_id)}}, retry);
}

void redact_answer(Response& response, std::string_view request_id) {
    if (response.status < 500 || response.content_type != "application/json") return;
    auto body = nlohmann::json::parse(response.body, nullptr, false);
    if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) return;
    const auto& e = body["error"];
    if (!e.contains("code") || !e["code"].is_string()) return;
    const std::string code = e["code"].get<std::string>();
    // Rebuilt as the Error it came from, then shown as client_error shows any Error.
    std::optional<mq::ErrorCode> known;
    for (const auto& row : mq::error_codes())
        if (row.name == code) known = row.code;
    if (!known || !may_carry_backend_text(*known)) return;
    const mq::ErrorCode c = *known;
    std::optional<int> retry;
    if (e.contains("retryAfter") && e["retryAfter"].is_number_integer())
        retry = e["retryAfter"].get<int>();
    std::string message = e.contains("message") && e["message"].is_string()
                              ? e["message"].get<std::string>()
                              : std::string();
    // Already ours (a second pass, or a generic answer made elsewhere): leave it.
    if (e.contains("details") && e["details"].is_object() && e["details"].contains("request_id"))
        return;
    auto shown = client_error(mq::Error(c, message, nlohmann::json::object(), retry), request_id);
    response.body = shown.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (shown.retry_after_s()) {
        bool has = false;
        for (const auto& [k, v] : response.headers) has = has || k == "Retry-After";
        if (!has)
            response.headers.emplace_back("Retry-After", std::to_string(*shown.retry_after_s()));
    }
}

void RouteStats::record(int status, std::uint64_t micros) {
    duration.Observe(static_cast<double>(micros) / 1e6);
    int cls = status / 100;
    if (cls >= 1 && cls <= 5) by_class[cls].fetch_add(1, std::memory_order_relaxed);
}

Route& Router::add_route(http::verb method, std::string pattern, Auth auth, Runs runs,
                         std::size_t body_limit) {
    auto r = std::make_unique<Route>();
    r->method = method;
    r->segments = split_path(pattern);
    r->pattern = std::move(pattern);
    r->auth = auth;
    r->runs = runs;
    r->body_limit = body_limit;
    routes_.push_back(std::move(r));
    return *routes_.back();
}

namespace {

// A JSON value of the wrong type that a route read without checking (nlohmann type_error,
// out_of_range) is bad input, never a 500. Routes check their fields and name them; this
// is the net under them.
[[noreturn]] void wrong_type(const nlohmann::json::exception& e) {
    throw mq::ValidationError(std::string("a field of the request has the wrong type or is out "
                                          "of range (JSON error ") +
                              std::to_string(e.id) + ")");
}

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t n = 0;
        std::uint32_t cp = 0;
        if ((c >> 5) == 0x6) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c >> 4) == 0xE) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c >> 3) == 0x1E) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= s.size()) return false;
        for (std::size_t k = 1; k <= n; ++k) {
            auto d = static_cast<unsigned char>(s[i + k]);
            if ((d >> 6) != 0x2) return false;
            cp = (cp << 6) | (d & 0x3F);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return false;
        i += n + 1;
    }
    return true;
}

// What every route refuses before its handler runs: a body that says it is not JSON, and
// path segments that are not UTF-8 text (names are text; a 404 would echo bytes back).
void check_request(const Request& req) {
    for (const auto& [name, value] : req.params) {
        bool control = false;
        for (unsigned char c : value) control = control || c < 0x20 || c == 0x7F;
        if (control || !valid_utf8(value))
            throw mq::ValidationError("path segment {" + name +
                                          "} must be UTF-8 text without "
                                          "control characters",
                                      {{"field", name}});
    }
    if (req.raw == nullptr || req.body().empty()) return;
    auto type = req.header("Content-Type");
    if (type.empty()) return;  // curl -d without -H, old clients: the body is parsed as JSON
    std::string media;
    for (char c : type.substr(0, type.find(';')))
        if (c != ' ' && c != '\t')
            media += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool json =
        media == "application/json" || (media.rfind("application/", 0) == 0 && media.size() > 5 &&
                                        media.compare(media.size() - 5, 5, "+json") == 0);
    if (!json)
        throw mq::ValidationError("the request body must be JSON (Content-Type: application/json)",
                                  {{"field", "Content-Type"}});
}

}  // namespace

void Router::add(http::verb method, std::string pattern, Auth auth, SyncHandler handler,
                 std::size_t body_limit) {
    add_route(method, std::move(pattern), auth, Runs::kBlocking, body_limit).sync =
        [h = std::move(handler)](Request& req) -> Response {
        try {
            check_request(req);
            return h(req);
        } catch (const nlohmann::json::exception& e) {
            wrong_type(e);
        }
    };
}

void Router::add_async(http::verb method, std::string pattern, Auth auth, AsyncHandler handler,
                       std::size_t body_limit) {
    add_route(method, std::move(pattern), auth, Runs::kInline, body_limit).async =
        [h = std::move(handler)](Request& req, Reply reply) {
            try {
                check_request(req);
                h(req, std::move(reply));
            } catch (const nlohmann::json::exception& e) {
                wrong_type(e);
            }
        };
}

Router::Match Router::match(http::verb method, std::string_view path) const {
    Match m;
    if (path.empty() || path[0] != '/') return m;
    auto parts = split_path(path);
    for (const auto& r : routes_) {
        if (r->segments.size() != parts.size()) continue;
        std::map<std::string, std::string> params;
        bool ok = true;
        for (std::size_t i = 0; i < parts.size() && ok; ++i) {
            const auto& seg = r->segments[i];
            if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
                if (parts[i].empty())
                    ok = false;
                else
                    params[seg.substr(1, seg.size() - 2)] = percent_decode(parts[i]);
            } else {
                ok = seg == parts[i];
            }
        }
        if (!ok) continue;
        m.path_known = true;
        if (r->method == method) {
            m.route = r.get();
            m.params = std::move(params);
            m.allowed.clear();
            return m;
        }
        if (std::find(m.allowed.begin(), m.allowed.end(), r->method) == m.allowed.end())
            m.allowed.push_back(r->method);
    }
    return m;
}

}  // namespace mqapi
