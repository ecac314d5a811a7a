#include "router.hpp"

namespace mqapi {

namespace {

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

void RouteStats::record(int status, std::uint64_t micros) {
    count.fetch_add(1, std::memory_order_relaxed);
    sum_us.fetch_add(micros, std::memory_order_relaxed);
    double seconds = static_cast<double>(micros) / 1e6;
    for (std::size_t i = 0; i < std::size(kBuckets); ++i)
        if (seconds <= kBuckets[i]) {
            buckets[i].fetch_add(1, std::memory_order_relaxed);
            break;  // cumulative sums are made when rendering
        }
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

void Router::add(http::verb method, std::string pattern, Auth auth, SyncHandler handler,
                 std::size_t body_limit) {
    add_route(method, std::move(pattern), auth, Runs::kBlocking, body_limit).sync =
        std::move(handler);
}

void Router::add_async(http::verb method, std::string pattern, Auth auth, AsyncHandler handler,
                       std::size_t body_limit) {
    add_route(method, std::move(pattern), auth, Runs::kInline, body_limit).async =
        std::move(handler);
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
            return m;
        }
    }
    return m;
}

}  // namespace mqapi
