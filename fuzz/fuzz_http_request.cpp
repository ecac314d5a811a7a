// The HTTP request path of mq-api up to the handler: Beast's request parser (header and
// body limits as the server sets them), the target split into path and query, the route
// table's matching with percent-decoded {params}, and the JSON body parser.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http.hpp"
#include "mq/error.hpp"
#include "router.hpp"

namespace {

namespace http = boost::beast::http;

// The patterns mq-api registers (apps/mq-api/routes_*.cpp); handlers are never run.
const mqapi::Router& router() {
    static const mqapi::Router r = [] {
        mqapi::Router out;
        const std::pair<http::verb, const char*> routes[] = {
            {http::verb::post, "/api/v1/mq/queues"},
            {http::verb::get, "/api/v1/mq/queues"},
            {http::verb::get, "/api/v1/mq/queues/{name}"},
            {http::verb::put, "/api/v1/mq/queues/{name}"},
            {http::verb::delete_, "/api/v1/mq/queues/{name}"},
            {http::verb::post, "/api/v1/mq/queues/{name}/purge"},
            {http::verb::post, "/api/v1/mq/publish"},
            {http::verb::post, "/api/v1/mq/publish/batch"},
            {http::verb::post, "/api/v1/mq/topics/{name}/publish"},
            {http::verb::post, "/api/v1/mq/subscriptions"},
            {http::verb::get, "/api/v1/mq/subscriptions/{id}"},
            {http::verb::post, "/api/v1/mq/subscriptions/{id}/pull"},
            {http::verb::post, "/api/v1/mq/subscriptions/{id}/ack"},
            {http::verb::get, "/api/v1/mq/queues/{name}/dead-letters/{id}"},
            {http::verb::get, "/api/v1/mq/health"},
            {http::verb::get, "/metrics"},
            {http::verb::get, "/internal/mq/metrics"},
        };
        for (const auto& [verb, pattern] : routes)
            out.add(verb, pattern, mqapi::Auth::kBearer,
                    [](mqapi::Request&) { return mqapi::Response{}; });
        return out;
    }();
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(8 * 1024);
    parser.body_limit(64 * 1024);
    parser.eager(true);
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(data, size), ec);
    if (ec && ec != http::error::need_more) return 0;
    if (!parser.is_header_done()) return 0;
    const auto& req = parser.get();
    auto target = std::string_view(req.target().data(), req.target().size());
    auto q = target.find('?');
    std::string path(target.substr(0, q));
    if (q != std::string_view::npos) mqapi::parse_query(target.substr(q + 1));
    auto m = router().match(req.method(), path);
    if (m.route && m.route->method != req.method()) __builtin_trap();
    for (const auto& [name, value] : m.params)
        if (name.empty()) __builtin_trap();
    if (parser.is_done()) {
        try {
            mqapi::parse_object_body(req.body());
        } catch (const mq::Error&) {
        }
    }
    return 0;
}
