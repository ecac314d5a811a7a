#include "mq/audit/audit_log.hpp"

#include <pwd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>

#include "mq/core/json.hpp"
#include "mq/core/names.hpp"
#include "mq/core/time.hpp"

namespace mq::audit {

namespace {

thread_local const Actor* thread_actor = nullptr;

std::mutex process_mutex;
std::optional<Actor> process_actor;

const pg::Statement kInsert{
    "mq_audit_insert",
    "INSERT INTO audit_log (principal, token_id, tenant_id, source, action, target_kind, target, "
    "change, request_id) VALUES ($1, NULLIF($2, ''), NULLIF($3, ''), $4, $5, $6, $7, $8::jsonb, "
    "NULLIF($9, ''))"};
const pg::Statement kProbe{"mq_audit_probe", "SELECT 1"};
// Parameters: tenant (null: all), since ms (null: any), action ('' any; no dot: a class),
// target ('' any), cursor id (null: newest), limit.
const pg::Statement kList{
    "mq_audit_list",
    "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), principal, "
    "coalesce(token_id, ''), coalesce(tenant_id, ''), source, action, target_kind, target, "
    "change::text, coalesce(request_id, '') FROM audit_log "
    "WHERE ($1::text IS NULL OR tenant_id = $1::text) "
    "AND ($2::bigint IS NULL OR at >= to_timestamp($2::bigint / 1000.0)) "
    "AND ($3::text = '' OR action = $3::text OR split_part(action, '.', 1) = $3::text) "
    "AND ($4::text = '' OR target = $4::text OR split_part(target, '/', 1) = $4::text "
    "     OR split_part(target, '/', 2) = $4::text) "
    "AND ($5::bigint IS NULL OR id < $5::bigint) "
    "ORDER BY id DESC LIMIT $6"};

constexpr std::size_t kMaxFilterLength = 300;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

bool secret_name(const std::string& key) {
    std::string k = lower(key);
    k.erase(std::remove_if(k.begin(), k.end(), [](char c) { return c == '-' || c == '_'; }),
            k.end());
    for (const char* word : {"secret", "password", "passwd", "token", "authorization", "apikey",
                             "privatekey", "credential", "cookie"})
        if (k.find(word) != std::string::npos) return true;
    return false;
}

nlohmann::json mask_all_values(const nlohmann::json& object) {
    if (!object.is_object()) return object.is_null() ? object : nlohmann::json("***");
    nlohmann::json out = nlohmann::json::object();
    for (auto it = object.begin(); it != object.end(); ++it) out[it.key()] = "***";
    return out;
}

std::string checked_filter(const std::string& value, const char* field) {
    if (value.size() > kMaxFilterLength)
        throw ValidationError(std::string(field) + " is longer than " +
                                  std::to_string(kMaxFilterLength) + " characters",
                              {{"field", field}});
    for (unsigned char c : value)
        if (c < 0x20 || c == 0x7f)
            throw ValidationError(std::string(field) + " contains a control character",
                                  {{"field", field}});
    if (!is_valid_utf8(value))
        throw ValidationError(std::string(field) + " is not valid UTF-8", {{"field", field}});
    return value;
}

// jsonb refuses the escape \u0000: a NUL in a text (a binary schedule payload) becomes
// U+FFFD, as invalid UTF-8 does when the row is dumped.
void replace_nul(nlohmann::json& value) {
    if (value.is_string()) {
        auto& text = value.get_ref<std::string&>();
        for (std::size_t at = text.find('\0'); at != std::string::npos; at = text.find('\0', at))
            text.replace(at, 1, "\xEF\xBF\xBD");
    } else if (value.is_array() || value.is_object()) {
        for (auto& v : value) replace_nul(v);
    }
}

}  // namespace

std::string os_user() {
    for (const char* var : {"USER", "LOGNAME"})
        if (const char* v = std::getenv(var); v && *v) return v;
    if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_name) return pw->pw_name;
    return "uid:" + std::to_string(getuid());
}

void set_process_actor(Actor actor) {
    std::lock_guard lock(process_mutex);
    process_actor = std::move(actor);
}

Actor current_actor() {
    if (thread_actor) return *thread_actor;
    std::lock_guard lock(process_mutex);
    if (process_actor) return *process_actor;
    return Actor{os_user(), "", "internal", ""};
}

ActingAs::ActingAs(Actor actor) : previous_(thread_actor), actor_(std::move(actor)) {
    thread_actor = &actor_;
}

ActingAs::~ActingAs() { thread_actor = previous_; }

Change updated(std::string tenant, std::string action, std::string target_kind, std::string target,
               const nlohmann::json& before, const nlohmann::json& after) {
    Change c{std::move(tenant), std::move(action),        std::move(target_kind),
             std::move(target), nlohmann::json::object(), nlohmann::json::object()};
    if (!before.is_object() || !after.is_object()) {
        c.before = before;
        c.after = after;
        return c;
    }
    for (auto it = after.begin(); it != after.end(); ++it) {
        if (it.key() == "updated_at") continue;
        auto old = before.find(it.key());
        if (old == before.end() || *old != it.value()) {
            c.before[it.key()] = old == before.end() ? nlohmann::json() : *old;
            c.after[it.key()] = it.value();
        }
    }
    return c;
}

nlohmann::json mask_secrets(nlohmann::json value) {
    if (value.is_object()) {
        for (auto it = value.begin(); it != value.end(); ++it) {
            const std::string key = lower(it.key());
            if (secret_name(it.key()) && !it.value().is_null())
                it.value() = "***";
            else if (key == "headers" || key == "env")
                it.value() = mask_all_values(it.value());
            else
                it.value() = mask_secrets(std::move(it.value()));
        }
    } else if (value.is_array()) {
        for (auto& v : value) v = mask_secrets(std::move(v));
    }
    return value;
}

void record(pg::Database& db, pqxx::transaction_base& tx, const Change& change) {
    const Actor actor = current_actor();
    nlohmann::json diff = {{"before", mask_secrets(change.before)},
                           {"after", mask_secrets(change.after)}};
    replace_nul(diff);
    db.exec(tx, kInsert, actor.principal.substr(0, 200), actor.token_id, change.tenant,
            actor.source, change.action, change.target_kind, change.target.substr(0, 300),
            diff.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), actor.request_id);
}

void require_writable(pg::Database& db) {
    db.transact([&](pqxx::work& tx) { db.exec(tx, kProbe); });
}

void record_done(pg::Database& db, const Change& change) {
    try {
        db.transact([&](pqxx::work& tx) { record(db, tx, change); });
    } catch (const std::exception& e) {
        const Actor actor = current_actor();
        spdlog::error(
            "audit: {} on {} '{}' of tenant '{}' by {} ({}) was done but could not be recorded: "
            "{}; change: {}",
            change.action, change.target_kind, change.target, change.tenant, actor.principal,
            actor.source, e.what(),
            mask_secrets({{"before", change.before}, {"after", change.after}})
                .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        throw Error(ErrorCode::kBackendUnavailable,
                    change.action + " of '" + change.target +
                        "' was done, but PostgreSQL could not record it in the audit log; "
                        "the action is logged instead",
                    {{"action", change.action}, {"audited", false}});
    }
}

nlohmann::json to_json(const Record& r) {
    auto text = [](const std::string& s) {
        return s.empty() ? nlohmann::json() : nlohmann::json(s);
    };
    return {{"id", std::to_string(r.id)}, {"at", r.at},
            {"principal", r.principal},   {"token_id", text(r.token_id)},
            {"tenant", text(r.tenant)},   {"source", r.source},
            {"action", r.action},         {"target", {{"kind", r.target_kind}, {"name", r.target}}},
            {"change", r.change},         {"request_id", text(r.request_id)}};
}

Query parse_query(const std::map<std::string, std::string>& filters, std::int64_t now_ms) {
    Query q;
    auto get = [&](const char* field) -> std::string {
        auto it = filters.find(field);
        return it == filters.end() ? std::string() : it->second;
    };
    if (auto since = get("since"); !since.empty()) {
        checked_filter(since, "since");
        if (since.find('T') != std::string::npos || since.find('-') != std::string::npos) {
            q.since_ms = parse_rfc3339(since, "since");
        } else {
            auto ago = parse_duration(since, "since");
            q.since_ms = now_ms - static_cast<std::int64_t>(ago.count());
        }
    }
    if (auto action = get("action"); !action.empty()) {
        bool ok = action.size() <= 64 && action.front() != '.' && action.back() != '.' &&
                  std::count(action.begin(), action.end(), '.') <= 1;
        for (char c : action) ok = ok && ((c >= 'a' && c <= 'z') || c == '_' || c == '.');
        if (!ok)
            throw ValidationError(
                "action must look like 'queue.delete' (or a class such as "
                "'queue'), got '" +
                    printable(action.substr(0, 64)) + "'",
                {{"field", "action"}});
        q.action = action;
    }
    q.target = checked_filter(get("target"), "target");
    if (auto limit = get("limit"); !limit.empty()) {
        if (limit.size() > 6 || limit.find_first_not_of("0123456789") != std::string::npos ||
            std::stoi(limit) < 1)
            throw ValidationError("limit must be a whole number from 1 to " +
                                      std::to_string(kMaxPageSize) + ", got '" +
                                      printable(limit.substr(0, 32)) + "'",
                                  {{"field", "limit"}});
        q.limit = std::min(std::stoi(limit), kMaxPageSize);
    }
    if (auto cursor = get("cursor"); !cursor.empty()) {
        if (cursor.size() > 18 || cursor.find_first_not_of("0123456789") != std::string::npos ||
            std::stoll(cursor) < 1)
            throw ValidationError("cursor is not one this listing returned as next_cursor",
                                  {{"field", "cursor"}});
        q.cursor = std::stoll(cursor);
    }
    return q;
}

Page list(pg::Database& db, const Query& query) {
    const int limit = std::clamp(query.limit, 1, kMaxPageSize);
    return db.transact([&](pqxx::work& tx) {
        Page page;
        auto rows = db.exec(tx, kList, query.tenant, query.since_ms, query.action, query.target,
                            query.cursor, limit + 1);
        for (const auto& r : rows) {
            if (static_cast<int>(page.records.size()) == limit) {
                page.next_cursor = std::to_string(page.records.back().id);
                break;
            }
            Record rec;
            rec.id = r[0].as<std::int64_t>();
            rec.at = r[1].as<std::string>();
            rec.principal = r[2].as<std::string>();
            rec.token_id = r[3].as<std::string>();
            rec.tenant = r[4].as<std::string>();
            rec.source = r[5].as<std::string>();
            rec.action = r[6].as<std::string>();
            rec.target_kind = r[7].as<std::string>();
            rec.target = r[8].as<std::string>();
            rec.change = nlohmann::json::parse(r[9].as<std::string>());
            rec.request_id = r[10].as<std::string>();
            page.records.push_back(std::move(rec));
        }
        return page;
    });
}

}  // namespace mq::audit
