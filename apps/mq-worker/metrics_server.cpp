#include "metrics_server.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "mq/consume/subscription.hpp"
#include "mq/metrics/exposition.hpp"
#include "mq/queue/inspector.hpp"

namespace mqworker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

using mq::metrics::FamilyBuilder;
using mq::metrics::LabelList;
using prometheus::MetricType;

LabelList runner_labels(const mq::SubscriptionRunner& r) {
    const auto& o = r.options();
    return {
        {"tenant", o.queue.tenant}, {"queue", o.queue.name}, {"subscription", o.subscription.name}};
}

// Queue figures for the subscriptions the runners deliver, each queue inspected once (one
// pipelined round trip), plus whether Redis answered.
std::vector<prometheus::MetricFamily> queue_figure_families(
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
    std::vector<prometheus::MetricFamily> out;
    out.push_back(FamilyBuilder("mq_worker_queue_figures_up",
                                "1 when the queue figures of the worker's subscriptions could be "
                                "read from Redis.",
                                MetricType::Gauge)
                      .add({}, up ? 1 : 0)
                      .take());
    out.push_back(mq::metrics::backend_up({{"redis", up}}));
    std::vector<mq::metrics::SubscriptionRow> rows;
    for (const auto& r : runners) {
        const auto& o = r->options();
        for (const auto& f : figures) {
            if (f.tenant != o.queue.tenant || f.name != o.queue.name) continue;
            if (const auto* s = f.subscription(mq::consumer_group(o.subscription)))
                rows.push_back({&f, s, o.subscription.name});
        }
    }
    for (auto& f : mq::metrics::subscription_families(rows)) out.push_back(std::move(f));
    return out;
}

}  // namespace

std::vector<prometheus::MetricFamily> runner_families(
    const std::vector<std::shared_ptr<mq::SubscriptionRunner>>& runners,
    mq::redis::Connection* redis) {
    FamilyBuilder deliveries("mq_worker_deliveries_total", "Delivery attempts by outcome.",
                             MetricType::Counter);
    FamilyBuilder reclaimed("mq_worker_reclaimed_total",
                            "Entries taken back after a backoff or a visibility timeout.",
                            MetricType::Counter);
    FamilyBuilder moved("mq_worker_delayed_moved_total",
                        "Delayed entries moved into the stream by this worker.",
                        MetricType::Counter);
    FamilyBuilder in_flight("mq_worker_in_flight", "Deliveries running now.", MetricType::Gauge);
    FamilyBuilder paused("mq_worker_paused", "1 when the subscription is paused.",
                         MetricType::Gauge);
    FamilyBuilder errors("mq_worker_backend_errors_total", "Redis failures seen (each retried).",
                         MetricType::Counter);
    FamilyBuilder durations("mq_worker_handler_duration_seconds",
                            "Time spent in the handler per delivery.", MetricType::Histogram);
    for (const auto& r : runners) {
        const auto& m = *r->metrics();
        const auto labels = runner_labels(*r);
        const std::pair<const char*, std::uint64_t> outcomes[] = {
            {"acked", m.acked},
            {"failed", m.failed},
            {"dead_lettered", m.dead_lettered},
            {"dropped", m.dropped},
            {"filtered", m.filtered}};
        for (auto [name, v] : outcomes) {
            auto l = labels;
            l.emplace_back("outcome", name);
            deliveries.add(std::move(l), static_cast<double>(v));
        }
        reclaimed.add(labels, static_cast<double>(m.reclaimed));
        moved.add(labels, static_cast<double>(m.moved_delayed));
        in_flight.add(labels, static_cast<double>(m.in_flight));
        paused.add(labels, r->paused() ? 1 : 0);
        errors.add(labels, static_cast<double>(m.backend_errors));
        durations.add(labels, m.duration.Collect().histogram);
    }
    std::vector<prometheus::MetricFamily> out;
    for (auto* b : {&deliveries, &reclaimed, &moved, &in_flight, &paused, &errors, &durations})
        out.push_back(b->take());
    if (!runners.empty())
        for (auto& f : queue_figure_families(runners, redis)) out.push_back(std::move(f));
    return out;
}

prometheus::MetricFamily skipped_family(const std::vector<mq::SkippedSubscription>& skipped) {
    FamilyBuilder b("mq_worker_subscriptions_skipped",
                    "Subscriptions of the database not run here, by reason (docs/security.md).",
                    MetricType::Gauge);
    for (const char* reason : {"api_origin", "operator_handlers_not_allowed", "invalid_handler"})
        b.add({{"reason", reason}},
              static_cast<double>(std::count_if(skipped.begin(), skipped.end(), [&](const auto& s) {
                  return s.reason == reason;
              })));
    return b.take();
}

struct MetricsServer::Impl {
    Runners runners;
    Skipped skipped;
    Readiness readiness;
    asio::io_context ioc{1};
    tcp::acceptor acceptor{ioc};
    std::thread thread;

    std::unique_ptr<mq::redis::Connection>
        redis;  // for queue figures; used by the server thread only

    mq::metrics::Exposition exposition;

    Impl(Runners r, Skipped s, Readiness ready, Extra more)
        : runners(std::move(r)), skipped(std::move(s)), readiness(std::move(ready)) {
        if (more) exposition.add_collector(std::move(more));
        exposition.add_collector([this] {
            auto now = runners();
            auto families = runner_families(now, queue_figures_connection(now));
            if (skipped) families.push_back(skipped_family(skipped()));
            return families;
        });
    }

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
                    res->set(http::field::content_type, std::string(mq::metrics::kContentType));
                    res->body() = exposition.text();
                } else if (req->method() == http::verb::get && req->target() == "/healthz") {
                    bool ok = true;
                    for (const auto& r : runners()) ok = ok && r->healthy();
                    res->result(ok ? http::status::ok : http::status::service_unavailable);
                    res->set(http::field::content_type, "application/json");
                    res->body() = ok ? R"({"status":"ok"})"
                                     : R"({"status":"degraded","reason":"Redis unreachable"})";
                } else if (auto health = req->method() == http::verb::get
                                             ? health_answer(std::string_view(req->target().data(),
                                                                              req->target().size()),
                                                             readiness)
                                             : std::nullopt) {
                    res->result(static_cast<http::status>(health->status));
                    res->set(http::field::content_type, "application/json");
                    res->body() = std::move(health->body);
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

MetricsServer::MetricsServer(const std::string& address, int port, Runners runners, Skipped skipped,
                             Readiness readiness, Extra extra)
    : impl_(std::make_unique<Impl>(std::move(runners), std::move(skipped), std::move(readiness),
                                   std::move(extra))) {
    tcp::endpoint ep(asio::ip::make_address(address), static_cast<unsigned short>(port));
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen();
    impl_->accept();
    impl_->thread = std::thread([this] { impl_->ioc.run(); });
    spdlog::info("metrics on http://{}:{}/metrics",
                 ep.address().is_v6() ? "[" + address + "]" : address, port);
}

MetricsServer::~MetricsServer() {
    impl_->ioc.stop();
    impl_->thread.join();
}

}  // namespace mqworker
