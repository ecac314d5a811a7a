// Cron schedules: POST/GET /api/v1/mq/schedules, GET/PUT/DELETE .../{name},
// POST .../{name}/pause and .../{name}/resume (docs/schedules.md). Reads need what reading
// queues needs, writes what managing queues needs; creating or retargeting a schedule also
// needs the right to publish to its queue (allowed_producers), since every tick publishes
// as if the caller did. Another tenant's schedule answers 404 like a missing one.

#include "mq/core/time.hpp"
#include "mq/schedule/schedule_catalog.hpp"
#include "routes.hpp"

namespace mqapi {

namespace {

const std::string kBase = "/api/v1/mq/schedules";

mq::PublishLimits limits_of(const App& app) {
    mq::PublishLimits limits;
    limits.max_message_size = app.config().max_message_size;
    return limits;
}

nlohmann::json with_next_fires(const mq::Schedule& s) {
    auto j = mq::to_json(s);
    j["next_fires"] = nlohmann::json::array();
    if (s.status == "active")
        for (auto ms : mq::next_fire_times(s, mq::now_ms(), 5))
            j["next_fires"].push_back(mq::format_rfc3339(ms));
    return j;
}

Response set_paused(App& app, Request& req, bool paused) {
    mq::authorize(*req.principal, mq::Action::kManageQueues);
    auto db = app.pg().acquire();
    auto s =
        mq::ScheduleCatalog(*db).set_paused(req.tenant(), req.param("name"), paused, mq::now_ms());
    return json_response(200, mq::to_json(s));
}

}  // namespace

void add_schedule_routes(Router& router, App& app) {
    // A payload up to MAX_MESSAGE_SIZE fits even JSON-escaped; larger ones get a clear
    // MQ_PAYLOAD_TOO_LARGE from the schedule checks (or the server's 413 beyond this).
    const std::size_t body_limit =
        2 * static_cast<std::size_t>(app.config().max_message_size) + 65536;

    router.add(
        http::verb::post, kBase, Auth::kBearer,
        [&app](Request& req) {
            mq::authorize(*req.principal, mq::Action::kManageQueues);
            auto spec = mq::schedule_spec_from_json(parse_object_body(req.body()));
            mq::validate(spec, limits_of(app));
            mq::authorize_publish(*req.principal, *app.queue(req.tenant(), spec.queue));
            auto db = app.pg().acquire();
            auto s = mq::create_schedule(*db, req.tenant(), spec, limits_of(app), mq::now_ms());
            return json_response(201, with_next_fires(s));
        },
        body_limit);
    router.add(http::verb::get, kBase, Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kReadQueues);
        auto db = app.pg().acquire();
        nlohmann::json list = nlohmann::json::array();
        for (const auto& s : mq::ScheduleCatalog(*db).list(req.tenant()))
            list.push_back(mq::to_json(s));
        return json_response(200, {{"schedules", std::move(list)}});
    });
    router.add(http::verb::get, kBase + "/{name}", Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kReadQueues);
        auto db = app.pg().acquire();
        return json_response(
            200, with_next_fires(mq::ScheduleCatalog(*db).get(req.tenant(), req.param("name"))));
    });
    router.add(
        http::verb::put, kBase + "/{name}", Auth::kBearer,
        [&app](Request& req) {
            mq::authorize(*req.principal, mq::Action::kManageQueues);
            auto changes = mq::schedule_changes_from_json(parse_object_body(req.body()));
            mq::validate(changes, limits_of(app));
            auto db = app.pg().acquire();
            auto current = mq::ScheduleCatalog(*db).get(req.tenant(), req.param("name"));
            mq::authorize_publish(*req.principal,
                                  *app.queue(req.tenant(), changes.queue.value_or(current.queue)));
            auto s = mq::update_schedule(*db, req.tenant(), req.param("name"), changes,
                                         limits_of(app), mq::now_ms());
            return json_response(200, with_next_fires(s));
        },
        body_limit);
    router.add(http::verb::delete_, kBase + "/{name}", Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kManageQueues);
        auto db = app.pg().acquire();
        mq::ScheduleCatalog(*db).remove(req.tenant(), req.param("name"));
        Response r;
        r.status = 204;
        return r;
    });
    router.add(http::verb::post, kBase + "/{name}/pause", Auth::kBearer,
               [&app](Request& req) { return set_paused(app, req, true); });
    router.add(http::verb::post, kBase + "/{name}/resume", Auth::kBearer,
               [&app](Request& req) { return set_paused(app, req, false); });
}

}  // namespace mqapi
