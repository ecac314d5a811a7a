// Queues: POST/GET /api/v1/mq/queues, GET/PUT/DELETE /api/v1/mq/queues/{name},
// POST /api/v1/mq/queues/{name}/purge. Writes go to PostgreSQL (and Redis), then the
// tenant's cache entry is reloaded so the caller reads its own write at once.

#include <spdlog/spdlog.h>

#include <set>

#include "mq/consume/consumer.hpp"
#include "mq/consume/queue_update.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/queue/catalog.hpp"
#include "mq/queue/lifecycle.hpp"
#include "mq/queue/streams.hpp"
#include "routes.hpp"

namespace mqapi {

namespace {

nlohmann::json queue_with_stats(App& app, const mq::Queue& q) {
    auto redis = app.redis().acquire();
    auto j = mq::to_json(q);
    j["stats"] = to_json(queue_totals(app, *redis, q));
    return j;
}

}  // namespace

void add_queue_routes(Router& router, App& app) {
    router.add(http::verb::post, "/api/v1/mq/queues", Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kManageQueues);
        auto spec = mq::queue_spec_from_json(parse_object_body(req.body()));
        auto db = app.pg().acquire();
        auto q = mq::Catalog(*db).create_queue(req.tenant(), spec, app.config());
        app.cache().reload_tenant(req.tenant());
        return json_response(201, mq::to_json(q));
    });
    router.add(http::verb::get, "/api/v1/mq/queues", Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kReadQueues);
        nlohmann::json list = nlohmann::json::array();
        for (const auto& q : app.cache().queues(req.tenant())) list.push_back(mq::to_json(*q));
        return json_response(200, {{"queues", std::move(list)}});
    });
    router.add(http::verb::get, "/api/v1/mq/queues/{name}", Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kReadQueues);
        auto q = app.queue(req.tenant(), req.param("name"));
        return json_response(200, queue_with_stats(app, *q));
    });
    router.add(http::verb::put, "/api/v1/mq/queues/{name}", Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kManageQueues);
        auto changes = mq::queue_changes_from_json(parse_object_body(req.body()));
        auto db = app.pg().acquire();
        std::optional<decltype(app.redis().acquire())> redis;  // only when partitions grow
        auto connection = [&]() -> mq::redis::Connection& {
            if (!redis) redis.emplace(app.redis().acquire());
            return **redis;
        };
        auto updated =
            mq::update_queue(*db, connection, app.keys(), req.tenant(), req.param("name"), changes);
        if (!updated.workers_told)
            spdlog::warn("queue {}/{} updated, but workers were not told: {}", req.tenant(),
                         updated.queue.name, updated.announce_error);
        app.cache().reload_tenant(req.tenant());
        return json_response(200, mq::to_json(updated.queue));
    });
    router.add(
        http::verb::delete_, "/api/v1/mq/queues/{name}", Auth::kBearer, [&app](Request& req) {
            mq::authorize(*req.principal, mq::Action::kManageQueues);
            auto force = req.query.count("force") && req.query.at("force") == "true";
            auto db = app.pg().acquire();
            auto redis = app.redis().acquire();
            mq::Catalog catalog(*db);
            mq::QueueStreams streams(*redis, app.keys());
            // Other tenants' subscriptions on a public queue go with it: their tenants reload
            // too, so their next call here already finds the subscription gone.
            std::set<std::string> tenants{req.tenant()};
            if (auto q =
                    catalog.find_queue(req.tenant(), req.param("name"), /*include_deleting=*/true))
                for (const auto& s : mq::SubscriptionCatalog(*db).list_on_queue(*q))
                    tenants.insert(s.tenant);
            mq::delete_queue(catalog, streams, req.tenant(), req.param("name"), force);
            for (const auto& t : tenants) app.cache().reload_tenant(t);
            Response r;
            r.status = 204;
            return r;
        });
    router.add(http::verb::post, "/api/v1/mq/queues/{name}/purge", Auth::kBearer,
               [&app](Request& req) {
                   mq::authorize(*req.principal, mq::Action::kManageQueues);
                   auto q = app.queue(req.tenant(), req.param("name"));
                   auto redis = app.redis().acquire();
                   auto db = app.pg().acquire();
                   mq::QueueStreams streams(*redis, app.keys());
                   auto purged = mq::purge_queue(*db, streams, *q);
                   return json_response(200, {{"purged", purged.entries + purged.delayed},
                                              {"entries", purged.entries},
                                              {"delayed", purged.delayed}});
               });
}

}  // namespace mqapi
