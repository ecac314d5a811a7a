// Internal routes for the platform's own services, authenticated by X-Service-Token:
// POST /internal/mq/{user-events,user-notifications,audit-logs,notifications} publish to
// well-known queues (names configurable, created on first use in the given tenant);
// GET audit-queue-status, notification-queue, metrics, health-detailed.

#include "mq/audit/audit_log.hpp"
#include "mq/publish/envelope.hpp"
#include "mq/queue/catalog.hpp"
#include "routes.hpp"

namespace mqapi {

namespace {

mq::EnvelopeParser& parser() {
    thread_local mq::EnvelopeParser p;
    return p;
}

// The body's "tenant", or the seeds' "tenantId" (a service token acts for any tenant, so
// here it names the target tenant rather than being checked against the caller's).
std::string required_tenant(const std::map<std::string, std::string>& fields,
                            const std::optional<std::string>& tenant_id) {
    auto it = fields.find("tenant");
    if (it == fields.end() || it->second.empty()) {
        if (tenant_id && !tenant_id->empty()) return *tenant_id;
        throw mq::ValidationError("missing \"tenant\"", {{"field", "tenant"}});
    }
    if (tenant_id && *tenant_id != it->second)
        throw mq::ValidationError("\"tenant\" and \"tenantId\" differ", {{"field", "tenantId"}});
    return it->second;
}

// The well-known queue, created with defaults when the tenant has none yet.
std::shared_ptr<const mq::Queue> well_known_queue(App& app, const std::string& tenant,
                                                  const std::string& name) {
    if (auto q = app.cache().queue(tenant, name)) return q;
    auto db = app.pg().acquire();
    mq::Catalog catalog(*db);
    catalog.require_tenant(tenant);
    if (!catalog.find_queue(tenant, name)) {
        mq::QueueSpec spec;
        spec.name = name;
        spec.description = "well-known queue of the internal " + name + " route";
        spec.record_messages = true;  // internal traffic is recorded by default
        try {
            catalog.create_queue(tenant, spec, app.config());
        } catch (const mq::Error& e) {
            if (e.code() != mq::ErrorCode::kConflict) throw;  // created by a concurrent request
        }
    }
    app.cache().reload_tenant(tenant);
    return app.queue(tenant, name);
}

Response queue_status(App& app, const Request& req, const std::string& kind) {
    auto it = req.query.find("tenant");
    if (it == req.query.end() || it->second.empty())
        throw mq::ValidationError("missing query parameter \"tenant\"", {{"field", "tenant"}});
    const auto& name = app.options().internal_queues.at(kind);
    auto q = app.queue(it->second, name);
    auto redis = app.redis().acquire();
    auto j = to_json(queue_totals(app, *redis, *q));
    j["queue"] = q->name;
    j["tenant"] = q->tenant;
    return json_response(200, j);
}

}  // namespace

void add_internal_routes(Router& router, App& app) {
    for (const char* kind : {"user-events", "user-notifications", "audit-logs", "notifications"}) {
        std::string path = std::string("/internal/mq/") + kind;
        router.add_async(
            http::verb::post, path, Auth::kService,
            [&app, kind = std::string(kind)](Request& req, Reply reply) {
                auto body = parser().parse_body(req.body(), {"tenant"}, false);
                auto tenant = required_tenant(body.extras, body.messages.front().claimed_tenant);
                mq::apply_trace_context(body.messages.front(), req.header("traceparent"),
                                        req.header("tracestate"));
                if (auto h = req.header("Idempotency-Key");
                    !h.empty() && body.messages.front().idempotency_key.empty())
                    body.messages.front().idempotency_key = std::string(h);
                auto name = app.options().internal_queues.at(kind);
                auto go = [&app, tenant, name, messages = std::move(body.messages),
                           id = req.request_id, reply]() mutable {
                    // The queue this may create is the platform's doing (docs/audit.md).
                    mq::audit::ActingAs acting({"service", "", "api", id});
                    try {
                        auto q = well_known_queue(app, tenant, name);
                        // The publish use case like every route, but platform traffic
                        // (audit logs, notifications) is not charged to the tenant's quota.
                        publish_to(app, q, std::move(messages), false, id, reply, {},
                                   /*charge_quota=*/false);
                    } catch (const mq::Error& e) {
                        reply(error_response(client_error(e, id)));
                    } catch (const std::exception& e) {
                        reply(error_response(
                            client_error(mq::Error(mq::ErrorCode::kInternal, e.what()), id)));
                    }
                };
                if (app.cache().queue(tenant, name)) return go();
                app.server()->post_blocking(std::move(go));  // may create the queue
            },
            static_cast<std::size_t>(app.config().max_message_size));
    }
    router.add(http::verb::get, "/internal/mq/audit-queue-status", Auth::kService,
               [&app](Request& req) { return queue_status(app, req, "audit-logs"); });
    router.add(http::verb::get, "/internal/mq/notification-queue", Auth::kService,
               [&app](Request& req) { return queue_status(app, req, "notifications"); });
    router.add(http::verb::get, "/internal/mq/metrics", Auth::kService, [&app](Request&) {
        std::vector<std::string> tenants;
        for (const auto& q : app.cache().all_queues()) tenants.push_back(q->tenant);
        std::sort(tenants.begin(), tenants.end());
        tenants.erase(std::unique(tenants.begin(), tenants.end()), tenants.end());
        return json_response(200, metrics_json(app, tenants));
    });
    router.add(http::verb::get, "/internal/mq/health-detailed", Auth::kService, [&app](Request&) {
        auto [ok, j] = health_json(app, true);
        return json_response(ok ? 200 : 503, j);
    });
}

}  // namespace mqapi
