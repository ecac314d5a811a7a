#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "mq/publish/publisher.hpp"

namespace mq {

/// Headers the ticker sets on every message it publishes; users may not set them.
inline constexpr const char* kScheduleHeader = "mq-schedule";               ///< schedule name
inline constexpr const char* kScheduleTickHeader = "mq-schedule-tick";      ///< tick, RFC 3339 UTC
inline constexpr const char* kScheduleMissedHeader = "mq-schedule-missed";  ///< ticks folded in

/// A cron schedule: publishes `payload` to `queue` at every tick of `cron` in `tz`.
struct Schedule {
    std::string id;
    std::string tenant;
    std::string name;
    std::string queue;
    std::string cron;
    std::string tz = "UTC";
    std::string payload;
    std::string key;
    std::string content_type;
    std::map<std::string, std::string> headers;
    std::string status = "active";             ///< active | paused
    std::string misfire = "once";              ///< once | skip: ticks missed while nothing ran
    std::optional<std::int64_t> last_tick_ms;  ///< Unix ms of the last tick handled
    std::optional<std::int64_t> next_tick_ms;  ///< Unix ms of the next tick due
    std::string last_message_id;
    std::string last_error;  ///< why the last tick published nothing; empty when it did
    std::string created_at;
    std::string updated_at;
};

/// What creating a schedule takes.
struct ScheduleSpec {
    std::string name;
    std::string queue;
    std::string cron;
    std::string tz = "UTC";
    std::string payload;
    std::string key;
    std::string content_type;
    std::map<std::string, std::string> headers;
    std::string misfire = "once";
    bool paused = false;
};

/// A partial update (PUT); unset fields keep their value. The name never changes.
struct ScheduleChanges {
    std::optional<std::string> queue, cron, tz, payload, key, content_type, misfire;
    std::optional<std::map<std::string, std::string>> headers;
    bool empty() const {
        return !queue && !cron && !tz && !payload && !key && !content_type && !misfire && !headers;
    }
};

/// Throws ValidationError (field named in details) for a bad name, queue name, cron
/// expression, time zone, misfire policy, reserved header, or a payload/key/headers over
/// `limits` (payload too large: Error(kPayloadTooLarge)).
void validate(const ScheduleSpec& spec, const PublishLimits& limits);
/// The same checks for the fields an update sets.
void validate(const ScheduleChanges& changes, const PublishLimits& limits);

/// The API body of POST /schedules: name, queue, cron, tz, payload (a string is sent as
/// is, any other JSON value as its text with content type application/json), key,
/// headers, content_type, misfire, paused. Unknown fields and wrong types are refused.
ScheduleSpec schedule_spec_from_json(const nlohmann::json& body);
/// The body of PUT /schedules/{name}: the same fields but name and paused, all optional.
ScheduleChanges schedule_changes_from_json(const nlohmann::json& body);

/// The schedule as the API and `mqctl -o json` show it (tick times in RFC 3339).
nlohmann::json to_json(const Schedule& s);

/// The next `count` fire times of `s` after `after_ms` (Unix ms), for `show`.
std::vector<std::int64_t> next_fire_times(const Schedule& s, std::int64_t after_ms, int count);

}  // namespace mq
