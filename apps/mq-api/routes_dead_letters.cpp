// Dead letters of a queue, for tenant admins (docs/dead-letters.md):
// GET  /api/v1/mq/queues/{name}/dead-letters            list: subscription, reason, since, before,
// limit, cursor GET  /api/v1/mq/queues/{name}/dead-letters/{id}       one, with its payload (opened
// when sealed) POST /api/v1/mq/queues/{name}/dead-letters/replay     by ids or filter, dry_run, to
// POST /api/v1/mq/queues/{name}/dead-letters/purge      all, or those that died before a time
// Every rule lives in mq::DeadLetterStore and mq::PublishUseCase; this file parses and prints.

#include <set>

#include "mq/consume/dead_letters.hpp"
#include "mq/consume/entry_ref.hpp"
#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/crypto/keyring.hpp"
#include "routes.hpp"

namespace mqapi {

namespace {

constexpr std::int64_t kMaxPage = 1000;
constexpr std::int64_t kMaxReplay = 1000;

std::optional<std::int64_t> time_param(const std::string& text, const std::string& field) {
    if (text.empty()) return std::nullopt;
    return mq::parse_rfc3339(text, field);  // ValidationError naming the field
}

std::string name_param(const std::string& text, const char* what) {
    if (!text.empty()) mq::validate_name(what, text);
    return text;
}

// The dead letter as the API shows it: its payload opened when it was sealed for `q`.
nlohmann::json dead_letter_json(App& app, const mq::Queue& q, const mq::DeadLetter& d) {
    auto j = mq::to_json(d);
    if (!d.message.encryption_key_id.empty()) {
        try {
            j["payload"] = mq::open_payload(d.message, app.keyring(), q);
        } catch (const mq::Error&) {
            j["payload"] = nullptr;  // the keyring cannot open it: say so, never show ciphertext
            j["payload_sealed"] = true;
        }
    }
    return j;
}

mq::DeadLetterFilter filter_from_query(const Request& req) {
    only_query_parameters(req.query,
                          {"subscription", "reason", "since", "before", "limit", "cursor"});
    auto get = [&](const char* k) {
        auto it = req.query.find(k);
        return it == req.query.end() ? std::string() : it->second;
    };
    mq::DeadLetterFilter f;
    f.subscription = name_param(get("subscription"), "subscription name");
    f.reason = get("reason");
    f.since_ms = time_param(get("since"), "since");
    f.before_ms = time_param(get("before"), "before");
    f.after = get("cursor");
    return f;
}

std::size_t limit_from_query(const Request& req) {
    auto it = req.query.find("limit");
    if (it == req.query.end()) return 50;
    std::int64_t n = 0;
    try {
        std::size_t used = 0;
        n = std::stoll(it->second, &used);
        if (used != it->second.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
        n = 0;
    }
    if (n < 1 || n > kMaxPage)
        throw mq::ValidationError("\"limit\" must be from 1 to " + std::to_string(kMaxPage),
                                  {{"field", "limit"}});
    return static_cast<std::size_t>(n);
}

std::string string_field(const nlohmann::json& body, const char* field) {
    auto it = body.find(field);
    if (it == body.end() || it->is_null()) return {};
    if (!it->is_string())
        throw mq::ValidationError(std::string("\"") + field + "\" must be a string",
                                  {{"field", field}});
    return it->get<std::string>();
}

bool bool_field(const nlohmann::json& body, const char* field) {
    auto it = body.find(field);
    if (it == body.end() || it->is_null()) return false;
    if (!it->is_boolean())
        throw mq::ValidationError(std::string("\"") + field + "\" must be true or false",
                                  {{"field", field}});
    return it->get<bool>();
}

Response replay(App& app, Request& req) {
    mq::authorize(*req.principal, mq::Action::kManageDeadLetters);
    auto body = req.body().empty() ? nlohmann::json::object() : parse_object_body(req.body());
    only_fields(body, {"ids", "all", "subscription", "reason", "since", "before", "limit", "to",
                       "dry_run"});
    std::vector<std::string> ids;
    if (auto it = body.find("ids"); it != body.end() && !it->is_null()) {
        if (!it->is_array() || it->empty() || it->size() > static_cast<std::size_t>(kMaxReplay))
            throw mq::ValidationError("\"ids\" must be an array of 1 to " +
                                          std::to_string(kMaxReplay) + " dead-letter ids",
                                      {{"field", "ids"}});
        for (const auto& id : *it) {
            if (!id.is_string())
                throw mq::ValidationError("\"ids\" must hold strings", {{"field", "ids"}});
            ids.push_back(id.get<std::string>());
        }
    }
    mq::DeadLetterFilter filter;
    filter.subscription = name_param(string_field(body, "subscription"), "subscription name");
    filter.reason = string_field(body, "reason");
    filter.since_ms = time_param(string_field(body, "since"), "since");
    filter.before_ms = time_param(string_field(body, "before"), "before");
    const bool all = bool_field(body, "all");
    const bool filtered = all || !filter.subscription.empty() || !filter.reason.empty() ||
                          filter.since_ms || filter.before_ms;
    if (ids.empty() == !filtered)
        throw mq::ValidationError(
            "say what to replay: \"ids\", or a filter (\"all\": true, \"subscription\", "
            "\"reason\", \"since\", "
            "\"before\"), not both",
            {{"field", "ids"}});
    const auto limit = static_cast<std::size_t>(int_field(body, "limit", 100, 1, kMaxReplay));
    mq::ReplayOptions options;
    options.dry_run = bool_field(body, "dry_run");

    auto q = app.queue(req.tenant(), req.param("name"));
    auto to = string_field(body, "to");
    auto target = to.empty() ? q : app.queue(req.tenant(), to);
    auto redis = app.redis().acquire();
    mq::DeadLetterStore store(*redis, app.keys());
    std::vector<mq::DeadLetter> todo;
    std::vector<std::string> missing;
    if (!ids.empty()) {
        std::set<std::string> seen;
        for (const auto& id : ids) {
            if (!seen.insert(id).second) continue;
            mq::parse_entry_ref(
                id, "GET .../dead-letters");  // a malformed id is a 400 before anything runs
        }
        seen.clear();
        for (const auto& id : ids) {
            if (!seen.insert(id).second) continue;
            if (auto d = store.find(*q, id))
                todo.push_back(std::move(*d));
            else
                missing.push_back(id);
        }
    } else {
        todo = store.select(*q, filter, limit);
    }
    mq::Publisher publisher(*redis, app.keys(), app.publishing().limits());
    auto db = app.pg().acquire();
    auto report = mq::replay_dead_letters(*db, store, *q, todo, missing, *target, publisher,
                                          app.publishing(), options);
    nlohmann::json results = nlohmann::json::array();
    for (const auto& r : report.results) results.push_back(mq::to_json(r));
    app.counters(q->tenant).published += report.replayed;
    return json_response(200, {{"queue", q->name},
                               {"to", target->name},
                               {"dry_run", options.dry_run},
                               {"replayed", report.replayed},
                               {"would_replay", report.would_replay},
                               {"failed", report.failed},
                               {"not_found", report.not_found},
                               {"results", std::move(results)}});
}

}  // namespace

void add_dead_letter_routes(Router& router, App& app) {
    const std::string base = "/api/v1/mq/queues/{name}/dead-letters";
    router.add(http::verb::get, base, Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kManageDeadLetters);
        auto filter = filter_from_query(req);
        auto limit = limit_from_query(req);
        auto q = app.queue(req.tenant(), req.param("name"));
        auto redis = app.redis().acquire();
        auto page = mq::DeadLetterStore(*redis, app.keys()).page(*q, filter, limit);
        nlohmann::json items = nlohmann::json::array();
        for (const auto& d : page.items) items.push_back(dead_letter_json(app, *q, d));
        return json_response(
            200, {{"dead_letters", std::move(items)},
                  {"next_cursor", page.next_cursor.empty() ? nlohmann::json()
                                                           : nlohmann::json(page.next_cursor)}});
    });
    router.add(http::verb::get, base + "/{id}", Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kManageDeadLetters);
        const auto& id = req.param("id");
        mq::parse_entry_ref(id, "GET .../dead-letters");  // 400 before the queue is looked up
        auto q = app.queue(req.tenant(), req.param("name"));
        auto redis = app.redis().acquire();
        auto d = mq::DeadLetterStore(*redis, app.keys()).find(*q, id);
        if (!d)
            throw mq::Error(mq::ErrorCode::kNotFound,
                            "dead letter '" + mq::printable(id) + "' not found",
                            {{"id", mq::printable(id)}});
        auto j = dead_letter_json(app, *q, *d);
        j["trace_id"] = d->message.trace_id;
        return json_response(200, j);
    });
    router.add(http::verb::post, base + "/replay", Auth::kBearer,
               [&app](Request& req) { return replay(app, req); });
    router.add(http::verb::post, base + "/purge", Auth::kBearer, [&app](Request& req) {
        mq::authorize(*req.principal, mq::Action::kManageDeadLetters);
        auto body = req.body().empty() ? nlohmann::json::object() : parse_object_body(req.body());
        only_fields(body, {"before"});
        auto before = time_param(string_field(body, "before"), "before");
        auto q = app.queue(req.tenant(), req.param("name"));
        auto redis = app.redis().acquire();
        auto db = app.pg().acquire();
        mq::DeadLetterStore store(*redis, app.keys());
        auto removed = mq::purge_dead_letters(*db, store, *q, before);
        return json_response(200, {{"queue", q->name},
                                   {"removed", removed},
                                   {"before", before ? nlohmann::json(mq::format_rfc3339(*before))
                                                     : nlohmann::json()}});
    });
}

}  // namespace mqapi
