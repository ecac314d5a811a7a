#include "mq/schedule/schedule.hpp"

#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/schedule/cron.hpp"

namespace mq {

namespace {

bool reserved_header(const std::string& name) {
    return name == kScheduleHeader || name == kScheduleTickHeader || name == kScheduleMissedHeader;
}

void check_misfire(const std::string& m) {
    if (m != "once" && m != "skip")
        throw ValidationError(
            "misfire must be 'once' (publish one message for ticks missed while mq was "
            "down) or 'skip' (publish none), not '" +
                printable(m) + "'",
            {{"field", "misfire"}});
}

void check_message(const std::string& payload, const std::string& key,
                   const std::string& content_type,
                   const std::map<std::string, std::string>& headers, const PublishLimits& limits) {
    for (const auto& [name, value] : headers)
        if (reserved_header(name))
            throw ValidationError("header '" + name + "' is set by mq on every scheduled message",
                                  {{"field", "headers"}, {"header", name}});
    PublishRequest r;
    r.payload = payload;
    r.key = key;
    r.content_type = content_type;
    r.headers = headers;
    validate(r, limits);
}

Error bad_type(const std::string& field, const char* want) {
    return ValidationError(field + " must be " + want, {{"field", field}});
}

std::string get_string(const nlohmann::json& v, const std::string& field) {
    if (!v.is_string()) throw bad_type(field, "a string");
    return v.get<std::string>();
}

std::map<std::string, std::string> get_headers(const nlohmann::json& v) {
    if (!v.is_object()) throw bad_type("headers", "an object of strings");
    std::map<std::string, std::string> out;
    for (const auto& [k, h] : v.items()) {
        if (!h.is_string()) throw bad_type("headers", "an object of strings");
        out[k] = h.get<std::string>();
    }
    return out;
}

// A string payload is sent as is; any other JSON value as its text, typed JSON.
void set_payload(const nlohmann::json& v, std::string& payload,
                 std::optional<std::string>& implied_type) {
    if (v.is_string()) {
        payload = v.get<std::string>();
    } else {
        payload = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
        implied_type = "application/json";
    }
}

template <class Target>
bool read_common(Target& t, const std::string& key, const nlohmann::json& v,
                 std::optional<std::string>& implied) {
    if (key == "queue")
        t.queue = get_string(v, key);
    else if (key == "cron")
        t.cron = get_string(v, key);
    else if (key == "tz")
        t.tz = get_string(v, key);
    else if (key == "key")
        t.key = get_string(v, key);
    else if (key == "content_type")
        t.content_type = get_string(v, key);
    else if (key == "misfire")
        t.misfire = get_string(v, key);
    else if (key == "headers")
        t.headers = get_headers(v);
    else if (key == "payload") {
        std::string p;
        set_payload(v, p, implied);
        t.payload = std::move(p);
    } else
        return false;
    return true;
}

Error unknown_field(const std::string& key) {
    return ValidationError("unknown field '" + printable(key) + "'", {{"field", printable(key)}});
}

}  // namespace

void validate(const ScheduleSpec& spec, const PublishLimits& limits) {
    validate_name("schedule name", spec.name);
    validate_name("queue name", spec.queue);
    CronSchedule(spec.cron, spec.tz);
    check_misfire(spec.misfire);
    check_message(spec.payload, spec.key, spec.content_type, spec.headers, limits);
}

void validate(const ScheduleChanges& c, const PublishLimits& limits) {
    if (c.queue) validate_name("queue name", *c.queue);
    if (c.tz) validate_time_zone(*c.tz);
    if (c.cron) CronSchedule(*c.cron, c.tz.value_or("UTC"));
    if (c.misfire) check_misfire(*c.misfire);
    check_message(c.payload.value_or(""), c.key.value_or(""), c.content_type.value_or(""),
                  c.headers.value_or(std::map<std::string, std::string>{}), limits);
}

ScheduleSpec schedule_spec_from_json(const nlohmann::json& body) {
    if (!body.is_object()) throw ValidationError("the body must be a JSON object");
    ScheduleSpec s;
    std::optional<std::string> implied;
    bool has_name = false, has_queue = false, has_cron = false, has_payload = false,
         has_type = false;
    for (const auto& [key, v] : body.items()) {
        if (key == "name") {
            s.name = get_string(v, key);
            has_name = true;
        } else if (key == "paused") {
            if (!v.is_boolean()) throw bad_type(key, "true or false");
            s.paused = v.get<bool>();
        } else if (!read_common(s, key, v, implied)) {
            throw unknown_field(key);
        }
        has_queue |= key == "queue";
        has_cron |= key == "cron";
        has_payload |= key == "payload";
        has_type |= key == "content_type";
    }
    for (auto [present, field] : {std::pair{has_name, "name"},
                                  {has_queue, "queue"},
                                  {has_cron, "cron"},
                                  {has_payload, "payload"}})
        if (!present)
            throw ValidationError(std::string(field) + " is required", {{"field", field}});
    if (implied && !has_type) s.content_type = *implied;
    return s;
}

ScheduleChanges schedule_changes_from_json(const nlohmann::json& body) {
    if (!body.is_object()) throw ValidationError("the body must be a JSON object");
    ScheduleChanges c;
    std::optional<std::string> implied;
    for (const auto& [key, v] : body.items()) {
        if (key == "name")
            throw ValidationError("a schedule cannot be renamed; leave 'name' out of the update",
                                  {{"field", "name"}});
        if (key == "paused")
            throw ValidationError("use the pause and resume routes to change 'paused'",
                                  {{"field", "paused"}});
        if (!read_common(c, key, v, implied)) throw unknown_field(key);
    }
    if (implied && !c.content_type) c.content_type = *implied;
    if (c.empty()) throw ValidationError("nothing to update: the body sets no field");
    return c;
}

nlohmann::json to_json(const Schedule& s) {
    auto when = [](const std::optional<std::int64_t>& ms) -> nlohmann::json {
        if (!ms) return nullptr;
        return format_rfc3339(*ms);
    };
    nlohmann::json payload = s.payload;
    if (s.content_type == "application/json") {
        auto parsed = nlohmann::json::parse(s.payload, nullptr, false);
        if (!parsed.is_discarded()) payload = std::move(parsed);
    }
    return {{"id", s.id},
            {"tenant", s.tenant},
            {"name", s.name},
            {"queue", s.queue},
            {"cron", s.cron},
            {"tz", s.tz},
            {"payload", std::move(payload)},
            {"key", s.key},
            {"content_type", s.content_type},
            {"headers", s.headers},
            {"status", s.status},
            {"misfire", s.misfire},
            {"last_tick_at", when(s.last_tick_ms)},
            {"next_tick_at", when(s.status == "active" ? s.next_tick_ms : std::nullopt)},
            {"last_message_id",
             s.last_message_id.empty() ? nlohmann::json() : nlohmann::json(s.last_message_id)},
            {"last_error", s.last_error.empty() ? nlohmann::json() : nlohmann::json(s.last_error)},
            {"created_at", s.created_at},
            {"updated_at", s.updated_at}};
}

std::vector<std::int64_t> next_fire_times(const Schedule& s, std::int64_t after_ms, int count) {
    CronSchedule cron(s.cron, s.tz);
    std::vector<std::int64_t> out;
    auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(after_ms));
    for (int i = 0; i < count; ++i) {
        auto next = cron.next_after(t);
        if (!next) break;
        out.push_back(
            std::chrono::duration_cast<std::chrono::milliseconds>(next->time_since_epoch())
                .count());
        t = *next;
    }
    return out;
}

}  // namespace mq
