#include "mq/consume/subscription_catalog.hpp"

#include <cctype>

#include "mq/audit/audit_log.hpp"
#include "mq/core/names.hpp"
#include "mq/queue/catalog.hpp"

namespace mq {

namespace {

#define MQ_SUB_COLUMNS                                                                             \
    "s.id::text, s.tenant_id, t.name, s.name, s.type, s.handler_config::text, s.start_from, "      \
    "s.max_attempts, s.initial_backoff_ms, s.max_backoff_ms, s.backoff_multiplier, "               \
    "s.backoff_jitter, s.visibility_timeout_ms, s.dead_letter_enabled, "                           \
    "COALESCE(s.filter::text, 'null'), s.concurrency, s.batch_size, s.rate_limit_per_s, "          \
    "s.description, s.status, COALESCE(s.managed_by, ''), "                                        \
    "to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "              \
    "to_char(s.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), t.tenant_id, " \
    "s.origin, s.created_by"
#define MQ_SUB_FROM " FROM message_subscriptions s JOIN message_topics t ON t.id = s.topic_id "

const pg::Statement kInsert{
    "mq_sub_insert",
    // The queue is the subscriber's own ($21 = $1) or another tenant's public one.
    "WITH q AS (SELECT id FROM message_topics WHERE tenant_id = $21 AND name = $2 AND status = "
    "'active' "
    "AND (tenant_id = $1 OR is_public)), "
    "s AS (INSERT INTO message_subscriptions (tenant_id, topic_id, name, consumer_group, type, "
    "handler_config, start_from, max_attempts, initial_backoff_ms, max_backoff_ms, "
    "backoff_multiplier, "
    "backoff_jitter, visibility_timeout_ms, dead_letter_enabled, filter, concurrency, batch_size, "
    "rate_limit_per_s, description, status, managed_by, origin, created_by) "
    "SELECT $1, q.id, $3, $22, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12, $13, "
    "NULLIF($14, 'null')::jsonb, $15, $16, $17, $18, $19, NULLIF($20, ''), $23, $24 FROM q "
    "ON CONFLICT (topic_id, tenant_id, name) DO NOTHING RETURNING *) "
    "SELECT (SELECT count(*) FROM q), (SELECT count(*) FROM s)"};
const pg::Statement kUpdate{
    "mq_sub_update",
    // origin and created_by follow the writer only when type or handler change (or $24 says
    // the writer vouches for them): they always describe who set what would run.
    "UPDATE message_subscriptions s SET "
    "origin = CASE WHEN $24 OR s.type IS DISTINCT FROM $4 OR s.handler_config IS DISTINCT FROM "
    "$5::jsonb THEN $22 ELSE s.origin END, "
    "created_by = CASE WHEN $24 OR s.type IS DISTINCT FROM $4 OR s.handler_config IS DISTINCT "
    "FROM $5::jsonb THEN $23 ELSE s.created_by END, "
    "type = $4, handler_config = $5::jsonb, start_from = $6, "
    "max_attempts = $7, initial_backoff_ms = $8, max_backoff_ms = $9, backoff_multiplier = $10, "
    "backoff_jitter = $11, visibility_timeout_ms = $12, dead_letter_enabled = $13, "
    "filter = NULLIF($14, 'null')::jsonb, concurrency = $15, batch_size = $16, rate_limit_per_s = "
    "$17, "
    "description = $18, status = $19, managed_by = NULLIF($20, ''), updated_at = now() "
    "FROM message_topics t WHERE t.id = s.topic_id AND s.tenant_id = $1 AND t.tenant_id = $21 AND "
    "t.name = $2 "
    "AND s.name = $3 RETURNING s.id"};
const pg::Statement kGet{
    "mq_sub_get", "SELECT " MQ_SUB_COLUMNS MQ_SUB_FROM
                  "WHERE s.tenant_id = $1 AND t.tenant_id = $4 AND t.name = $2 AND s.name = $3"};
const pg::Statement kGetById{"mq_sub_get_by_id", "SELECT " MQ_SUB_COLUMNS MQ_SUB_FROM
                                                 "WHERE s.tenant_id = $1 AND s.id = $2::uuid"};
const pg::Statement kList{
    "mq_sub_list", "SELECT " MQ_SUB_COLUMNS MQ_SUB_FROM
                   "WHERE s.tenant_id = $1 AND ($2 = '' OR (t.name = $2 AND t.tenant_id = $1)) "
                   "AND t.status = 'active' ORDER BY t.name, t.tenant_id, s.name"};
const pg::Statement kListAll{
    "mq_sub_list_all",
    "SELECT " MQ_SUB_COLUMNS MQ_SUB_FROM
    "WHERE t.status = 'active' AND (cardinality($1::text[]) = 0 OR "
    "s.tenant_id = ANY($1::text[])) ORDER BY s.tenant_id, t.name, t.tenant_id, s.name"};
const pg::Statement kListOnQueue{"mq_sub_list_on_queue",
                                 "SELECT " MQ_SUB_COLUMNS MQ_SUB_FROM
                                 "WHERE s.topic_id = $1::uuid ORDER BY s.tenant_id, s.name"};
const pg::Statement kDelete{
    "mq_sub_delete",
    "DELETE FROM message_subscriptions s USING message_topics t WHERE t.id = s.topic_id "
    "AND s.tenant_id = $1 AND t.tenant_id = $4 AND t.name = $2 AND s.name = $3"};
const pg::Statement kStatus{
    "mq_sub_status",
    "UPDATE message_subscriptions s SET status = $4, updated_at = now() FROM message_topics t "
    "WHERE t.id = s.topic_id AND s.tenant_id = $1 AND t.tenant_id = $5 AND t.name = $2 AND s.name "
    "= $3 "
    "RETURNING s.id"};

Subscription from_row(const pqxx::row& r) {
    Subscription s;
    s.id = r[0].as<std::string>();
    s.tenant = r[1].as<std::string>();
    s.queue = r[2].as<std::string>();
    s.name = r[3].as<std::string>();
    s.type = r[4].as<std::string>();
    s.handler = nlohmann::json::parse(r[5].as<std::string>());
    s.start_from = r[6].as<std::string>();
    s.retry.max_attempts = r[7].as<int>();
    s.retry.initial_backoff = std::chrono::milliseconds(r[8].as<std::int64_t>());
    s.retry.max_backoff = std::chrono::milliseconds(r[9].as<std::int64_t>());
    s.retry.multiplier = r[10].as<double>();
    s.retry.jitter = r[11].as<double>();
    s.visibility_timeout = std::chrono::milliseconds(r[12].as<std::int64_t>());
    s.dead_letter = r[13].as<bool>();
    s.filter = nlohmann::json::parse(r[14].as<std::string>());
    s.concurrency = r[15].as<int>();
    s.batch_size = r[16].as<int>();
    if (!r[17].is_null()) s.rate_limit_per_s = r[17].as<double>();
    s.description = r[18].as<std::string>();
    s.status = r[19].as<std::string>();
    s.managed_by = r[20].as<std::string>();
    s.created_at = r[21].as<std::string>();
    s.updated_at = r[22].as<std::string>();
    s.queue_tenant = r[23].as<std::string>();
    s.origin = r[24].as<std::string>();
    s.created_by = r[25].as<std::string>();
    return s;
}

// Parameters $4..$20 shared by insert and update.
template <class Exec>
auto with_settings(const Subscription& s, Exec&& exec) {
    return exec(s.type, s.handler.dump(), s.start_from, s.retry.max_attempts,
                static_cast<std::int64_t>(s.retry.initial_backoff.count()),
                static_cast<std::int64_t>(s.retry.max_backoff.count()), s.retry.multiplier,
                s.retry.jitter, static_cast<std::int64_t>(s.visibility_timeout.count()),
                s.dead_letter, s.filter.dump(), s.concurrency, s.batch_size, s.rate_limit_per_s,
                s.description, s.status, s.managed_by);
}

}  // namespace

Error subscription_not_found(const std::string& tenant, const std::string& queue,
                             const std::string& name) {
    return Error(ErrorCode::kSubscriptionNotFound,
                 "subscription '" + name + "' not found on queue '" + queue + "' in tenant '" +
                     tenant + "'; list them with: mqctl sub list " + queue,
                 {{"queue", queue}, {"subscription", name}});
}

Error subscription_id_not_found(const std::string& tenant, const std::string& id) {
    return Error(ErrorCode::kSubscriptionNotFound,
                 "subscription '" + printable(id) + "' not found in tenant '" + tenant +
                     "'; list them with: mqctl sub list",
                 {{"subscription", printable(id)}});
}

bool is_uuid_text(const std::string& text) {
    if (text.size() != 36) return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i])))
            return false;
    }
    return true;
}

std::string audit_target(const Subscription& s) { return s.queue + "/" + s.name; }

Subscription SubscriptionCatalog::create(
    const Subscription& s, const std::function<void(const Subscription&)>& before_commit) {
    validate(s);
    return db_.transact([&](pqxx::work& tx) {
        auto row = with_settings(s, [&](auto&&... a) {
            return db_.exec(tx, kInsert, s.tenant, s.queue, s.name, a..., queue_owner(s),
                            consumer_group(s), s.origin, s.created_by)[0];
        });
        // Another tenant's private queue is reported exactly like a missing one.
        if (row[0].as<int>() == 0 && is_cross_tenant(s)) throw queue_not_found(s.tenant, s.queue);
        if (row[0].as<int>() == 0)
            throw Error(ErrorCode::kQueueNotFound,
                        "queue '" + s.queue + "' not found in tenant '" + s.tenant + "'",
                        {{"queue", s.queue}});
        if (row[1].as<int>() == 0)
            throw Error(ErrorCode::kConflict,
                        "queue '" + s.queue + "' already has a subscription named '" + s.name + "'",
                        {{"queue", s.queue}, {"subscription", s.name}});
        Subscription created =
            from_row(db_.exec(tx, kGet, s.tenant, s.queue, s.name, queue_owner(s))[0]);
        if (before_commit) before_commit(created);
        audit::record(db_, tx,
                      {created.tenant, "subscription.create", "subscription", audit_target(created),
                       nullptr, to_json(created)});
        return created;
    });
}

Subscription SubscriptionCatalog::update(const Subscription& s, bool vouch_for_handler) {
    validate(s);
    return db_.transact([&](pqxx::work& tx) {
        auto old = db_.exec(tx, kGet, s.tenant, s.queue, s.name, queue_owner(s));
        bool found = !old.empty() && !with_settings(s, [&](auto&&... a) {
                                          return db_.exec(tx, kUpdate, s.tenant, s.queue, s.name,
                                                          a..., queue_owner(s), s.origin,
                                                          s.created_by, vouch_for_handler);
                                      }).empty();
        if (!found) throw subscription_not_found(s.tenant, s.queue, s.name);
        Subscription before = from_row(old[0]);
        Subscription after =
            from_row(db_.exec(tx, kGet, s.tenant, s.queue, s.name, queue_owner(s))[0]);
        audit::record(db_, tx,
                      audit::updated(after.tenant, "subscription.update", "subscription",
                                     audit_target(after), to_json(before), to_json(after)));
        return after;
    });
}

std::vector<Subscription> SubscriptionCatalog::list(const std::string& tenant,
                                                    const std::string& queue) {
    return db_.transact([&](pqxx::work& tx) {
        std::vector<Subscription> out;
        for (const auto& r : db_.exec(tx, kList, tenant, queue)) out.push_back(from_row(r));
        return out;
    });
}

std::vector<Subscription> SubscriptionCatalog::list_all(const std::vector<std::string>& tenants) {
    return db_.transact([&](pqxx::work& tx) {
        std::string arr = "{";
        for (std::size_t i = 0; i < tenants.size(); ++i) {
            validate_name("tenant", tenants[i]);
            arr += (i ? "," : "") + tenants[i];
        }
        arr += "}";
        std::vector<Subscription> out;
        for (const auto& r : db_.exec(tx, kListAll, arr)) out.push_back(from_row(r));
        return out;
    });
}

std::vector<Subscription> SubscriptionCatalog::list_on_queue(const Queue& queue) {
    return db_.transact([&](pqxx::work& tx) {
        std::vector<Subscription> out;
        for (const auto& r : db_.exec(tx, kListOnQueue, queue.id)) out.push_back(from_row(r));
        return out;
    });
}

std::optional<Subscription> SubscriptionCatalog::find(const std::string& tenant,
                                                      const std::string& queue,
                                                      const std::string& name,
                                                      const std::string& queue_tenant) {
    validate_name("queue name", queue);
    validate_name("subscription name", name);
    const std::string& owner = queue_tenant.empty() ? tenant : queue_tenant;
    return db_.transact([&](pqxx::work& tx) -> std::optional<Subscription> {
        auto rows = db_.exec(tx, kGet, tenant, queue, name, owner);
        if (rows.empty()) return std::nullopt;
        return from_row(rows[0]);
    });
}

Subscription SubscriptionCatalog::get(const std::string& tenant, const std::string& queue,
                                      const std::string& name, const std::string& queue_tenant) {
    auto s = find(tenant, queue, name, queue_tenant);
    if (!s) throw subscription_not_found(tenant, queue, name);
    return *s;
}

std::optional<Subscription> SubscriptionCatalog::find_by_id(const std::string& tenant,
                                                            const std::string& id) {
    // Checked here so a malformed id is "not found", never a cast error from PostgreSQL.
    if (!is_uuid_text(id)) return std::nullopt;
    return db_.transact([&](pqxx::work& tx) -> std::optional<Subscription> {
        auto rows = db_.exec(tx, kGetById, tenant, id);
        if (rows.empty()) return std::nullopt;
        return from_row(rows[0]);
    });
}

Subscription SubscriptionCatalog::get_by_id(const std::string& tenant, const std::string& id) {
    auto s = find_by_id(tenant, id);
    if (!s) throw subscription_id_not_found(tenant, id);
    return *s;
}

Subscription SubscriptionCatalog::remove(const std::string& tenant, const std::string& queue,
                                         const std::string& name, const std::string& queue_tenant) {
    Subscription s = get(tenant, queue, name, queue_tenant);
    db_.transact([&](pqxx::work& tx) {
        if (db_.exec(tx, kDelete, tenant, queue, name, queue_owner(s)).affected_rows() == 0)
            throw subscription_not_found(tenant, queue, name);
        audit::record(db_, tx,
                      {s.tenant, "subscription.delete", "subscription", audit_target(s), to_json(s),
                       nullptr});
    });
    return s;
}

Subscription SubscriptionCatalog::set_status(const std::string& tenant, const std::string& queue,
                                             const std::string& name, const std::string& status,
                                             const std::string& queue_tenant) {
    if (status != "active" && status != "paused")
        throw ValidationError("status must be active or paused", {{"field", "status"}});
    const std::string& owner = queue_tenant.empty() ? tenant : queue_tenant;
    return db_.transact([&](pqxx::work& tx) {
        auto old = db_.exec(tx, kGet, tenant, queue, name, owner);
        if (old.empty() || db_.exec(tx, kStatus, tenant, queue, name, status, owner).empty())
            throw subscription_not_found(tenant, queue, name);
        Subscription after = from_row(db_.exec(tx, kGet, tenant, queue, name, owner)[0]);
        audit::record(db_, tx,
                      {after.tenant,
                       status == "paused" ? "subscription.pause" : "subscription.resume",
                       "subscription",
                       audit_target(after),
                       {{"status", from_row(old[0]).status}},
                       {{"status", after.status}}});
        return after;
    });
}

}  // namespace mq
