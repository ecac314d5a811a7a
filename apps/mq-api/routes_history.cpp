// The message history of queues with record_messages (docs/history.md):
// GET /api/v1/mq/messages/{id}                 a message's timeline, oldest event first
// GET /api/v1/mq/queues/{name}/messages        recorded messages: since, status, limit, cursor
// GET /api/v1/mq/messages?queue=NAME           the same list, the queue as a parameter
// Reads like the other read routes of a queue (read-queues); another tenant's queue or
// message answers 404. Every rule lives in mq::HistoryStore; this file parses and prints.

#include "mq/core/names.hpp"
#include "mq/history/history.hpp"
#include "routes.hpp"

namespace mqapi {

namespace {

// `queue_param`: GET /api/v1/mq/messages names the queue in the query.
mq::MessageFilter filter_from_query(const Request& req, bool queue_param) {
    if (queue_param)
        only_query_parameters(req.query, {"queue", "since", "status", "limit", "cursor"});
    else
        only_query_parameters(req.query, {"since", "status", "limit", "cursor"});
    auto get = [&](const char* k) {
        auto it = req.query.find(k);
        return it == req.query.end() ? std::string() : it->second;
    };
    mq::MessageFilter f;
    if (auto since = get("since"); !since.empty()) f.since_ms = mq::parse_since(since, "since");
    f.status = get("status");
    if (auto limit = get("limit"); !limit.empty()) {
        std::size_t n = 0;
        bool ok = limit.size() <= 6;
        for (char c : limit) ok = ok && c >= '0' && c <= '9';
        if (ok) n = std::stoul(limit);
        if (!ok || n < 1 || n > mq::kMaxHistoryPage)
            throw mq::ValidationError(
                "\"limit\" must be from 1 to " + std::to_string(mq::kMaxHistoryPage),
                {{"field", "limit"}});
        f.limit = n;
    }
    f.cursor = get("cursor");
    mq::validate(f);
    return f;
}

// One page of the queue's recorded messages (400 for the filter before the queue is
// looked up, so a bad filter says nothing about which queues exist).
Response list_messages(App& app, Request& req, const std::string& queue,
                       const mq::MessageFilter& filter) {
    auto q = app.queue(req.tenant(), queue);
    auto db = app.pg().acquire();
    auto page = mq::HistoryStore(*db).list(q->tenant, q->name, filter);
    nlohmann::json items = nlohmann::json::array();
    for (const auto& m : page.items) items.push_back(mq::to_json(m));
    return json_response(
        200, {{"messages", std::move(items)},
              {"record_messages", q->record_messages},
              {"next_cursor",
               page.next_cursor.empty() ? nlohmann::json() : nlohmann::json(page.next_cursor)}});
}

}  // namespace

void add_history_routes(Router& router, App& app) {
    router.add(http::verb::get, "/api/v1/mq/messages/{id}", Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kReadQueues);
        const std::string& id = req.param("id");
        if (!mq::is_uuid(id))
            throw mq::ValidationError("message id must be a uuid", {{"field", "id"}});
        auto db = app.pg().acquire();
        auto timeline = mq::HistoryStore(*db).timeline(req.tenant(), id);
        nlohmann::json events = nlohmann::json::array();
        for (const auto& r : timeline.events) events.push_back(mq::to_json(r));
        return json_response(200, {{"id", id},
                                   {"queue", timeline.events.front().queue},
                                   {"partition", timeline.events.front().partition},
                                   {"events", std::move(events)},
                                   {"truncated", timeline.truncated}});
    });
    router.add(http::verb::get, "/api/v1/mq/queues/{name}/messages", Auth::kBearer,
               [&app](Request& req) {
                   mq::authorize(*req.principal, mq::Action::kReadQueues);
                   auto filter = filter_from_query(req, false);
                   return list_messages(app, req, req.param("name"), filter);
               });
    router.add(http::verb::get, "/api/v1/mq/messages", Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kReadQueues);
        auto filter = filter_from_query(req, true);
        auto it = req.query.find("queue");
        if (it == req.query.end() || it->second.empty())
            throw mq::ValidationError("missing \"queue\": GET /api/v1/mq/messages?queue=NAME",
                                      {{"field", "queue"}});
        return list_messages(app, req, it->second, filter);
    });
}

}  // namespace mqapi
