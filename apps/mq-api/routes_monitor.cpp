// Monitoring: GET /api/v1/mq/metrics, /metrics/topics, /metrics/consumers, /health,
// /status, /openapi.json, Prometheus text at GET /metrics, and the probes GET /livez and
// GET /readyz, and the seeds' probes GET /health, /health/ping, /health/status.

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>

#include "mq/config/schemas.hpp"
#include "mq/core/codec.hpp"
#include "mq/core/time.hpp"
#include "mq/core/version.hpp"
#include "mq/queue/catalog.hpp"
#include "mq/queue/inspector.hpp"
#include "mq/redis/reachability.hpp"
#include "mq/redis/server_version.hpp"
#include "routes.hpp"

namespace mqapi {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::int64_t thread_count() { return mq::metrics::read_process_figures().threads.value_or(0); }

std::vector<std::string> tenants_in_scope(App& app, const Request& req) {
    auto scope = req.query.count("scope") ? req.query.at("scope") : "";
    if (scope == "all") {
        mq::authorize(*req.principal, mq::Action::kMonitorAll);
        std::vector<std::string> all;
        for (const auto& q : app.cache().all_queues())
            if (all.empty() || all.back() != q->tenant) all.push_back(q->tenant);
        std::sort(all.begin(), all.end());
        all.erase(std::unique(all.begin(), all.end()), all.end());
        return all;
    }
    if (!scope.empty() && scope != "tenant")
        throw mq::ValidationError("scope must be \"tenant\" or \"all\"", {{"field", "scope"}});
    mq::authorize(*req.principal, mq::Action::kMonitor);
    return {req.tenant()};
}

// Rates between two samples at least a few seconds apart (or since start).
struct RateSample {
    Clock::time_point at;
    std::uint64_t published = 0, processed = 0, errors = 0;
};

// GET /metrics: the scrape token (METRICS_TOKEN) or an API token of role admin. Nobody
// else: the families name every tenant and queue.
void authorize_scrape(App& app, const Request& req) {
    auto authorization = req.header("Authorization");
    constexpr std::string_view kScheme = "bearer ";
    std::string_view token;
    if (authorization.size() > kScheme.size()) {
        bool bearer = true;
        for (std::size_t i = 0; i < kScheme.size(); ++i)
            bearer =
                bearer && std::tolower(static_cast<unsigned char>(authorization[i])) == kScheme[i];
        if (bearer) token = authorization.substr(kScheme.size());
        while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
        while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    }
    if (token.empty())
        throw mq::Error(mq::ErrorCode::kUnauthorized,
                        "GET /metrics needs Authorization: Bearer <METRICS_TOKEN or an admin "
                        "API token>");
    const auto& scrape = app.options().metrics_token;
    if (!scrape.empty() && mq::codec::constant_time_equal(token, scrape)) return;
    auto principal = app.authenticator().authenticate(token);
    if (!principal)
        throw mq::Error(mq::ErrorCode::kUnauthorized, "invalid, expired or revoked token");
    if (principal->role != mq::Role::kAdmin)
        throw mq::Error(mq::ErrorCode::kForbidden,
                        "GET /metrics lists every tenant's queues: it needs METRICS_TOKEN or an "
                        "API token of role admin",
                        {{"role", std::string(mq::role_name(principal->role))}});
}

// The queue figures behind /metrics, measured in the background (mq::QueueFiguresCache),
// started by the first authorised scrape.
class ScrapeFigures {
  public:
    explicit ScrapeFigures(App& app) : app_(app) {}
    std::shared_ptr<const mq::QueueFiguresCache::Snapshot> latest() {
        {
            std::lock_guard lock(mu_);
            if (!cache_)
                cache_ = std::make_unique<mq::QueueFiguresCache>(
                    app_.redis_endpoint(), app_.keys(),
                    [&app = app_] { return app.cache().all_queues(); },
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        app_.options().metrics_refresh));
        }
        return cache_->latest();
    }

  private:
    App& app_;
    std::mutex mu_;
    std::unique_ptr<mq::QueueFiguresCache> cache_;
};

// The families of mq-api's /metrics besides its registry's instruments, mq_build_info and
// process_* (mq::metrics::Exposition adds those).
std::vector<prometheus::MetricFamily> http_families(const Router& router) {
    using prometheus::MetricType;
    mq::metrics::FamilyBuilder requests("mq_http_requests_total",
                                        "HTTP requests answered, by route and status class.",
                                        MetricType::Counter);
    mq::metrics::FamilyBuilder durations("mq_http_request_duration_seconds",
                                         "Time from request header to response, by route.",
                                         MetricType::Histogram);
    static const char* classes[] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (const auto& r : router.routes()) {
        const std::string method(http::to_string(r->method));
        for (int c = 1; c <= 5; ++c)
            if (auto n = r->stats->by_class[c].load())
                requests.add({{"method", method}, {"route", r->pattern}, {"status", classes[c]}},
                             static_cast<double>(n));
        auto h = r->stats->duration.Collect().histogram;
        if (h.sample_count > 0) durations.add({{"method", method}, {"route", r->pattern}}, h);
    }
    std::vector<prometheus::MetricFamily> out;
    out.push_back(requests.take());
    out.push_back(durations.take());
    return out;
}

std::vector<prometheus::MetricFamily> app_families(App& app) {
    using mq::metrics::FamilyBuilder;
    using prometheus::MetricType;
    std::vector<prometheus::MetricFamily> out;
    FamilyBuilder messages("mq_messages_total",
                           "Messages by tenant and outcome (published, duplicate, rejected, "
                           "delivered, acked, nacked).",
                           MetricType::Counter);
    for (auto& [tenant, c] : app.all_counters()) {
        const std::pair<const char*, std::uint64_t> rows[] = {
            {"published", c->published.load()}, {"duplicate", c->duplicates.load()},
            {"rejected", c->rejected.load()},   {"delivered", c->delivered.load()},
            {"acked", c->acked.load()},         {"nacked", c->nacked.load()}};
        for (auto [outcome, n] : rows)
            messages.add({{"tenant", tenant}, {"outcome", outcome}}, static_cast<double>(n));
    }
    out.push_back(messages.take());
    if (const auto* m = app.maintenance()) {
        const mq::MaintenanceStats st = m->stats();
        auto one = [&](const char* name, const char* help, MetricType type, double v) {
            out.push_back(FamilyBuilder(name, help, type).add({}, v).take());
        };
        one("mq_maintenance_moved_total",
            "Delayed entries this instance's maintenance service moved into streams.",
            MetricType::Counter, static_cast<double>(st.moved));
        one("mq_maintenance_archived_total",
            "Dead letters this instance's maintenance service wrote to PostgreSQL.",
            MetricType::Counter, static_cast<double>(st.archived));
        one("mq_maintenance_task_errors_total", "Failed maintenance task calls.",
            MetricType::Counter, static_cast<double>(st.task_errors));
        one("mq_maintenance_leases_held",
            "Maintenance shards this instance works now (docs/maintenance.md).", MetricType::Gauge,
            static_cast<double>(st.leases_held));
        FamilyBuilder last("mq_maintenance_task_last_run_timestamp_seconds",
                           "When each maintenance task last finished a pass (0: never).",
                           MetricType::Gauge);
        for (const auto& task : st.tasks)
            last.add({{"task", task.name}}, static_cast<double>(task.last_run_ms) / 1000.0);
        out.push_back(last.take());
    }
    out.push_back(FamilyBuilder("mq_publish_round_trips_total",
                                "Redis round trips made by the publish pipeline.",
                                MetricType::Counter)
                      .add({}, static_cast<double>(app.pipeline().round_trips()))
                      .take());
    out.push_back(FamilyBuilder("mq_publish_jobs_total",
                                "Publish requests sent through the pipeline (jobs/round trips = "
                                "coalescing).",
                                MetricType::Counter)
                      .add({}, static_cast<double>(app.pipeline().jobs()))
                      .take());
    return out;
}

// Queue figures from the background snapshot, never a walk of Redis per scrape. Redis down:
// the queue families stay empty and the others still tell what this process saw.
std::vector<prometheus::MetricFamily> queue_figure_families(App& app, ScrapeFigures& figures) {
    using mq::metrics::FamilyBuilder;
    using prometheus::MetricType;
    auto snapshot = figures.latest();
    std::vector<prometheus::MetricFamily> out;
    out.push_back(FamilyBuilder("mq_queue_figures_up",
                                "1 when the last background measurement of the queue figures "
                                "succeeded.",
                                MetricType::Gauge)
                      .add({}, snapshot->up ? 1 : 0)
                      .take());
    out.push_back(FamilyBuilder("mq_queue_figures_timestamp_seconds",
                                "When the queue figures were measured (METRICS_REFRESH_S apart at "
                                "most).",
                                MetricType::Gauge)
                      .add({}, static_cast<double>(snapshot->measured_ms) / 1000.0)
                      .take());
    // Redis: the figures' last refresh; PostgreSQL: the config cache's LISTEN connection (it
    // reconnects on its own, so a scrape costs no PostgreSQL round trip).
    out.push_back(
        mq::metrics::backend_up({{"redis", snapshot->up}, {"postgres", app.cache().listening()}}));
    for (auto& f : mq::metrics::queue_families(snapshot->figures)) out.push_back(std::move(f));
    for (auto& f :
         mq::metrics::subscription_families(mq::metrics::every_subscription(snapshot->figures)))
        out.push_back(std::move(f));
    return out;
}

}  // namespace

namespace {

std::int64_t subscription_count(App& app, const mq::Queue& q) {
    std::int64_t n = 0;
    for (const auto& s : app.cache().subscriptions(q.tenant))
        if (s->queue == q.name && !mq::is_cross_tenant(*s)) ++n;
    return n;
}

nlohmann::json optional_json(std::optional<std::int64_t> v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

QueueTotals queue_totals(App& app, mq::redis::Connection& redis, const mq::Queue& q) {
    return {mq::QueueInspector(redis, app.keys()).inspect(q), subscription_count(app, q)};
}

std::vector<QueueTotals> queue_totals(App& app, mq::redis::Connection& redis,
                                      const std::vector<std::shared_ptr<const mq::Queue>>& queues,
                                      mq::InspectOptions options) {
    std::vector<const mq::Queue*> list;
    for (const auto& q : queues) list.push_back(q.get());
    std::vector<QueueTotals> out;
    for (auto& f : mq::QueueInspector(redis, app.keys()).inspect(list, options))
        out.push_back({std::move(f), 0});
    for (std::size_t i = 0; i < queues.size(); ++i)
        out[i].subscriptions = subscription_count(app, *queues[i]);
    return out;
}

nlohmann::json to_json(const QueueTotals& t) {
    const auto& f = t.figures;
    return {{"messages", f.length},
            {"delayed", f.delayed},
            {"pending", f.pending},
            {"lag", f.lag},
            {"dead_letters", f.dead_letters},
            {"subscriptions", t.subscriptions},
            {"backlog", f.backlog},
            {"oldest_age_ms", optional_json(f.age_ms(f.oldest_ms))},
            {"oldest_pending_age_ms", optional_json(f.age_ms(f.oldest_pending_ms))}};
}

nlohmann::json metrics_json(App& app, const std::vector<std::string>& tenants) {
    static std::mutex sample_mutex;
    static std::map<std::string, std::pair<RateSample, RateSample>> samples;  // key: tenant set

    auto redis = app.redis().acquire();
    mq::QueueFigures sum;
    std::optional<std::int64_t> oldest_age;
    std::int64_t queues = 0, streams = 0;
    std::uint64_t published = 0, processed = 0, errors = 0, delivered = 0;
    for (const auto& tenant : tenants) {
        auto list = app.cache().queues(tenant);
        for (const auto& t : queue_totals(app, *redis, list)) {
            const auto& f = t.figures;
            ++queues;
            streams += static_cast<std::int64_t>(f.partitions.size());
            sum.length += f.length;
            sum.delayed += f.delayed;
            sum.pending += f.pending;
            sum.lag += f.lag;
            sum.backlog += f.backlog;
            sum.dead_letters += f.dead_letters;
            sum.groups += f.groups;
            sum.consumers += f.consumers;
            if (auto a = f.age_ms(f.oldest_ms)) oldest_age = std::max(oldest_age.value_or(0), *a);
        }
        auto& c = app.counters(tenant);
        published += c.published.load();
        processed += c.acked.load();
        delivered += c.delivered.load();
        errors += c.errors.load() + c.nacked.load();
    }
    RateSample now{Clock::now(), published, processed, errors};
    RateSample base;
    {
        std::string key;
        for (const auto& t : tenants) key += t + "\n";
        std::lock_guard lock(sample_mutex);
        auto it = samples.find(key);
        if (it == samples.end()) {
            RateSample start{app.started(), 0, 0, 0};
            it = samples.emplace(key, std::make_pair(start, now)).first;
        } else if (now.at - it->second.second.at > std::chrono::seconds(5)) {
            it->second.first = it->second.second;
            it->second.second = now;
        }
        base = it->second.first;
    }
    double dt = std::max(0.001, std::chrono::duration<double>(now.at - base.at).count());
    auto rate = [&](std::uint64_t a, std::uint64_t b) {
        return static_cast<double>(a - std::min(a, b)) / dt;
    };
    const auto h = app.pull_latency().read();
    double avg_ms =
        h.sample_count ? h.sample_sum * 1000.0 / static_cast<double>(h.sample_count) : 0;
    nlohmann::json j = {
        {"tenant", tenants.size() == 1 ? nlohmann::json(tenants.front()) : nlohmann::json(nullptr)},
        {"tenants", tenants.size()},
        {"queues", queues},
        {"streams", streams},
        {"consumer_groups", sum.groups},
        {"messages", sum.length},
        {"pending", sum.pending},
        {"lag", sum.lag},
        {"backlog", sum.backlog},
        {"oldest_age_ms", optional_json(oldest_age)},
        {"delayed", sum.delayed},
        {"dead_letters", sum.dead_letters},
        {"active_consumers", sum.consumers},
        {"published_total", published},
        {"delivered_total", delivered},
        {"processed_total", processed},
        {"errors_total", errors},
        {"rates",
         {{"publish_per_s", rate(published, base.published)},
          {"process_per_s", rate(processed, base.processed)},
          {"error_per_s", rate(errors, base.errors)}}},
        {"latency_ms",
         {{"avg", avg_ms},
          {"p95", mq::metrics::quantile(h, 0.95) * 1000},
          {"p99", mq::metrics::quantile(h, 0.99) * 1000}}}};
    return j;
}

std::pair<bool, nlohmann::json> health_json(App& app, bool detailed) {
    nlohmann::json checks = nlohmann::json::object();
    bool healthy = true;
    bool degraded = false;
    auto run = [&](const char* name, bool critical, const std::function<nlohmann::json()>& check) {
        auto t0 = Clock::now();
        nlohmann::json c;
        try {
            c = check();
            if (!c.contains("status")) c["status"] = "ok";
        } catch (const std::exception& e) {
            // The reason goes to the log only: /health needs no token.
            spdlog::warn("health check {} failed: {}", name, mq::printable(e.what()));
            c = {{"status", "down"}, {"error", "unavailable"}};
        }
        c["latency_ms"] = ms_since(t0);
        if (c["status"] != "ok") {
            if (critical)
                healthy = false;
            else
                degraded = true;
        }
        checks[name] = std::move(c);
    };
    run("redis", true, [&] {
        auto redis = app.redis().acquire();
        redis->command({"PING"});
        return nlohmann::json::object();
    });
    run("redis_stream", true, [&] {
        // A read of the stream commands on a key nobody writes (XLEN of a missing key is 0):
        // a probe that anyone may call as often as they like must not write (DESIGN §7).
        auto redis = app.redis().acquire();
        auto n = redis->command({"XLEN", app.keys().prefix() + "health:probe"}).as_integer();
        if (n < 0) return nlohmann::json{{"status", "down"}, {"error", "unexpected reply"}};
        return nlohmann::json::object();
    });
    std::size_t tenants = 0;
    // Not critical: publishes run from the config cache while PostgreSQL is down, so the
    // instance stays in service ("degraded", 200) as /readyz says.
    run("postgres", false, [&] {
        auto db = app.pg().acquire();
        if (detailed)
            tenants = mq::Catalog(*db).list_tenants().size();
        else
            db->transact([](pqxx::work& tx) { tx.exec("SELECT 1"); });
        return nlohmann::json::object();
    });
    run("config_cache", false, [&] {
        bool listening = app.cache().listening();
        return nlohmann::json{{"status", listening ? "ok" : "degraded"}, {"listening", listening}};
    });
    // Counts over every tenant: the service-token route only (/internal/mq/health-detailed);
    // the unauthenticated probe shows no figure of any tenant (docs/security.md).
    std::size_t queue_count = 0;
    if (detailed) {
        auto all_queues = app.cache().all_queues();
        queue_count = all_queues.size();
        run("queues", false, [&] { return nlohmann::json{{"count", all_queues.size()}}; });
        run("consumers", false, [&] {
            std::size_t subs = 0, paused = 0;
            std::vector<std::string> seen;
            for (const auto& q : all_queues) {
                if (std::find(seen.begin(), seen.end(), q->tenant) != seen.end()) continue;
                seen.push_back(q->tenant);
                for (const auto& s : app.cache().subscriptions(q->tenant)) {
                    ++subs;
                    paused += s->status == "paused";
                }
            }
            return nlohmann::json{{"subscriptions", subs}, {"paused", paused}};
        });
    }
    run("memory", false, [&] {
        auto rss = resident_memory_bytes();
        bool ok = rss < app.options().memory_warn_bytes;
        nlohmann::json m = {{"status", ok ? "ok" : "degraded"}, {"rss_bytes", rss}};
        if (detailed) m["limit_bytes"] = app.options().memory_warn_bytes;
        return m;
    });
    nlohmann::json j = {{"status", !healthy   ? "down"
                                   : degraded ? "degraded"
                                              : "ok"},
                        {"checks", std::move(checks)}};
    if (detailed) {
        j["tenants"] = tenants;
        j["queues"] = queue_count;
        j["uptime_s"] =
            std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - app.started()).count();
        j["publish_pipeline"] = {{"jobs", app.pipeline().jobs()},
                                 {"round_trips", app.pipeline().round_trips()}};
    }
    return {healthy, j};
}

namespace {

// The seeds' health answer (docs/seed-compat.md): {status: healthy|unhealthy, timestamp,
// service, version, uptime (s), degraded, checks: {name: {status, latency}}}. Built from
// health_json, so the rule is the one of /api/v1/mq/health: Redis down is unhealthy (503);
// PostgreSQL (or another non-critical check) down alone keeps the instance healthy (200)
// with that check "unhealthy" and degraded true. Only status and latency of each check are
// shown: no counts, no tenant data, no error text (the route needs no token).
Response seed_health(App& app, std::initializer_list<const char*> shown) {
    auto [ok, full] = health_json(app, false);
    nlohmann::json checks = nlohmann::json::object();
    for (const char* name : shown) {
        if (!full["checks"].contains(name)) continue;
        const auto& c = full["checks"][name];
        checks[name] = {{"status", c.value("status", "") == "ok" ? "healthy" : "unhealthy"},
                        {"latency", c.value("latency_ms", 0.0)}};
    }
    nlohmann::json j = {
        {"status", ok ? "healthy" : "unhealthy"},
        {"timestamp", mq::format_rfc3339(mq::now_ms())},
        {"service", "mq"},
        {"version", mq::kVersion},
        {"uptime",
         std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - app.started()).count()},
        {"degraded", ok && full.value("status", "") == "degraded"},
        {"checks", std::move(checks)}};
    return json_response(ok ? 200 : 503, j);
}

}  // namespace

void add_monitor_routes(Router& router, App& app) {
    router.add(http::verb::get, "/api/v1/mq/metrics", Auth::kBearer, [&app](Request& req) {
        return json_response(200, metrics_json(app, tenants_in_scope(app, req)));
    });
    router.add(http::verb::get, "/api/v1/mq/metrics/topics", Auth::kBearer, [&app](Request& req) {
        auto tenants = tenants_in_scope(app, req);
        auto redis = app.redis().acquire();
        nlohmann::json list = nlohmann::json::array();
        for (const auto& tenant : tenants) {
            auto queues = app.cache().queues(tenant);
            auto totals = queue_totals(app, *redis, queues);
            for (std::size_t i = 0; i < queues.size(); ++i) {
                auto j = to_json(totals[i]);
                j["name"] = queues[i]->name;
                j["tenant"] = queues[i]->tenant;
                j["partitions"] = queues[i]->partition_count;
                list.push_back(std::move(j));
            }
        }
        return json_response(200, {{"topics", std::move(list)}});
    });
    router.add(
        http::verb::get, "/api/v1/mq/metrics/consumers", Auth::kBearer, [&app](Request& req) {
            auto tenants = tenants_in_scope(app, req);
            auto redis = app.redis().acquire();
            nlohmann::json list = nlohmann::json::array();
            std::map<std::string, mq::QueueFigures> inspected;
            for (const auto& tenant : tenants)
                for (const auto& s : app.cache().subscriptions(tenant)) {
                    // A subscription on another tenant's queue counts only while it may be read.
                    auto q = app.cache().queue(mq::queue_owner(*s), s->queue);
                    if (!q || (q->tenant != tenant && !q->is_public)) continue;
                    // Each queue is inspected once per request, however many subscriptions read it.
                    const std::string qkey = q->tenant + "/" + q->name;
                    auto it = inspected.find(qkey);
                    if (it == inspected.end())
                        it =
                            inspected
                                .emplace(qkey,
                                         mq::QueueInspector(*redis, app.keys()).inspect(*q, {true}))
                                .first;
                    const mq::QueueFigures& f = it->second;
                    const mq::SubscriptionFigures none;
                    const mq::SubscriptionFigures* fig = f.subscription(mq::consumer_group(*s));
                    if (!fig) fig = &none;
                    nlohmann::json cl = nlohmann::json::array();
                    for (const auto& c : fig->consumer_list)
                        cl.push_back(
                            {{"name", c.name}, {"pending", c.pending}, {"idle_ms", c.idle_ms}});
                    list.push_back(
                        {{"queue", s->queue},
                         {"subscription", s->name},
                         {"id", s->id},
                         {"type", s->type},
                         {"status", s->status},
                         {"pending", fig->pending},
                         {"lag", fig->lag},
                         {"backlog", fig->backlog},
                         {"oldest_pending_age_ms", optional_json(f.age_ms(fig->oldest_pending_ms))},
                         {"consumers", std::move(cl)}});
                }
            return json_response(200, {{"consumers", std::move(list)}});
        });
    // Probes for orchestrators and load balancers, no token (docs/operations.md, "Signals
    // and health"). /livez: the process answers HTTP (on the I/O thread, touching nothing).
    // /readyz: it can serve publishes: Redis answers a PING (measured at most once a
    // second however many probes come) and the server is not draining. PostgreSQL is not
    // asked: without it the config cache still serves publishes.
    router.add_async(http::verb::get, "/livez", Auth::kNone, [](Request&, Reply reply) {
        reply(json_response(200, {{"status", "alive"}}));
    });
    auto redis_reachable = std::make_shared<mq::redis::Reachability>(app.redis_endpoint());
    router.add(http::verb::get, "/readyz", Auth::kNone, [&app, redis_reachable](Request&) {
        const char* reason = nullptr;
        if (app.server() && app.server()->draining())
            reason = "draining";
        else if (!redis_reachable->reachable())
            reason = "redis_unreachable";
        if (reason) return json_response(503, {{"status", "not_ready"}, {"reason", reason}});
        return json_response(200, {{"status", "ready"}});
    });
    // The seeds' probes at the root, no token, like /livez. /health/ping touches nothing.
    router.add(http::verb::get, "/health", Auth::kNone, [&app](Request&) {
        return seed_health(app, {"redis", "postgres"});
    });
    router.add(http::verb::get, "/health/status", Auth::kNone, [&app](Request&) {
        return seed_health(app, {"redis", "redis_stream", "postgres", "config_cache", "memory"});
    });
    router.add_async(http::verb::get, "/health/ping", Auth::kNone, [&app](Request&, Reply reply) {
        reply(json_response(200, {{"status", "healthy"},
                                  {"timestamp", mq::format_rfc3339(mq::now_ms())},
                                  {"service", "mq"},
                                  {"version", mq::kVersion},
                                  {"uptime", std::chrono::duration_cast<std::chrono::seconds>(
                                                 Clock::now() - app.started())
                                                 .count()}}));
    });
    router.add(http::verb::get, "/api/v1/mq/health", Auth::kNone, [&app](Request&) {
        auto [ok, j] = health_json(app, false);
        return json_response(ok ? 200 : 503, j);
    });
    router.add(http::verb::get, "/api/v1/mq/status", Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kMonitor);
        nlohmann::json redis_info;
        nlohmann::json totals = nullptr;  // the tenant's queues summed; null while Redis is down
        try {
            auto redis = app.redis().acquire();
            const auto facts = mq::redis::server_facts(*redis);  // every master of a cluster
            redis_info = {{"status", "ok"},
                          {"version", facts.version},
                          {"nodes", facts.nodes},
                          {"uptime_s", optional_json(facts.uptime_s)},
                          {"connected_clients", facts.connected_clients},
                          {"used_memory_bytes", facts.used_memory_bytes},
                          {"maxmemory_policy", facts.maxmemory_policy}};
            std::int64_t messages = 0, backlog = 0, pending = 0, lag = 0, delayed = 0, dead = 0;
            std::optional<std::int64_t> oldest_age;
            for (const auto& t : queue_totals(app, *redis, app.cache().queues(req.tenant()))) {
                const auto& f = t.figures;
                messages += f.length;
                backlog += f.backlog;
                pending += f.pending;
                lag += f.lag;
                delayed += f.delayed;
                dead += f.dead_letters;
                if (auto a = f.age_ms(f.oldest_ms))
                    oldest_age = std::max(oldest_age.value_or(0), *a);
            }
            totals = {{"messages", messages},
                      {"backlog", backlog},
                      {"pending", pending},
                      {"lag", lag},
                      {"delayed", delayed},
                      {"dead_letters", dead},
                      {"oldest_age_ms", optional_json(oldest_age)}};
        } catch (const mq::Error& e) {
            spdlog::warn("{} status: Redis: {}", req.request_id, mq::printable(e.what()));
            redis_info = {{"status", "down"}, {"error", "unavailable"}};
        }
        auto uptime =
            std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - app.started()).count();
        return json_response(200,
                             {{"version", mq::kVersion},
                              {"uptime_s", uptime},
                              {"started_at", mq::format_rfc3339(app.started_unix_ms())},
                              {"redis", redis_info},
                              {"queues", app.cache().queues(req.tenant()).size()},
                              {"totals", std::move(totals)},
                              {"subscriptions", app.cache().subscriptions(req.tenant()).size()},
                              {"process",
                               {{"rss_bytes", resident_memory_bytes()},
                                {"uptime_s", uptime},
                                {"threads", thread_count()},
                                {"pid", getpid()}}}});
    });
    router.add(http::verb::get, "/api/v1/mq/openapi.json", Auth::kNone, [](Request&) {
        Response r;
        r.body = std::string(mq::embedded_schema("openapi.json"));
        return r;
    });
    if (app.config().metrics_enabled) {
        auto figures = std::make_shared<ScrapeFigures>(app);
        app.metrics().add_collector([&router] { return http_families(router); });
        app.metrics().add_collector([&app] { return app_families(app); });
        app.metrics().add_collector(
            [&app, figures] { return queue_figure_families(app, *figures); });
        router.add(http::verb::get, "/metrics", Auth::kNone, [&app](Request& req) {
            authorize_scrape(app, req);
            Response r;
            r.content_type = std::string(mq::metrics::kContentType);
            r.body = app.metrics().text();
            return r;
        });
    }
}

}  // namespace mqapi
