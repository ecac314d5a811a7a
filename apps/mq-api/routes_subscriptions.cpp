// Subscriptions: POST/GET /api/v1/mq/subscriptions, GET/PUT/DELETE .../{id},
// POST .../{id}/pause and .../{id}/resume. A subscription is addressed by its id; one
// of another tenant answers 404 like a missing one. "queue_tenant" in a create body names
// another tenant's queue, visible only when it is public (docs/auth.md).
// Trust boundary (docs/security.md): a token never sets a handler that runs code or writes
// files on a worker (403 MQ_HANDLER_FORBIDDEN), and a webhook it sets must reach a public
// address (422 MQ_WEBHOOK_DESTINATION_FORBIDDEN) unless WEBHOOK_ALLOWED_CIDRS allows it.

#include <spdlog/spdlog.h>

#include "mq/consume/control.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/consume/subscription_lifecycle.hpp"
#include "mq/core/names.hpp"
#include "mq/queue/catalog.hpp"
#include "routes.hpp"

namespace mqapi {

namespace {

// The writer a token is: every handler set through the API is marked as such.
void mark_api_writer(mq::Subscription& s, const Request& req) {
    s.origin = mq::kOriginApi;
    s.created_by = "token:" + req.principal->token_id;
}

std::shared_ptr<const mq::Subscription> find_subscription(App& app, const Request& req) {
    const auto& id = req.param("id");
    if (auto s = app.cache().subscription(req.tenant(), id)) return s;
    // Not cached yet (created by another process a moment ago): ask PostgreSQL.
    auto db = app.pg().acquire();
    return std::make_shared<const mq::Subscription>(
        mq::SubscriptionCatalog(*db).get_by_id(req.tenant(), id));
}

Response set_status(App& app, Request& req, const std::string& status) {
    mq::authorize(*req.principal, mq::Action::kManageSubscriptions);
    auto s = find_subscription(app, req);
    auto db = app.pg().acquire();
    auto updated = mq::SubscriptionCatalog(*db).set_status(s->tenant, s->queue, s->name, status,
                                                           mq::queue_owner(*s));
    auto redis = app.redis().acquire();
    mq::tell_workers(
        *redis, app.keys(), status == "paused" ? "pause" : "resume", updated,
        status == "paused" ? "the subscription is paused" : "the subscription is resumed");
    app.cache().reload_tenant(req.tenant());
    return json_response(200, mq::to_json(updated));
}

}  // namespace

void add_subscription_routes(Router& router, App& app) {
    router.add(http::verb::post, "/api/v1/mq/subscriptions", Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kManageSubscriptions);
        auto body = without_claimed_tenant(parse_object_body(req.body()), *req.principal);
        for (const char* f : {"queue", "name"})
            if (!body.contains(f))
                throw mq::ValidationError(std::string("missing \"") + f + "\" field",
                                          {{"field", f}});
        auto s = mq::subscription_from_json(body);
        s.tenant = req.tenant();
        s.managed_by.clear();
        mark_api_writer(s, req);
        if (s.queue_tenant == s.tenant) s.queue_tenant.clear();
        if (!s.queue_tenant.empty()) mq::validate_name("queue_tenant", s.queue_tenant);
        // Another tenant's queue that is missing, being deleted or not public answers
        // exactly like a missing queue of the caller's own tenant (authorize_consume).
        auto q = app.cache().queue(mq::queue_owner(s), s.queue);
        if (!q) throw mq::queue_not_found(req.tenant(), s.queue);
        mq::authorize_consume(*req.principal, *q);
        mq::validate(s);
        mq::authorize_api_handler(s, nullptr, mq::DestinationPolicy(app.webhook_allowed_cidrs()));
        mq::validate_handler_for_type(s);
        auto db = app.pg().acquire();
        auto redis = app.redis().acquire();
        auto created = mq::create_subscription(*db, *redis, app.keys(), *q, s);
        app.cache().reload_tenant(req.tenant());
        // Running `mq-worker --from-db` processes start a webhook subscription at once. The
        // row and groups exist already: a lost announcement is only late (the workers' full
        // reconcile finds it), so it does not fail the request.
        if (created.subscription.type != "pull") {
            try {
                mq::announce(*redis, app.keys(), "changed", created.subscription.tenant,
                             created.subscription.queue, created.subscription.name,
                             mq::queue_owner(created.subscription));
            } catch (const std::exception& e) {
                spdlog::warn("subscription {}/{} created, but workers were not told: {}",
                             created.subscription.queue, created.subscription.name, e.what());
            }
        }
        return json_response(201, mq::to_json(created.subscription));
    });
    router.add(http::verb::get, "/api/v1/mq/subscriptions", Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kReadSubscriptions);
        std::string queue = req.query.count("queue") ? req.query.at("queue") : "";
        nlohmann::json list = nlohmann::json::array();
        std::string queue_tenant =
            req.query.count("queue_tenant") ? req.query.at("queue_tenant") : req.tenant();
        for (const auto& s : app.cache().subscriptions(req.tenant()))
            if (queue.empty() || (s->queue == queue && mq::queue_owner(*s) == queue_tenant))
                list.push_back(mq::to_json(*s));
        return json_response(200, {{"subscriptions", std::move(list)}});
    });
    router.add(http::verb::get, "/api/v1/mq/subscriptions/{id}", Auth::kBearer,
               [&app](Request& req) {
                   mq::authorize(*req.principal, mq::Action::kReadSubscriptions);
                   return json_response(200, mq::to_json(*find_subscription(app, req)));
               });
    router.add(
        http::verb::put, "/api/v1/mq/subscriptions/{id}", Auth::kBearer, [&app](Request& req) {
            mq::authorize(*req.principal, mq::Action::kManageSubscriptions);
            auto current = find_subscription(app, req);
            auto body = without_claimed_tenant(parse_object_body(req.body()), *req.principal);
            if (body.empty())
                throw mq::ValidationError("nothing to change: the body names no setting");
            for (const char* f : {"queue", "queue_tenant", "name", "start_from"})
                if (body.contains(f) && body[f] != mq::to_json(*current)[f])
                    throw mq::ValidationError(
                        std::string("\"") + f + "\" cannot be changed; create a new subscription",
                        {{"field", f}});
            auto s = mq::subscription_from_json(body, *current);
            mark_api_writer(s, req);
            mq::validate(s);
            mq::authorize_api_handler(s, current.get(),
                                      mq::DestinationPolicy(app.webhook_allowed_cidrs()));
            mq::validate_handler_for_type(s);
            auto db = app.pg().acquire();
            auto updated = mq::SubscriptionCatalog(*db).update(s);
            auto redis = app.redis().acquire();
            std::string event = "changed";
            if (updated.status != current->status)
                event = updated.status == "paused" ? "pause" : "resume";
            mq::tell_workers(*redis, app.keys(), event, updated, "the subscription is updated");
            app.cache().reload_tenant(req.tenant());
            return json_response(200, mq::to_json(updated));
        });
    router.add(
        http::verb::delete_, "/api/v1/mq/subscriptions/{id}", Auth::kBearer, [&app](Request& req) {
            mq::authorize(*req.principal, mq::Action::kManageSubscriptions);
            auto s = find_subscription(app, req);
            auto db = app.pg().acquire();
            auto redis = app.redis().acquire();
            mq::delete_subscription(*db, *redis, app.keys(), *s);
            mq::tell_workers(*redis, app.keys(), "deleted", *s, "the subscription is deleted");
            app.cache().reload_tenant(req.tenant());
            Response r;
            r.status = 204;
            return r;
        });
    router.add(http::verb::post, "/api/v1/mq/subscriptions/{id}/pause", Auth::kBearer,
               [&app](Request& req) { return set_status(app, req, "paused"); });
    router.add(http::verb::post, "/api/v1/mq/subscriptions/{id}/resume", Auth::kBearer,
               [&app](Request& req) { return set_status(app, req, "active"); });
}

}  // namespace mqapi
