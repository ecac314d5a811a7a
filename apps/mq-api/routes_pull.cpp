// Pull delivery for services without a worker: POST /api/v1/mq/subscriptions/{id}/pull
// (long-poll up to 30 s), .../ack, .../nack, .../extend. Receipts are opaque, signed and
// bound to the subscription (mq/consume/pull.hpp, docs/pull.md). A subscription on another
// tenant's queue reads that tenant's streams, and only while the queue is public.

#include "mq/consume/pull.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/core/codec.hpp"
#include "mq/core/time.hpp"
#include "mq/core/trace_context.hpp"
#include "mq/queue/catalog.hpp"
#include "routes.hpp"

namespace mqapi {

namespace {

constexpr std::chrono::milliseconds kPollEvery{50};
constexpr std::int64_t kMaxWaitMs = 30000;

struct Target {
    std::shared_ptr<const mq::Subscription> sub;
    std::shared_ptr<const mq::Queue> queue;
};

Target target(App& app, const Request& req) {
    mq::authorize(*req.principal, mq::Action::kConsume);
    const auto& id = req.param("id");
    auto sub = app.cache().subscription(req.tenant(), id);
    if (!sub) {
        auto db = app.pg().acquire();
        sub = std::make_shared<const mq::Subscription>(
            mq::SubscriptionCatalog(*db).get_by_id(req.tenant(), id));
    }
    // Checked on every call: a queue that stopped being public (or is gone) answers what a
    // missing queue answers, whatever the subscription row still says.
    auto queue = app.cache().queue(mq::queue_owner(*sub), sub->queue);
    if (!queue) throw mq::queue_not_found(req.tenant(), sub->queue);
    mq::authorize_consume(*req.principal, *queue);
    return {sub, queue};
}

nlohmann::json message_json(App& app, const mq::Queue& q, const mq::PulledMessage& pm) {
    const auto& m = pm.fetched.message;
    std::string payload = mq::open_payload(m, app.keyring(), q);
    nlohmann::json j = {{"id", m.id},
                        {"receipt", pm.receipt},
                        {"partition", pm.fetched.partition},
                        {"key", m.key.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.key)},
                        {"content_type", m.content_type},
                        {"published_at", mq::format_rfc3339(m.published_ms)},
                        {"delivery_count", pm.fetched.delivery_count},
                        {"lease_expires_at", mq::format_rfc3339(pm.lease_expires_ms)}};
    // Trace context: the stored trace id, and the traceparent of this delivery (a new span
    // id per pull, as for a webhook attempt); null when the message came without a trace.
    auto trace = mq::trace::handoff(m);
    j["trace_id"] = m.trace_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.trace_id);
    j["traceparent"] =
        trace.traceparent.empty() ? nlohmann::json(nullptr) : nlohmann::json(trace.traceparent);
    j["tracestate"] =
        trace.tracestate.empty() ? nlohmann::json(nullptr) : nlohmann::json(trace.tracestate);
    j["headers"] = nlohmann::json::object();
    if (!m.headers_json.empty()) {
        auto h = nlohmann::json::parse(m.headers_json, nullptr, false);
        if (h.is_object()) j["headers"] = std::move(h);
    }
    bool done = false;
    if (m.content_type == "application/json") {
        auto parsed = nlohmann::json::parse(payload, nullptr, false);
        if (!parsed.is_discarded()) {
            j["payload"] = std::move(parsed);
            done = true;
        }
    }
    if (!done) {
        try {
            nlohmann::json s = payload;
            (void)s.dump();  // throws on bytes that are not UTF-8
            j["payload"] = std::move(s);
        } catch (const nlohmann::json::type_error&) {
            j["payload"] = mq::codec::base64_encode(payload);
            j["payload_encoding"] = "base64";
        }
    }
    return j;
}

struct PullState {
    App& app;
    Request* req;
    Reply reply;
    Target target;
    int max = 10;
    std::chrono::steady_clock::time_point deadline;
};

void attempt(const std::shared_ptr<PullState>& st) {
    Response r;
    try {
        auto redis = st->app.redis().acquire();
        mq::PullConsumer consumer(*redis, st->app.keys(), st->app.receipt_key());
        auto pulled = consumer.pull(*st->target.queue, *st->target.sub,
                                    "pull:" + st->req->principal->name, st->max);
        auto now = std::chrono::steady_clock::now();
        if (pulled.empty() && now < st->deadline && !st->app.server()->draining()) {
            auto wait = std::min<std::chrono::milliseconds>(
                kPollEvery,
                std::chrono::duration_cast<std::chrono::milliseconds>(st->deadline - now));
            st->app.server()->post_after(
                wait, [st] { st->app.server()->post_blocking([st] { attempt(st); }); });
            return;
        }
        nlohmann::json list = nlohmann::json::array();
        auto now_ms = mq::now_ms();
        auto& counters = st->app.counters(st->target.sub->tenant);
        for (const auto& pm : pulled) {
            list.push_back(message_json(st->app, *st->target.queue, pm));
            if (pm.fetched.delivery_count == 1)
                st->app.pull_latency().record(
                    static_cast<double>(now_ms - pm.fetched.message.published_ms) / 1000.0);
        }
        counters.delivered += pulled.size();
        r = json_response(200, {{"messages", std::move(list)}});
    } catch (const mq::Error& e) {
        r = error_response(client_error(e, st->req->request_id));
    } catch (const std::exception& e) {
        r = error_response(
            client_error(mq::Error(mq::ErrorCode::kInternal, e.what()), st->req->request_id));
    }
    st->reply(std::move(r));
}

mq::Receipt receipt_field(App& app, const nlohmann::json& v, const mq::Subscription& sub) {
    if (!v.is_string())
        throw mq::ValidationError("a receipt must be a string", {{"field", "receipt"}});
    return mq::decode_receipt(v.get<std::string>(), app.receipt_key(), sub.id);
}

}  // namespace

void add_pull_routes(Router& router, App& app) {
    router.add_async(
        http::verb::post, "/api/v1/mq/subscriptions/{id}/pull", Auth::kBearer,
        [&app](Request& req, Reply reply) {
            auto body = parse_object_body(req.body());
            only_fields(body, {"max_messages", "wait_ms"});
            auto st =
                std::make_shared<PullState>(PullState{app, &req, std::move(reply), {}, 10, {}});
            st->max = static_cast<int>(
                int_field(body, "max_messages", 10, 1, mq::PullConsumer::kMaxPull));
            auto wait = int_field(body, "wait_ms", 0, 0, kMaxWaitMs);
            st->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait);
            app.server()->post_blocking([st] {
                try {
                    st->target = target(st->app, *st->req);
                } catch (const mq::Error& e) {
                    return st->reply(error_response(client_error(e, st->req->request_id)));
                } catch (const std::exception& e) {
                    return st->reply(error_response(client_error(
                        mq::Error(mq::ErrorCode::kInternal, e.what()), st->req->request_id)));
                }
                attempt(st);
            });
        });
    router.add(
        http::verb::post, "/api/v1/mq/subscriptions/{id}/ack", Auth::kBearer, [&app](Request& req) {
            auto body = parse_object_body(req.body());
            only_fields(body, {"receipt", "receipts"});
            auto t = target(app, req);
            std::vector<std::string> texts;
            if (body.contains("receipts")) {
                if (!body["receipts"].is_array() || body["receipts"].empty() ||
                    body["receipts"].size() > 100)
                    throw mq::ValidationError("\"receipts\" must be an array of 1 to 100 receipts",
                                              {{"field", "receipts"}});
                for (const auto& r : body["receipts"])
                    texts.push_back(r.is_string() ? r.get<std::string>() : "");
            }
            if (body.contains("receipt"))
                texts.push_back(body["receipt"].is_string() ? body["receipt"].get<std::string>()
                                                            : "");
            if (texts.empty())
                throw mq::ValidationError("give \"receipt\" or \"receipts\"",
                                          {{"field", "receipts"}});
            std::vector<mq::Receipt> receipts;
            for (const auto& text : texts) receipts.push_back(receipt_field(app, text, *t.sub));
            auto redis = app.redis().acquire();
            auto results = mq::PullConsumer(*redis, app.keys(), app.receipt_key())
                               .ack(*t.queue, *t.sub, receipts);
            nlohmann::json out = nlohmann::json::array();
            std::uint64_t acked = 0;
            for (std::size_t i = 0; i < results.size(); ++i) {
                bool ok = results[i] == mq::AckResult::kAcked;
                acked += ok;
                out.push_back({{"receipt", texts[i]}, {"status", ok ? "acked" : "lease_lost"}});
            }
            app.counters(t.sub->tenant).acked += acked;
            return json_response(200, {{"results", std::move(out)}});
        });
    router.add(
        http::verb::post, "/api/v1/mq/subscriptions/{id}/nack", Auth::kBearer,
        [&app](Request& req) {
            auto body = parse_object_body(req.body());
            only_fields(body, {"receipt", "delay_ms"});
            auto t = target(app, req);
            if (!body.contains("receipt"))
                throw mq::ValidationError("missing \"receipt\" field", {{"field", "receipt"}});
            auto receipt = receipt_field(app, body["receipt"], *t.sub);
            auto delay = int_field(body, "delay_ms", 0, 0, mq::PullConsumer::kMaxNackDelay.count());
            auto redis = app.redis().acquire();
            auto result = mq::PullConsumer(*redis, app.keys(), app.receipt_key())
                              .nack(*t.queue, *t.sub, receipt, std::chrono::milliseconds(delay));
            if (result != mq::AckResult::kAcked)
                throw mq::Error(
                    mq::ErrorCode::kConflict,
                    "the lease of this delivery was lost (acked, expired or redelivered)");
            app.counters(t.sub->tenant).nacked += 1;
            return json_response(200, {{"status", "nacked"}});
        });
    router.add(
        http::verb::post, "/api/v1/mq/subscriptions/{id}/extend", Auth::kBearer,
        [&app](Request& req) {
            auto body = parse_object_body(req.body());
            only_fields(body, {"receipt"});
            auto t = target(app, req);
            if (!body.contains("receipt"))
                throw mq::ValidationError("missing \"receipt\" field", {{"field", "receipt"}});
            auto receipt = receipt_field(app, body["receipt"], *t.sub);
            auto redis = app.redis().acquire();
            std::int64_t expires = 0;
            auto result =
                mq::PullConsumer(*redis, app.keys(), app.receipt_key())
                    .extend(*t.queue, *t.sub, receipt, "pull:" + req.principal->name, &expires);
            if (result != mq::AckResult::kAcked)
                throw mq::Error(
                    mq::ErrorCode::kConflict,
                    "the lease of this delivery was lost (acked, expired or redelivered)");
            return json_response(200, {{"lease_expires_at", mq::format_rfc3339(expires)}});
        });
}

}  // namespace mqapi
