#include "mq/publish/envelope.hpp"

#include <simdjson.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

#include "mq/core/time.hpp"
#include "mq/core/trace_context.hpp"

namespace mq {

namespace od = simdjson::ondemand;

struct EnvelopeParser::State {
    simdjson::dom::parser validator;  // full validation of the text
    od::parser reader;                // field extraction, raw payload spans
    std::string buffer;               // the text plus simdjson's padding
};

EnvelopeParser::EnvelopeParser() : state_(std::make_unique<State>()) {}
EnvelopeParser::~EnvelopeParser() = default;

namespace {

[[noreturn]] void malformed(simdjson::error_code err) {
    throw ValidationError(std::string("malformed JSON: ") + simdjson::error_message(err));
}

// The field whose value is a number no double holds (1e400, -1e400): simdjson only says
// NUMBER_ERROR, so on that error path nlohmann reads the text again, noting each key, and
// stops at the same number. Empty when it cannot tell.
std::string field_of_bad_number(std::string_view json) {
    std::string last_key;
    try {
        [[maybe_unused]] auto ignored = nlohmann::json::parse(
            json, [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
                if (event == nlohmann::json::parse_event_t::key && parsed.is_string())
                    last_key = parsed.get<std::string>();
                return true;
            });
    } catch (const nlohmann::json::out_of_range&) {
        return last_key;
    } catch (const nlohmann::json::exception&) {
    }
    return {};
}

[[noreturn]] void bad_number(std::string_view json, simdjson::error_code err) {
    std::string field = field_of_bad_number(json);
    if (field.empty()) malformed(err);
    throw ValidationError("\"" + printable(field) + "\": a number out of range",
                          {{"field", field}});
}

std::string_view trim(std::string_view s) {
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

std::string string_field(od::value& v, std::string_view field) {
    std::string_view s;
    if (v.get_string().get(s))
        throw ValidationError("\"" + std::string(field) + "\" must be a string",
                              {{"field", std::string(field)}});
    return std::string(s);
}

// The "tenantId" (or "tenant_id") of a batch message that failed to parse: the object is
// read again from its start.
std::optional<std::string> claimed_tenant_of(od::object& obj) {
    if (auto err = obj.reset().error()) malformed(err);
    std::optional<std::string> claimed;
    for (auto member : obj) {
        od::field f;
        if (auto err = std::move(member).get(f)) malformed(err);
        std::string_view key;
        if (auto err = f.unescaped_key().get(key)) malformed(err);
        if (key == "tenantId" || key == "tenant_id") {
            od::value v = f.value();
            claimed = string_field(v, key);
        }
    }
    return claimed;
}

// Reads one envelope object. Fields named in `extras` are given to `extra` instead of
// being refused as unknown.
PublishRequest read_envelope(od::object& obj, const std::vector<std::string_view>& extras,
                             const std::function<void(std::string_view, od::value&)>& extra) {
    PublishRequest r;
    bool has_payload = false;
    std::string explicit_content_type;
    bool has_content_type = false;
    for (auto member : obj) {
        od::field f;
        if (auto err = std::move(member).get(f)) malformed(err);
        std::string_view key;
        if (auto err = f.unescaped_key().get(key)) malformed(err);
        std::string field(key);
        od::value v = f.value();
        od::json_type type;
        if (auto err = v.type().get(type)) malformed(err);

        if (field == "payload") {
            if (type == od::json_type::null)
                throw ValidationError("\"payload\" must not be null", {{"field", "payload"}});
            has_payload = true;
            std::string_view raw;
            switch (type) {
                case od::json_type::string:
                    r.payload = string_field(v, field);
                    continue;
                case od::json_type::object: {
                    od::object o;
                    if (auto err = v.get_object().get(o)) malformed(err);
                    if (auto err = o.raw_json().get(raw)) malformed(err);
                    break;
                }
                case od::json_type::array: {
                    od::array a;
                    if (auto err = v.get_array().get(a)) malformed(err);
                    if (auto err = a.raw_json().get(raw)) malformed(err);
                    break;
                }
                default:
                    raw = v.raw_json_token();
            }
            r.payload = std::string(trim(raw));
            if (r.content_type.empty()) r.content_type = "application/json";
        } else if (field == "key") {
            r.key = string_field(v, field);
        } else if (field == "idempotency_key" || field == "idempotencyKey") {
            r.idempotency_key = string_field(v, field);
        } else if (field == "content_type" || field == "contentType") {
            explicit_content_type = string_field(v, field);
            has_content_type = true;
        } else if (field == "trace_id" || field == "traceId") {
            r.trace_id = string_field(v, field);
        } else if (field == "tenantId" || field == "tenant_id") {
            r.claimed_tenant = string_field(v, field);
        } else if (field == "headers") {
            od::object h;
            if (type != od::json_type::object || v.get_object().get(h))
                throw ValidationError("\"headers\" must be an object of strings",
                                      {{"field", "headers"}});
            for (auto hm : h) {
                od::field hf;
                if (auto err = std::move(hm).get(hf)) malformed(err);
                std::string_view hk;
                if (auto err = hf.unescaped_key().get(hk)) malformed(err);
                std::string name(hk);
                od::value hv = hf.value();
                std::string_view s;
                if (hv.get_string().get(s))
                    throw ValidationError("header \"" + name + "\" must be a string",
                                          {{"field", "headers"}});
                r.headers[name] = std::string(s);
            }
        } else if (field == "delay") {
            if (r.delay)
                throw ValidationError("give \"delay\" or \"delay_ms\", not both",
                                      {{"field", field}});
            r.delay = parse_duration(string_field(v, field), "delay");
        } else if (field == "delay_ms" || field == "delayMs") {
            if (r.delay)
                throw ValidationError("give \"delay\" or \"delay_ms\", not both",
                                      {{"field", field}});
            std::int64_t ms = 0;
            if (type != od::json_type::number || v.get_int64().get(ms) || ms < 0)
                throw ValidationError("\"" + field + "\" must be a non-negative integer",
                                      {{"field", field}});
            r.delay = std::chrono::milliseconds(ms);
        } else if (field == "deliver_at" || field == "deliverAt") {
            r.deliver_at_ms = parse_rfc3339(string_field(v, field), "deliver_at");
        } else if (std::find(extras.begin(), extras.end(), field) != extras.end()) {
            extra(field, v);
        } else {
            throw ValidationError("unknown field \"" + field + "\"", {{"field", field}});
        }
    }
    if (!has_payload) throw ValidationError("missing \"payload\" field", {{"field", "payload"}});
    // An explicit content type wins over the one implied by a JSON payload.
    if (has_content_type) r.content_type = explicit_content_type;
    return r;
}

}  // namespace

namespace {

template <class State>
od::object open_document(State& st, std::string_view json, od::document& doc) {
    st.buffer.assign(json.data(), json.size());
    st.buffer.reserve(json.size() + simdjson::SIMDJSON_PADDING);

    // The on-demand reader skips over what it is not asked for; the DOM pass first makes
    // sure the whole text (payload included) is valid JSON.
    simdjson::dom::element root;
    if (auto err = st.validator.parse(st.buffer.data(), st.buffer.size(), false).get(root)) {
        if (err == simdjson::NUMBER_ERROR) bad_number(json, err);
        malformed(err);
    }
    if (!root.is_object()) throw ValidationError("expected a JSON object with a \"payload\" field");

    if (auto err = st.reader
                       .iterate(simdjson::padded_string_view(st.buffer.data(), st.buffer.size(),
                                                             st.buffer.capacity()))
                       .get(doc))
        malformed(err);
    od::object obj;
    if (doc.get_object().get(obj))
        throw ValidationError("expected a JSON object with a \"payload\" field");
    return obj;
}

}  // namespace

PublishRequest EnvelopeParser::parse(std::string_view json) {
    od::document doc;
    od::object obj = open_document(*state_, json, doc);
    return read_envelope(obj, {}, {});
}

PublishBody EnvelopeParser::parse_body(std::string_view json,
                                       const std::vector<std::string_view>& extras,
                                       bool allow_batch, std::size_t max_batch) {
    od::document doc;
    od::object obj = open_document(*state_, json, doc);
    PublishBody body;
    auto take_extra = [&](std::string_view field, od::value& v) {
        body.extras[std::string(field)] = string_field(v, field);
    };
    // A batch is {"messages": [...], <extras>}; anything else is one envelope. Find out
    // which by looking for "messages" first (on-demand objects can be rewound by reset).
    bool is_batch = false;
    if (allow_batch) {
        od::value messages;
        is_batch = obj.find_field_unordered("messages").get(messages) == simdjson::SUCCESS;
        if (obj.reset().error()) malformed(simdjson::TAPE_ERROR);
    }
    if (!is_batch) {
        body.messages.push_back(read_envelope(obj, extras, take_extra));
        return body;
    }
    body.batch = true;
    for (auto member : obj) {
        od::field f;
        if (auto err = std::move(member).get(f)) malformed(err);
        std::string_view key;
        if (auto err = f.unescaped_key().get(key)) malformed(err);
        od::value v = f.value();
        if (key == "messages") {
            od::array items;
            if (v.get_array().get(items))
                throw ValidationError("\"messages\" must be an array of message objects",
                                      {{"field", "messages"}});
            for (auto item : items) {
                od::object m;
                if (item.get_object().get(m))
                    throw ValidationError(
                        "message " + std::to_string(body.messages.size()) + " is not a JSON object",
                        {{"field", "messages"}, {"index", body.messages.size()}});
                if (body.messages.size() >= max_batch)
                    throw ValidationError(
                        "a batch holds at most " + std::to_string(max_batch) + " messages",
                        {{"field", "messages"}, {"max", max_batch}});
                std::size_t index = body.messages.size();
                body.errors.emplace_back();
                try {
                    body.messages.push_back(read_envelope(m, {}, {}));
                } catch (const ValidationError& e) {
                    auto details = e.details();
                    details["index"] = index;
                    const std::string what = "message " + std::to_string(index) + ": " + e.what();
                    // A tenantId that is not a string refuses the request, as at the top.
                    const auto field = details.value("field", std::string());
                    if (field == "tenantId" || field == "tenant_id")
                        throw ValidationError(what, details);
                    // The message fails alone, but its tenantId (wherever it stood) is still
                    // checked: a foreign one refuses the whole batch (403).
                    PublishRequest failed;
                    failed.claimed_tenant = claimed_tenant_of(m);
                    body.messages.push_back(std::move(failed));
                    body.errors.back() = ValidationError(what, details);
                }
            }
        } else if (std::find(extras.begin(), extras.end(), key) != extras.end()) {
            take_extra(key, v);
        } else {
            throw ValidationError("unknown field \"" + std::string(key) + "\"",
                                  {{"field", std::string(key)}});
        }
    }
    if (body.messages.empty())
        throw ValidationError("\"messages\" must hold at least one message",
                              {{"field", "messages"}});
    return body;
}

void apply_trace_context(PublishRequest& r, std::string_view traceparent,
                         std::string_view tracestate) {
    if (traceparent.empty()) return;
    auto parent = trace::parse_traceparent(traceparent);
    if (!parent) return;  // malformed: ignored, never an error (W3C §3.2.2.7 / §3.3.2)
    r.trace_id = std::move(parent->trace_id);
    r.trace_parent_id = std::move(parent->parent_id);
    r.trace_flags = std::move(parent->flags);
    r.trace_state.clear();
    if (!tracestate.empty())
        if (auto state = trace::parse_tracestate(tracestate)) r.trace_state = std::move(*state);
}

}  // namespace mq
