#include "metrics_server.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <sstream>

#include "mq/consume/subscription.hpp"
#include "mq/queue/inspector.hpp"

namespace mqworker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Queue figures for the subscriptions the runners deliver, each queue inspected once.
void render_queue_figures(std::ostringstream& out,
                          const std::vector<std::shared_ptr<mq::SubscriptionRunner>>& runners,
                          mq::redis::Connection* redis) {
    std::vector<const mq::Queue*> queues;
    for (const auto& r : runners) {
        const auto& q = r->options().queue;
        bool seen = std::any_of(queues.begin(), queues.end(), [&](const mq::Queue* x) {
            return x->tenant == q.tenant && x->name == q.name;
        });
        if (!seen) queues.push_back(&q);
    }
    std::vector<mq::QueueFigures> figures;
    bool up = redis != nullptr;
    try {
        if (redis && !runners.empty())
            figures = mq::QueueInspector(*redis, runners.front()->options().keys).inspect(queues);
    } catch (const mq::Error&) {
        up = false;
    }
    auto family = [&](const char* name, const char* help) {
        out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " gauge\n";
    };
    family("mq_worker_queue_figures_up",
           "1 when the queue figures below could be read from Redis.");
    out << "mq_worker_queue_figures_up " << (up ? 1 : 0) << '\n';
    auto each = [&](const char* name, const char* help, auto value) {
        family(name, help);
        for (const auto& r : runners) {
            const auto& o = r->options();
            for (const auto& f : figures) {
                if (f.tenant != o.queue.tenant || f.name != o.queue.name) continue;
                const auto* s = f.subscription(mq::consumer_group(o.subscription));
                if (!s) continue;
                std::optional<double> v = value(f, *s);
                if (v)
                    out << name << "{tenant=\"" << o.queue.tenant << "\",queue=\"" << o.queue.name
                        << "\",subscription=\"" << o.subscription.name << "\"} " << *v << '\n';
            }
        }
    };
    each("mq_subscription_backlog", "Entries a subscription has not finished: lag + pending.",
         [](const mq::QueueFigures&, const mq::SubscriptionFigures& s) -> std::optional<double> {
             return static_cast<double>(s.backlog);
         });
    each("mq_subscription_lag",
         "Entries not yet delivered to a subscription (absent when unknown).",
         [](const mq::QueueFigures&, const mq::SubscriptionFigures& s) -> std::optional<double> {
             if (!s.lag_known) return std::nullopt;
             return static_cast<double>(s.lag);
         });
    each("mq_subscription_pending", "Entries delivered to a subscription and not acked.",
         [](const mq::QueueFigures&, const mq::SubscriptionFigures& s) -> std::optional<double> {
             return static_cast<double>(s.pending);
         });
    each("mq_subscription_oldest_pending_age_seconds",
         "Age (since publish) of the oldest entry held pending.",
         [](const mq::QueueFigures& f, const mq::SubscriptionFigures& s) -> std::optional<double> {
             auto a = f.age_ms(s.oldest_pending_ms);
             if (!a) return std::nullopt;
             return static_cast<double>(*a) / 1000.0;
         });
}

}  // namespace

std::string render_metrics(const std::vector<std::shared_ptr<mq::SubscriptionRunner>>& runners,
                           mq::redis::Connection* redis) {
    std::ostringstream out;
    auto family = [&](const char* name, const char* type, const char* help) {
        out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
    };
    auto labels = [](const mq::SubscriptionRunner& r, const std::string& extra = {}) {
        const auto& o = r.options();
        return "{tenant=\"" + o.queue.tenant + "\",queue=\"" + o.queue.name + "\",subscription=\"" +
               o.subscription.name + "\"" + extra + "}";
    };
    family("mq_worker_deliveries_total", "counter", "Delivery attempts by outcome.");
    for (const auto& r : runners) {
        const auto& m = *r->metrics();
        const std::pair<const char*, std::uint64_t> outcomes[] = {
            {"acked", m.acked},
            {"failed", m.failed},
            {"dead_lettered", m.dead_lettered},
            {"dropped", m.dropped},
            {"filtered", m.filtered}};
        for (auto [name, v] : outcomes)
            out << "mq_worker_deliveries_total"
                << labels(*r, ",outcome=\"" + std::string(name) + "\"") << ' ' << v << '\n';
    }
    family("mq_worker_reclaimed_total", "counter",
           "Entries taken back after a backoff or a visibility timeout.");
    for (const auto& r : runners)
        out << "mq_worker_reclaimed_total" << labels(*r) << ' ' << r->metrics()->reclaimed << '\n';
    family("mq_worker_delayed_moved_total", "counter",
           "Delayed entries moved into the stream by this worker.");
    for (const auto& r : runners)
        out << "mq_worker_delayed_moved_total" << labels(*r) << ' ' << r->metrics()->moved_delayed
            << '\n';
    family("mq_worker_in_flight", "gauge", "Deliveries running now.");
    for (const auto& r : runners)
        out << "mq_worker_in_flight" << labels(*r) << ' ' << r->metrics()->in_flight << '\n';
    family("mq_worker_paused", "gauge", "1 when the subscription is paused.");
    for (const auto& r : runners)
        out << "mq_worker_paused" << labels(*r) << ' ' << (r->paused() ? 1 : 0) << '\n';
    family("mq_worker_backend_errors_total", "counter", "Redis failures seen (each retried).");
    for (const auto& r : runners)
        out << "mq_worker_backend_errors_total" << labels(*r) << ' ' << r->metrics()->backend_errors
            << '\n';
    family("mq_worker_handler_duration_seconds", "histogram",
           "Time spent in the handler per delivery.");
    for (const auto& r : runners) {
        const auto& m = *r->metrics();
        for (std::size_t i = 0; i < std::size(mq::RunnerMetrics::kBuckets); ++i)
            out << "mq_worker_handler_duration_seconds_bucket"
                << labels(*r, ",le=\"" + std::to_string(mq::RunnerMetrics::kBuckets[i]) + "\"")
                << ' ' << m.duration_buckets[i] << '\n';
        out << "mq_worker_handler_duration_seconds_bucket" << labels(*r, ",le=\"+Inf\"") << ' '
            << m.duration_count << '\n';
        out << "mq_worker_handler_duration_seconds_sum" << labels(*r) << ' '
            << static_cast<double>(m.duration_sum_us) / 1e6 << '\n';
        out << "mq_worker_handler_duration_seconds_count" << labels(*r) << ' ' << m.duration_count
            << '\n';
    }
    if (!runners.empty()) render_queue_figures(out, runners, redis);
    return out.str();
}

std::string render_skipped(const std::vector<mq::SkippedSubscription>& skipped) {
    std::ostringstream out;
    out << "# HELP mq_worker_subscriptions_skipped Subscriptions of the database not run here, "
           "by reason (docs/security.md).\n# TYPE mq_worker_subscriptions_skipped gauge\n";
    for (const char* reason : {"api_origin", "operator_handlers_not_allowed", "invalid_handler"})
        out << "mq_worker_subscriptions_skipped{reason=\"" << reason << "\"} "
            << std::count_if(skipped.begin(), skipped.end(),
                             [&](const auto& s) { return s.reason == reason; })
            << '\n';
    return out.str();
}

struct MetricsServer::Impl {
    Runners runners;
    Skipped skipped;
    asio::io_context ioc{1};
    tcp::acceptor acceptor{ioc};
    std::thread thread;

    std::unique_ptr<mq::redis::Connection>
        redis;  // for queue figures; used by the server thread only

    Impl(Runners r, Skipped s) : runners(std::move(r)), skipped(std::move(s)) {}

    // Connected on first use and kept (it reconnects itself after a failure); short timeouts
    // so a scrape does not hang on a Redis outage.
    mq::redis::Connection* queue_figures_connection(
        const std::vector<std::shared_ptr<mq::SubscriptionRunner>>& now) {
        if (!redis && !now.empty()) {
            try {
                redis = std::make_unique<mq::redis::Connection>(
                    now.front()->options().endpoint,
                    mq::redis::ConnectOptions{std::chrono::milliseconds(1000),
                                              std::chrono::milliseconds(2000)});
            } catch (const mq::Error&) {
            }
        }
        return redis.get();
    }

    void accept() {
        acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
            if (ec) return;
            serve(std::make_shared<tcp::socket>(std::move(socket)));
            accept();
        });
    }

    void serve(std::shared_ptr<tcp::socket> socket) {
        auto buffer = std::make_shared<beast::flat_buffer>();
        auto req = std::make_shared<http::request<http::string_body>>();
        http::async_read(
            *socket, *buffer, *req, [this, socket, buffer, req](beast::error_code ec, std::size_t) {
                if (ec) return;
                auto res = std::make_shared<http::response<http::string_body>>();
                res->version(req->version());
                res->keep_alive(false);
                if (req->method() == http::verb::get && req->target() == "/metrics") {
                    res->result(http::status::ok);
                    res->set(http::field::content_type, "text/plain; version=0.0.4");
                    auto now = runners();
                    res->body() = render_metrics(now, queue_figures_connection(now));
                    if (skipped) res->body() += render_skipped(skipped());
                } else if (req->method() == http::verb::get && req->target() == "/healthz") {
                    bool ok = true;
                    for (const auto& r : runners()) ok = ok && r->healthy();
                    res->result(ok ? http::status::ok : http::status::service_unavailable);
                    res->set(http::field::content_type, "application/json");
                    res->body() = ok ? R"({"status":"ok"})"
                                     : R"({"status":"degraded","reason":"Redis unreachable"})";
                } else {
                    res->result(http::status::not_found);
                    res->body() = "not found\n";
                }
                res->prepare_payload();
                http::async_write(*socket, *res, [socket, res](beast::error_code, std::size_t) {
                    beast::error_code ignored;
                    socket->shutdown(tcp::socket::shutdown_send, ignored);
                });
            });
    }
};

MetricsServer::MetricsServer(const std::string& address, int port, Runners runners, Skipped skipped)
    : impl_(std::make_unique<Impl>(std::move(runners), std::move(skipped))) {
    tcp::endpoint ep(asio::ip::make_address(address), static_cast<unsigned short>(port));
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen();
    impl_->accept();
    impl_->thread = std::thread([this] { impl_->ioc.run(); });
    spdlog::info("metrics on http://{}/metrics", ep.address().is_v6()
                                                     ? "[" + address + "]:" + std::to_string(port)
                                                     : address + ":" + std::to_string(port));
}

MetricsServer::~MetricsServer() {
    impl_->ioc.stop();
    impl_->thread.join();
}

}  // namespace mqworker
