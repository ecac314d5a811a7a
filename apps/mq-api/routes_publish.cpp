// POST /api/v1/mq/publish, /publish/batch, /publish/delayed, /publish/scheduled and
// /topics/{name}/publish. These run on the I/O threads: parse (simdjson), check, then hand
// the messages to the publish pipeline, which answers when Redis has them. A queue with a
// JSON Schema is checked on the blocking pool instead (publish_to).

#include <spdlog/spdlog.h>

#include "mq/core/codec.hpp"
#include "mq/core/time.hpp"
#include "mq/publish/envelope.hpp"
#include "mq/publish/sealing.hpp"
#include "routes.hpp"

namespace mqapi {

namespace {

enum class Mode { kSingle, kBatch, kDelayed, kScheduled, kTopic };

mq::EnvelopeParser& parser() {
    thread_local mq::EnvelopeParser p;
    return p;
}

// When a delayed or scheduled message becomes deliverable, or nothing.
std::optional<std::int64_t> deliver_at_of(const mq::PublishRequest& r) {
    if (r.deliver_at_ms) return *r.deliver_at_ms;
    if (r.delay && r.delay->count() > 0) return mq::now_ms() + r.delay->count();
    return std::nullopt;
}

// The messages of one batch share their publish time: its text is formatted once.
struct PublishedAtText {
    std::int64_t ms = -1;
    std::string text;
    const std::string& of(std::int64_t unix_ms) {
        if (unix_ms != ms) {
            ms = unix_ms;
            text = mq::format_rfc3339(unix_ms);
        }
        return text;
    }
};

// The answer for one stored message, appended to `out` as JSON text:
// {"deliver_at","delayed","duplicate","id","messageId","partition","publishedAt","queue"};
// messageId (= id) and publishedAt are the seeds' names (docs/seed-compat.md). Written by hand
// because this is the hot path: an nlohmann object per message was a third of the
// allocations of a single publish and a third of the CPU of a 100-message batch.
void append_result(std::string& out, const mq::Queue& q, std::optional<std::int64_t> at,
                   const mq::PublishOutcome& o, PublishedAtText& published_at) {
    out += "{\"deliver_at\":";
    if (o.delayed && at)
        mq::codec::append_json_string(out, mq::format_rfc3339(*at));
    else
        out += "null";
    out += o.delayed ? ",\"delayed\":true" : ",\"delayed\":false";
    out +=
        o.status == mq::PublishStatus::kDuplicate ? ",\"duplicate\":true" : ",\"duplicate\":false";
    out += ",\"id\":";
    mq::codec::append_json_string(out, o.message_id);
    out += ",\"messageId\":";
    mq::codec::append_json_string(out, o.message_id);
    out += ",\"partition\":";
    out += std::to_string(o.partition);
    out += ",\"publishedAt\":";
    mq::codec::append_json_string(out, published_at.of(o.published_ms));
    out += ",\"queue\":";
    mq::codec::append_json_string(out, q.name);
    out += '}';
}

// {"error": {...}} for a message of a batch that was not stored (invalid UTF-8 replaced;
// backend text replaced by client_error).
void append_error(std::string& out, const mq::Error& e, std::string_view request_id) {
    out += client_error(e, request_id)
               .to_json()
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void handle(App& app, Mode mode, Request& req, Reply reply) {
    mq::authorize(*req.principal, mq::Action::kPublish);
    const bool allow_batch = mode == Mode::kBatch || mode == Mode::kTopic;
    // tenantId/tenant_id at the top of a batch body land in `extras`; in a single envelope
    // (or a batch message) the parser keeps them as PublishRequest::claimed_tenant.
    std::vector<std::string_view> extras{"tenantId", "tenant_id"};
    if (mode != Mode::kTopic) extras.push_back("queue");
    auto body = parser().parse_body(req.body(), extras, allow_batch, app.options().max_batch);
    if (mode == Mode::kBatch && !body.batch)
        throw mq::ValidationError("a batch body is {\"queue\": ..., \"messages\": [...]}",
                                  {{"field", "messages"}});
    // Before the queue is looked up, so a 403 here says nothing about queues either.
    for (const auto& [field, value] : body.extras)
        if (field != "queue") mq::check_claimed_tenant(*req.principal, value);
    const auto traceparent = req.header("traceparent");
    const auto tracestate = req.header("tracestate");
    for (auto& r : body.messages) {
        if (r.claimed_tenant) mq::check_claimed_tenant(*req.principal, *r.claimed_tenant);
        mq::apply_trace_context(r, traceparent, tracestate);
    }

    std::string name;
    if (mode == Mode::kTopic) {
        name = req.param("name");
    } else {
        auto it = body.extras.find("queue");
        if (it == body.extras.end() || it->second.empty())
            throw mq::ValidationError("missing \"queue\" field", {{"field", "queue"}});
        name = it->second;
    }
    if (!body.batch) {
        auto& r = body.messages.front();
        if (auto h = req.header("Idempotency-Key"); !h.empty()) {
            if (!r.idempotency_key.empty() && r.idempotency_key != h)
                throw mq::ValidationError("Idempotency-Key header and idempotency_key field differ",
                                          {{"field", "idempotency_key"}});
            r.idempotency_key = std::string(h);
        }
        if (mode == Mode::kDelayed && !r.delay)
            throw mq::ValidationError("a delayed publish needs \"delay_ms\" or \"delay\"",
                                      {{"field", "delay_ms"}});
        if (mode == Mode::kScheduled && !r.deliver_at_ms)
            throw mq::ValidationError("a scheduled publish needs \"deliver_at\"",
                                      {{"field", "deliver_at"}});
    }
    auto queue = app.queue(req.tenant(), name);
    mq::authorize_publish(*req.principal, *queue);
    if (queue->record_messages)
        for (auto& m : body.messages) m.producer = req.principal->name;
    publish_to(app, queue, std::move(body.messages), body.batch, req.request_id, std::move(reply),
               std::move(body.errors));
}

}  // namespace

namespace {

// The publish use case before anything reaches Redis: quota, limits, schema, sealing. A
// batch keeps going past a bad message (its result says why); a single publish fails
// as a whole.
void admit_and_submit(App& app, const std::shared_ptr<const mq::Queue>& queue,
                      std::vector<mq::PublishRequest> requests, bool batch, std::string request_id,
                      Reply reply, std::vector<std::optional<mq::Error>> refused,
                      bool charge_quota) {
    const std::size_t total = requests.size();
    mq::AdmittedBatch admitted;
    try {
        admitted = app.publishing().admit_all(*queue, std::move(requests), std::move(refused),
                                              batch, charge_quota);
    } catch (const mq::Error& e) {
        if (e.code() == mq::ErrorCode::kQuotaExceeded)
            app.counters(queue->tenant).rejected += total;
        throw;
    }
    refused = std::move(admitted.refused);
    std::vector<mq::PublishRequest> accepted = std::move(admitted.accepted);
    // Only deliver_at is kept for the answers; the requests themselves go to the pipeline.
    std::vector<std::optional<std::int64_t>> at;
    at.reserve(accepted.size());
    for (const auto& r : accepted) at.push_back(deliver_at_of(r));
    auto finish = [&app, queue, at = std::move(at), refused = std::move(refused), total, batch,
                   request_id = std::move(request_id), reply = std::move(reply)](
                      std::vector<mq::PublishOutcome> outcomes, std::exception_ptr error) {
        auto& counters = app.counters(queue->tenant);
        if (error) {
            counters.errors += 1;
            try {
                std::rethrow_exception(error);
            } catch (const mq::Error& e) {
                return reply(error_response(client_error(e, request_id)));
            } catch (const std::exception& e) {
                return reply(error_response(
                    client_error(mq::Error(mq::ErrorCode::kPublishFailed, e.what()), request_id)));
            }
        }
        if (!batch) {
            if (outcomes.empty()) {  // refused before Redis (cannot happen: single throws)
                return reply(error_response(
                    mq::Error(mq::ErrorCode::kPublishFailed, "nothing was published")));
            }
            const auto& o = outcomes.front();
            if (o.status == mq::PublishStatus::kRejected) {
                counters.rejected += 1;
                return reply(error_response(client_error(
                    o.error ? *o.error : mq::Error(mq::ErrorCode::kPublishFailed, "not stored"),
                    request_id)));
            }
            bool dup = o.status == mq::PublishStatus::kDuplicate;
            (dup ? counters.duplicates : counters.published) += 1;
            Response response;
            response.status = dup ? 200 : 201;
            response.body.reserve(240 + queue->name.size());
            PublishedAtText published_at;
            append_result(response.body, *queue, at.front(), o, published_at);
            return reply(std::move(response));
        }
        // {"accepted": n, "rejected": n, "results": [...]}, one result per message in order.
        std::string results;
        results.reserve(total * (230 + queue->name.size()));
        std::size_t next = 0, accepted_n = 0, rejected_n = 0;
        PublishedAtText published_at;
        for (std::size_t i = 0; i < total; ++i) {
            if (i > 0) results += ',';
            if (refused[i]) {
                ++rejected_n;
                append_error(results, *refused[i], request_id);
                continue;
            }
            const std::size_t k = next++;
            const auto& o = outcomes[k];
            if (o.status == mq::PublishStatus::kRejected) {
                ++rejected_n;
                append_error(
                    results,
                    o.error ? *o.error : mq::Error(mq::ErrorCode::kPublishFailed, "not stored"),
                    request_id);
            } else {
                ++accepted_n;
                if (o.status == mq::PublishStatus::kDuplicate) counters.duplicates += 1;
                append_result(results, *queue, at[k], o, published_at);
            }
        }
        counters.published += accepted_n;
        counters.rejected += rejected_n;
        Response response;
        response.status = 200;
        response.body.reserve(results.size() + 64);
        response.body += "{\"accepted\":";
        response.body += std::to_string(accepted_n);
        response.body += ",\"rejected\":";
        response.body += std::to_string(rejected_n);
        response.body += ",\"results\":[";
        response.body += results;
        response.body += "]}";
        reply(std::move(response));
    };
    if (accepted.empty()) return finish({}, nullptr);
    app.pipeline().submit(queue, std::move(accepted), std::move(finish));
}

}  // namespace

void publish_to(App& app, const std::shared_ptr<const mq::Queue>& queue,
                std::vector<mq::PublishRequest> requests, bool batch, std::string request_id,
                Reply reply, std::vector<std::optional<mq::Error>> refused, bool charge_quota) {
    if (queue->schema.is_null() || !app.server())
        return admit_and_submit(app, queue, std::move(requests), batch, std::move(request_id),
                                std::move(reply), std::move(refused), charge_quota);
    // A tenant's schema may cost up to PayloadSchemaLimits::kMaxTime per payload: checked on
    // the blocking pool, so an I/O thread (and every connection on it) never waits for it.
    app.server()->post_blocking([&app, queue, requests = std::move(requests), batch,
                                 request_id = std::move(request_id), reply,
                                 refused = std::move(refused), charge_quota]() mutable {
        try {
            admit_and_submit(app, queue, std::move(requests), batch, request_id, reply,
                             std::move(refused), charge_quota);
        } catch (const mq::Error& e) {
            reply(error_response(client_error(e, request_id)));
        } catch (const std::exception& e) {
            spdlog::error("publish to {}/{} failed (request {}): {}", queue->tenant, queue->name,
                          request_id, e.what());
            reply(error_response(mq::Error(mq::ErrorCode::kInternal, "internal error")));
        }
    });
}

void add_publish_routes(Router& router, App& app) {
    auto route = [&](const char* path, Mode mode, std::size_t limit) {
        router.add_async(
            http::verb::post, path, Auth::kBearer,
            [&app, mode](Request& req, Reply reply) { handle(app, mode, req, std::move(reply)); },
            limit);
    };
    std::size_t single = static_cast<std::size_t>(app.config().max_message_size);
    std::size_t batch = app.options().batch_body_limit;
    route("/api/v1/mq/publish", Mode::kSingle, single);
    route("/api/v1/mq/publish/batch", Mode::kBatch, batch);
    route("/api/v1/mq/publish/delayed", Mode::kDelayed, single);
    route("/api/v1/mq/publish/scheduled", Mode::kScheduled, single);
    route("/api/v1/mq/topics/{name}/publish", Mode::kTopic, batch);
}

}  // namespace mqapi
