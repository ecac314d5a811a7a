#include "mq/schedule/schedule_catalog.hpp"

#include "mq/audit/audit_log.hpp"
#include "mq/core/names.hpp"
#include "mq/queue/catalog.hpp"
#include "mq/queue/payload_schema.hpp"
#include "mq/schedule/cron.hpp"

namespace mq {

namespace {

// Tick times travel as Unix ms: exact both ways (interval arithmetic in microseconds,
// extract() returns numeric since PostgreSQL 14).
#define MQ_MS_TO_TS(p) "('epoch'::timestamptz + (" p ")::bigint * interval '1 millisecond')"
#define MQ_TS_TO_MS(c) "(extract(epoch from " c ") * 1000)::bigint"
#define MQ_SCHEDULE_COLUMNS \
    "id::text, tenant_id, name, queue_name, cron, tz, payload, headers::text, message_key, "      \
    "content_type, status, misfire, " MQ_TS_TO_MS("last_tick_at") ", " MQ_TS_TO_MS("next_tick_at") \
    ", last_message_id, last_error, "                                                             \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "                  \
    "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

const pg::Statement kInsert{
    "mq_schedule_insert",
    "INSERT INTO message_schedules (tenant_id, name, queue_name, cron, tz, payload, headers, "
    "message_key, "
    "content_type, status, misfire, next_tick_at) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, "
    "$9, $10, $11, " MQ_MS_TO_TS(
        "$12") ") ON CONFLICT (tenant_id, name) DO NOTHING RETURNING " MQ_SCHEDULE_COLUMNS};
const pg::Statement kList{"mq_schedule_list",
                          "SELECT " MQ_SCHEDULE_COLUMNS
                          " FROM message_schedules WHERE tenant_id = $1 ORDER BY name"};
const pg::Statement kGet{"mq_schedule_get",
                         "SELECT " MQ_SCHEDULE_COLUMNS
                         " FROM message_schedules WHERE tenant_id = $1 AND name = $2"};
const pg::Statement kLock{"mq_schedule_lock",
                          "SELECT " MQ_SCHEDULE_COLUMNS
                          " FROM message_schedules WHERE tenant_id = $1 AND name = $2 FOR UPDATE"};
const pg::Statement kUpdate{
    "mq_schedule_update",
    "UPDATE message_schedules SET queue_name = $3, cron = $4, tz = $5, payload = $6, headers = $7::jsonb, "
    "message_key = $8, content_type = $9, status = $10, misfire = $11, next_tick_at = " MQ_MS_TO_TS("$12") ", "
    "updated_at = now() WHERE tenant_id = $1 AND name = $2 RETURNING " MQ_SCHEDULE_COLUMNS};
const pg::Statement kDelete{"mq_schedule_delete",
                            "DELETE FROM message_schedules WHERE tenant_id = $1 AND name = $2 "
                            "RETURNING " MQ_SCHEDULE_COLUMNS};
const pg::Statement kDue{"mq_schedule_due",
                         "SELECT " MQ_SCHEDULE_COLUMNS
                         " FROM message_schedules WHERE status = 'active' AND "
                         "next_tick_at <= " MQ_MS_TO_TS("$1") " AND ($3::text = '' OR tenant_id = $3::text) "
                         "ORDER BY next_tick_at LIMIT $2"};
const pg::Statement kRecordTick{
    "mq_schedule_record_tick",
    "UPDATE message_schedules SET last_tick_at = " MQ_MS_TO_TS("$3") ", next_tick_at = " MQ_MS_TO_TS("$4") ", "
    "last_message_id = CASE WHEN $5::text = '' THEN last_message_id ELSE $5::text END, last_error = $6::text "
    "WHERE id = $1::uuid AND status = 'active' AND next_tick_at = " MQ_MS_TO_TS("$2")};

Schedule from_row(const pqxx::row& r) {
    Schedule s;
    s.id = r[0].as<std::string>();
    s.tenant = r[1].as<std::string>();
    s.name = r[2].as<std::string>();
    s.queue = r[3].as<std::string>();
    s.cron = r[4].as<std::string>();
    s.tz = r[5].as<std::string>();
    s.payload = pqxx::binarystring(r[6]).str();
    s.headers =
        nlohmann::json::parse(r[7].as<std::string>()).get<std::map<std::string, std::string>>();
    s.key = r[8].as<std::string>();
    s.content_type = r[9].as<std::string>();
    s.status = r[10].as<std::string>();
    s.misfire = r[11].as<std::string>();
    if (!r[12].is_null()) s.last_tick_ms = r[12].as<std::int64_t>();
    if (!r[13].is_null()) s.next_tick_ms = r[13].as<std::int64_t>();
    s.last_message_id = r[14].as<std::string>();
    s.last_error = r[15].as<std::string>();
    s.created_at = r[16].as<std::string>();
    s.updated_at = r[17].as<std::string>();
    return s;
}

std::optional<std::int64_t> first_tick(const std::string& cron, const std::string& tz,
                                       std::int64_t now_ms) {
    auto next = CronSchedule(cron, tz).next_after(
        std::chrono::system_clock::time_point(std::chrono::milliseconds(now_ms)));
    if (!next) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::milliseconds>(next->time_since_epoch()).count();
}

}  // namespace

Error schedule_not_found(const std::string& tenant, const std::string& name) {
    return Error(ErrorCode::kNotFound,
                 "schedule '" + printable(name) + "' not found in tenant '" + tenant +
                     "'; list schedules with: mqctl schedule list",
                 {{"schedule", printable(name)}});
}

Schedule ScheduleCatalog::create(const std::string& tenant, const ScheduleSpec& spec,
                                 std::int64_t now_ms) {
    auto next = first_tick(spec.cron, spec.tz, now_ms);
    return db_.transact([&](pqxx::work& tx) {
        auto rows = db_.exec(tx, kInsert, tenant, spec.name, spec.queue, spec.cron, spec.tz,
                             pqxx::binarystring(spec.payload), nlohmann::json(spec.headers).dump(),
                             spec.key, spec.content_type,
                             std::string(spec.paused ? "paused" : "active"), spec.misfire, next);
        if (rows.empty())
            throw Error(ErrorCode::kConflict,
                        "schedule '" + spec.name + "' already exists in tenant '" + tenant + "'",
                        {{"schedule", spec.name}});
        Schedule created = from_row(rows[0]);
        audit::record(
            db_, tx,
            {tenant, "schedule.create", "schedule", created.name, nullptr, to_json(created)});
        return created;
    });
}

std::vector<Schedule> ScheduleCatalog::list(const std::string& tenant) {
    return db_.transact([&](pqxx::work& tx) {
        std::vector<Schedule> out;
        for (const auto& r : db_.exec(tx, kList, tenant)) out.push_back(from_row(r));
        return out;
    });
}

std::optional<Schedule> ScheduleCatalog::find(const std::string& tenant, const std::string& name) {
    if (!is_valid_name(name)) return std::nullopt;
    return db_.transact([&](pqxx::work& tx) -> std::optional<Schedule> {
        auto rows = db_.exec(tx, kGet, tenant, name);
        if (rows.empty()) return std::nullopt;
        return from_row(rows[0]);
    });
}

Schedule ScheduleCatalog::get(const std::string& tenant, const std::string& name) {
    auto s = find(tenant, name);
    if (!s) throw schedule_not_found(tenant, name);
    return *s;
}

namespace {

template <class Change>
Schedule write_locked(pg::Database& db, const std::string& tenant, const std::string& name,
                      const std::string& action, Change&& change) {
    if (!is_valid_name(name)) throw schedule_not_found(tenant, name);
    return db.transact([&](pqxx::work& tx) {
        auto rows = db.exec(tx, kLock, tenant, name);
        if (rows.empty()) throw schedule_not_found(tenant, name);
        Schedule s = from_row(rows[0]);
        const Schedule before = s;
        change(s);
        auto out = db.exec(tx, kUpdate, tenant, name, s.queue, s.cron, s.tz,
                           pqxx::binarystring(s.payload), nlohmann::json(s.headers).dump(), s.key,
                           s.content_type, s.status, s.misfire, s.next_tick_ms);
        Schedule after = from_row(out[0]);
        audit::record(
            db, tx,
            audit::updated(tenant, action, "schedule", name, to_json(before), to_json(after)));
        return after;
    });
}

}  // namespace

Schedule ScheduleCatalog::update(const std::string& tenant, const std::string& name,
                                 const ScheduleChanges& c, std::int64_t now_ms) {
    return write_locked(db_, tenant, name, "schedule.update", [&](Schedule& s) {
        bool timing = (c.cron && *c.cron != s.cron) || (c.tz && *c.tz != s.tz);
        if (c.queue) s.queue = *c.queue;
        if (c.cron) s.cron = *c.cron;
        if (c.tz) s.tz = *c.tz;
        if (c.payload) s.payload = *c.payload;
        if (c.key) s.key = *c.key;
        if (c.content_type) s.content_type = *c.content_type;
        if (c.headers) s.headers = *c.headers;
        if (c.misfire) s.misfire = *c.misfire;
        // Re-checked together: a new zone may come without a new cron and the reverse.
        if (timing) s.next_tick_ms = first_tick(s.cron, s.tz, now_ms);
    });
}

Schedule ScheduleCatalog::set_paused(const std::string& tenant, const std::string& name,
                                     bool paused, std::int64_t now_ms) {
    return write_locked(db_, tenant, name, paused ? "schedule.pause" : "schedule.resume",
                        [&](Schedule& s) {
                            const std::string want = paused ? "paused" : "active";
                            if (s.status == want) return;
                            s.status = want;
                            if (!paused) s.next_tick_ms = first_tick(s.cron, s.tz, now_ms);
                        });
}

void ScheduleCatalog::remove(const std::string& tenant, const std::string& name) {
    if (!is_valid_name(name)) throw schedule_not_found(tenant, name);
    db_.transact([&](pqxx::work& tx) {
        auto rows = db_.exec(tx, kDelete, tenant, name);
        if (rows.empty()) throw schedule_not_found(tenant, name);
        audit::record(
            db_, tx,
            {tenant, "schedule.delete", "schedule", name, to_json(from_row(rows[0])), nullptr});
    });
}

std::vector<Schedule> ScheduleCatalog::due(std::int64_t now_ms, std::size_t limit,
                                           const std::string& tenant) {
    return db_.transact([&](pqxx::work& tx) {
        std::vector<Schedule> out;
        for (const auto& r : db_.exec(tx, kDue, now_ms, static_cast<std::int64_t>(limit), tenant))
            out.push_back(from_row(r));
        return out;
    });
}

bool ScheduleCatalog::record_tick(const std::string& id, std::int64_t expected_next_ms,
                                  std::int64_t tick_ms, std::optional<std::int64_t> next_ms,
                                  const std::string& message_id, const std::string& error) {
    return db_.transact([&](pqxx::work& tx) {
        return db_.exec(tx, kRecordTick, id, expected_next_ms, tick_ms, next_ms, message_id, error)
                   .affected_rows() == 1;
    });
}

namespace {

void check_against_queue(const Queue& q, const std::string& payload) {
    if (!q.schema.is_null()) PayloadSchema(q.schema).check(payload);
}

}  // namespace

Schedule create_schedule(pg::Database& db, const std::string& tenant, const ScheduleSpec& spec,
                         const PublishLimits& limits, std::int64_t now_ms) {
    validate(spec, limits);
    check_against_queue(Catalog(db).get_queue(tenant, spec.queue), spec.payload);
    return ScheduleCatalog(db).create(tenant, spec, now_ms);
}

Schedule update_schedule(pg::Database& db, const std::string& tenant, const std::string& name,
                         const ScheduleChanges& changes, const PublishLimits& limits,
                         std::int64_t now_ms) {
    validate(changes, limits);
    ScheduleCatalog schedules(db);
    auto current = schedules.get(tenant, name);
    if (changes.tz || changes.cron)
        CronSchedule(changes.cron.value_or(current.cron), changes.tz.value_or(current.tz));
    if (changes.queue || changes.payload)
        check_against_queue(Catalog(db).get_queue(tenant, changes.queue.value_or(current.queue)),
                            changes.payload.value_or(current.payload));
    return schedules.update(tenant, name, changes, now_ms);
}

}  // namespace mq
