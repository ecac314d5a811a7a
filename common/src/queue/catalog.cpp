#include "mq/queue/catalog.hpp"

#include <cctype>

#include "mq/audit/audit_log.hpp"
#include "mq/core/names.hpp"

namespace mq {

namespace {

#define MQ_QUEUE_COLUMNS                                                                  \
    "id::text, tenant_id, name, description, partition_count, retention_ms, max_length, " \
    "dedup_window_ms, encryption, is_public, array_to_json(allowed_producers)::text, "    \
    "array_to_json(allowed_consumers)::text, status, "                                    \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "       \
    "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "       \
    "schema_definition::text, record_messages, durability"

// Principal lists travel as JSON text: libpqxx 6 has no array parameters.
#define MQ_TEXT_ARRAY(param) "ARRAY(SELECT jsonb_array_elements_text(" param "::jsonb))"

const pg::Statement kInsertTenant{
    "mq_insert_tenant",
    "INSERT INTO tenants (id, display_name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING"};
const pg::Statement kListTenants{"mq_list_tenants",
                                 "SELECT id, display_name, status, "
                                 "to_char(created_at AT TIME ZONE 'UTC', "
                                 "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM tenants ORDER BY id"};
const pg::Statement kTenantExists{"mq_tenant_exists", "SELECT 1 FROM tenants WHERE id = $1"};
const pg::Statement kInsertQueue{
    "mq_insert_queue",
    "INSERT INTO message_topics (tenant_id, name, description, partition_count, retention_ms, "
    "max_length, dedup_window_ms, schema_definition, encryption, allowed_producers, "
    "allowed_consumers, is_public, record_messages, durability) VALUES ($1, $2, $3, $4, $5, $6, "
    "$7, $8::jsonb, $9, " MQ_TEXT_ARRAY("$10") ", " MQ_TEXT_ARRAY("$11") ", $12, $13, $14) "
    "ON CONFLICT (tenant_id, name) DO NOTHING RETURNING " MQ_QUEUE_COLUMNS};
const pg::Statement kListQueues{
    "mq_list_queues",
    "SELECT " MQ_QUEUE_COLUMNS
    " FROM message_topics WHERE tenant_id = $1 AND status = 'active' ORDER BY name"};
const pg::Statement kAllQueues{
    "mq_all_queues", "SELECT " MQ_QUEUE_COLUMNS
                     " FROM message_topics WHERE status = 'active' ORDER BY tenant_id, name"};
const pg::Statement kGetQueue{
    "mq_get_queue",
    "SELECT " MQ_QUEUE_COLUMNS
    " FROM message_topics WHERE tenant_id = $1 AND name = $2 AND status = 'active'"};
const pg::Statement kGetQueueById{
    "mq_get_queue_by_id",
    "SELECT " MQ_QUEUE_COLUMNS
    " FROM message_topics WHERE tenant_id = $1 AND id = $2::uuid AND status = 'active'"};
const pg::Statement kUpdateQueue{
    "mq_update_queue",
    "UPDATE message_topics SET description = $3, partition_count = $4, retention_ms = $5, "
    "max_length = $6, dedup_window_ms = $7, schema_definition = $8::jsonb, encryption = $9, "
    "allowed_producers = " MQ_TEXT_ARRAY("$10") ", allowed_consumers = " MQ_TEXT_ARRAY("$11") ", "
    "is_public = $12, record_messages = $13, durability = $14, updated_at = now() "
    "WHERE tenant_id = $1 AND name = $2 AND status = 'active' RETURNING " MQ_QUEUE_COLUMNS};
const pg::Statement kGetQueueAnyStatus{"mq_get_queue_any_status",
                                       "SELECT " MQ_QUEUE_COLUMNS
                                       " FROM message_topics WHERE tenant_id = $1 AND name = $2"};
const pg::Statement kLockQueue{
    "mq_lock_queue",
    "SELECT " MQ_QUEUE_COLUMNS
    " FROM message_topics WHERE tenant_id = $1 AND name = $2 AND status = 'active' "
    "FOR UPDATE"};
const pg::Statement kCountSubscriptions{
    "mq_count_subscriptions",
    "SELECT count(*) FROM message_subscriptions WHERE topic_id = $1 AND tenant_id = $2"};
const pg::Statement kMarkDeleting{
    "mq_mark_deleting",
    "UPDATE message_topics SET status = 'deleting', updated_at = now() WHERE id = $1"};
const pg::Statement kDeleteQueue{"mq_delete_queue", "DELETE FROM message_topics WHERE id = $1"};

std::vector<std::string> text_array(const pqxx::field& f) {
    if (f.is_null()) return {};
    return nlohmann::json::parse(f.as<std::string>()).get<std::vector<std::string>>();
}

std::optional<std::string> schema_param(const nlohmann::json& schema) {
    if (schema.is_null()) return std::nullopt;
    return schema.dump();
}

Queue queue_from_row(const pqxx::row& r) {
    Queue q;
    q.id = r[0].as<std::string>();
    q.tenant = r[1].as<std::string>();
    q.name = r[2].as<std::string>();
    q.description = r[3].as<std::string>();
    q.partition_count = r[4].as<int>();
    q.retention = std::chrono::milliseconds(r[5].as<std::int64_t>());
    if (!r[6].is_null()) q.max_length = r[6].as<std::int64_t>();
    q.dedup_window = std::chrono::milliseconds(r[7].as<std::int64_t>());
    q.encryption = r[8].as<std::string>();
    q.is_public = r[9].as<bool>();
    q.allowed_producers = text_array(r[10]);
    q.allowed_consumers = text_array(r[11]);
    q.status = r[12].as<std::string>();
    q.created_at = r[13].as<std::string>();
    q.updated_at = r[14].as<std::string>();
    if (!r[15].is_null()) q.schema = nlohmann::json::parse(r[15].as<std::string>());
    q.record_messages = r[16].as<bool>();
    q.durability = r[17].as<std::string>();
    return q;
}

}  // namespace

Error queue_not_found(const std::string& tenant, const std::string& name) {
    return Error(ErrorCode::kQueueNotFound,
                 "queue '" + name + "' not found in tenant '" + tenant +
                     "'; list queues with: mqctl queue list",
                 {{"queue", name}});
}

bool Catalog::create_tenant(const std::string& id, const std::string& display_name,
                            bool if_not_exists) {
    validate_name("tenant", id);
    bool created = db_.transact([&](pqxx::work& tx) {
        if (db_.exec(tx, kInsertTenant, id, display_name).affected_rows() != 1) return false;
        audit::record(db_, tx,
                      {id,
                       "tenant.create",
                       "tenant",
                       id,
                       nullptr,
                       {{"id", id}, {"display_name", display_name}}});
        return true;
    });
    if (!created && !if_not_exists)
        throw Error(ErrorCode::kConflict, "tenant '" + id + "' already exists", {{"tenant", id}});
    return created;
}

std::vector<Tenant> Catalog::list_tenants() {
    return db_.transact([&](pqxx::work& tx) {
        std::vector<Tenant> out;
        for (const auto& r : db_.exec(tx, kListTenants))
            out.push_back({r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>(),
                           r[3].as<std::string>()});
        return out;
    });
}

void Catalog::require_tenant(const std::string& id) {
    validate_name("tenant", id);
    bool exists =
        db_.transact([&](pqxx::work& tx) { return !db_.exec(tx, kTenantExists, id).empty(); });
    if (!exists)
        throw Error(ErrorCode::kNotFound,
                    "tenant '" + id + "' does not exist; create it with: mqctl tenant create " + id,
                    {{"tenant", id}});
}

Queue Catalog::create_queue(const std::string& tenant, const QueueSpec& spec,
                            const Config& config) {
    validate(spec);
    require_tenant(tenant);
    int partitions = spec.partition_count.value_or(1);
    auto retention = spec.retention.value_or(
        std::chrono::duration_cast<std::chrono::milliseconds>(config.default_ttl));
    std::optional<std::int64_t> max_length =
        spec.max_length ? spec.max_length : config.max_queue_length;
    if (spec.unlimited_length) max_length.reset();
    auto dedup = spec.dedup_window.value_or(std::chrono::hours(24));
    const std::string producers =
        nlohmann::json(spec.allowed_producers.value_or(std::vector<std::string>{})).dump();
    const std::string consumers =
        nlohmann::json(spec.allowed_consumers.value_or(std::vector<std::string>{})).dump();
    return db_.transact([&](pqxx::work& tx) {
        auto rows = db_.exec(tx, kInsertQueue, tenant, spec.name, spec.description, partitions,
                             static_cast<std::int64_t>(retention.count()), max_length,
                             static_cast<std::int64_t>(dedup.count()), schema_param(spec.schema),
                             spec.encryption.value_or("none"), producers, consumers,
                             spec.is_public.value_or(false), spec.record_messages.value_or(false),
                             spec.durability.value_or("leader"));
        if (rows.empty())
            throw Error(ErrorCode::kConflict,
                        "queue '" + spec.name + "' already exists in tenant '" + tenant + "'",
                        {{"queue", spec.name}});
        Queue q = queue_from_row(rows[0]);
        audit::record(db_, tx, {tenant, "queue.create", "queue", q.name, nullptr, to_json(q)});
        return q;
    });
}

std::vector<Queue> Catalog::list_queues(const std::string& tenant) {
    return db_.transact([&](pqxx::work& tx) {
        std::vector<Queue> out;
        for (const auto& r : db_.exec(tx, kListQueues, tenant)) out.push_back(queue_from_row(r));
        return out;
    });
}

std::vector<Queue> Catalog::all_queues() {
    return db_.transact([&](pqxx::work& tx) {
        std::vector<Queue> out;
        for (const auto& r : db_.exec(tx, kAllQueues)) out.push_back(queue_from_row(r));
        return out;
    });
}

std::optional<Queue> Catalog::find_queue(const std::string& tenant, const std::string& name,
                                         bool include_deleting) {
    validate_name("queue name", name);
    return db_.transact([&](pqxx::work& tx) -> std::optional<Queue> {
        auto rows = db_.exec(tx, include_deleting ? kGetQueueAnyStatus : kGetQueue, tenant, name);
        if (rows.empty()) return std::nullopt;
        return queue_from_row(rows[0]);
    });
}

Queue Catalog::get_queue(const std::string& tenant, const std::string& name) {
    auto q = find_queue(tenant, name);
    if (!q) throw queue_not_found(tenant, name);
    return *q;
}

Queue Catalog::get_queue_by_id(const std::string& tenant, const std::string& id) {
    // Only a well-formed uuid reaches the ::uuid cast; anything else is simply not found.
    bool uuid = id.size() == 36;
    for (std::size_t i = 0; uuid && i < id.size(); ++i)
        uuid = (i == 8 || i == 13 || i == 18 || i == 23)
                   ? id[i] == '-'
                   : std::isxdigit(static_cast<unsigned char>(id[i])) != 0;
    auto q = !uuid ? std::nullopt : db_.transact([&](pqxx::work& tx) -> std::optional<Queue> {
        auto rows = db_.exec(tx, kGetQueueById, tenant, id);
        if (rows.empty()) return std::nullopt;
        return queue_from_row(rows[0]);
    });
    if (!q)
        throw Error(ErrorCode::kQueueNotFound,
                    "queue with id '" + printable(id) + "' not found in tenant '" + tenant + "'",
                    {{"queue_id", printable(id)}});
    return *q;
}

Queue Catalog::update_queue(
    const std::string& tenant, const std::string& name, const QueueChanges& changes,
    const std::function<void(const Queue& before, const Queue& after)>& before_commit) {
    validate_name("queue name", name);
    validate(changes);
    return db_.transact([&](pqxx::work& tx) {
        auto rows = db_.exec(tx, kLockQueue, tenant, name);
        if (rows.empty()) throw queue_not_found(tenant, name);
        Queue q = queue_from_row(rows[0]);
        const Queue before = q;
        if (changes.partition_count && *changes.partition_count < q.partition_count)
            throw ValidationError("cannot reduce partitions of queue '" + name + "' from " +
                                      std::to_string(q.partition_count) + " to " +
                                      std::to_string(*changes.partition_count) +
                                      ": entries in the removed partitions would be stranded",
                                  {{"field", "partitions"}});
        if (changes.description) q.description = *changes.description;
        if (changes.partition_count) q.partition_count = *changes.partition_count;
        if (changes.retention) q.retention = *changes.retention;
        if (changes.max_length) q.max_length = *changes.max_length;
        if (changes.dedup_window) q.dedup_window = *changes.dedup_window;
        if (changes.schema) q.schema = *changes.schema;
        if (changes.encryption) q.encryption = *changes.encryption;
        if (changes.allowed_producers) q.allowed_producers = *changes.allowed_producers;
        if (changes.allowed_consumers) q.allowed_consumers = *changes.allowed_consumers;
        if (changes.is_public) q.is_public = *changes.is_public;
        if (changes.record_messages) q.record_messages = *changes.record_messages;
        if (changes.durability) q.durability = *changes.durability;
        auto updated = db_.exec(
            tx, kUpdateQueue, tenant, name, q.description, q.partition_count,
            static_cast<std::int64_t>(q.retention.count()), q.max_length,
            static_cast<std::int64_t>(q.dedup_window.count()), schema_param(q.schema), q.encryption,
            nlohmann::json(q.allowed_producers).dump(), nlohmann::json(q.allowed_consumers).dump(),
            q.is_public, q.record_messages, q.durability);
        Queue after = queue_from_row(updated[0]);
        if (before_commit) before_commit(before, after);
        audit::record(
            db_, tx,
            audit::updated(tenant, "queue.update", "queue", name, to_json(before), to_json(after)));
        return after;
    });
}

int Catalog::subscription_count(const Queue& queue) {
    return db_.transact([&](pqxx::work& tx) {
        return db_.exec(tx, kCountSubscriptions, queue.id, queue.tenant)[0][0].as<int>();
    });
}

void Catalog::mark_deleting(const Queue& queue) {
    db_.transact([&](pqxx::work& tx) { db_.exec(tx, kMarkDeleting, queue.id); });
}

void Catalog::delete_queue_row(const Queue& queue, const nlohmann::json& outcome) {
    db_.transact([&](pqxx::work& tx) {
        db_.exec(tx, kDeleteQueue, queue.id);
        audit::record(db_, tx,
                      {queue.tenant, "queue.delete", "queue", queue.name, to_json(queue), outcome});
    });
}

}  // namespace mq
