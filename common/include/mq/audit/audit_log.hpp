#pragma once

// The audit log of admin actions (docs/audit.md, table audit_log of migration 010).
//
// Who acts is kept per thread, like the log context: an app states it once per command or
// request (ActingAs), and every catalog method that changes an admin object writes its row
// with record() inside the transaction of the change. The row and the change commit
// together or not at all. Actions whose change lives in Redis only (queue purge,
// dead-letter replay and purge) go through run_recorded().

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mq/pg/database.hpp"

namespace mq::audit {

/// Who performs an admin action.
struct Actor {
    std::string principal;   ///< token principal, OS user (mqctl), "service", "worker"
    std::string token_id;    ///< the API token's id; empty for anything else
    std::string source;      ///< "api", "mqctl", "apply", "worker", "internal"
    std::string request_id;  ///< mq-api's X-Request-Id; empty elsewhere
};

/// The OS user running this process ($USER, else the passwd entry of the uid).
std::string os_user();

/// The process-wide actor used when no ActingAs is in force (mqctl sets the OS user and
/// "mqctl" at start). Unset: the OS user with source "internal".
void set_process_actor(Actor actor);

/// The actor in force on this thread: the innermost ActingAs, else the process actor.
Actor current_actor();

/// Makes `actor` the one this thread acts as until the end of the scope (scopes nest).
/// Must end on the thread it began on.
class ActingAs {
  public:
    explicit ActingAs(Actor actor);
    ~ActingAs();
    ActingAs(const ActingAs&) = delete;
    ActingAs& operator=(const ActingAs&) = delete;

  private:
    const Actor* previous_;
    Actor actor_;
};

/// One admin action: what was done to which object of which tenant.
struct Change {
    std::string tenant;       ///< the tenant the object belongs to (empty: none)
    std::string action;       ///< "queue.create", "subscription.pause", ... (docs/audit.md)
    std::string target_kind;  ///< "queue", "subscription", "token", "tenant", "schedule"
    std::string target;       ///< the object's name ("orders", "orders/billing") or id
    nlohmann::json before;    ///< null for a create
    nlohmann::json after;     ///< null for a delete
};

/// For an update: `before` and `after` cut down to the fields that differ ("updated_at"
/// left out), so a row shows what changed.
Change updated(std::string tenant, std::string action, std::string target_kind, std::string target,
               const nlohmann::json& before, const nlohmann::json& after);

/// `value` with every secret replaced by "***": fields named like a secret (secret,
/// password, token, authorization, api key, private key, signing secret) and every value
/// of a "headers" or "env" object (handler headers carry credentials).
nlohmann::json mask_secrets(nlohmann::json value);

/// Writes the row of `change`, by the current actor, in `tx`: the transaction that makes
/// the change. Secrets are masked here, so no caller can forget.
void record(pg::Database& db, pqxx::transaction_base& tx, const Change& change);

/// Throws BackendUnavailable unless PostgreSQL takes a write now (one empty transaction).
void require_writable(pg::Database& db);

/// Writes the row of an action already done outside PostgreSQL, in a transaction of its
/// own. When that fails, throws BackendUnavailable saying the action was done but not
/// recorded, and logs the row (error level) so it is not lost entirely.
void record_done(pg::Database& db, const Change& change);

/// An action whose change lives in Redis only: refuses (BackendUnavailable, nothing
/// done) unless PostgreSQL takes writes, runs `act`, then records `change` with
/// `after = describe(result)`. An action that throws records nothing.
template <class Act, class Describe>
auto run_recorded(pg::Database& db, Change change, Act&& act, Describe&& describe) {
    require_writable(db);
    auto result = act();
    change.after = describe(result);
    record_done(db, change);
    return result;
}

/// One row as read back.
struct Record {
    std::int64_t id = 0;
    std::string at;  ///< RFC 3339, UTC, milliseconds
    std::string principal;
    std::string token_id;
    std::string tenant;
    std::string source;
    std::string action;
    std::string target_kind;
    std::string target;
    nlohmann::json change;  ///< {"before": ..., "after": ...}
    std::string request_id;
};

/// {"id","at","principal","token_id","tenant","source","action","target":{"kind","name"},
///  "change":{"before","after"},"request_id"}; empty texts are null.
nlohmann::json to_json(const Record& record);

inline constexpr int kDefaultPageSize = 50;
/// The largest page anyone gets, whatever `limit` asks: a huge range is paged, never
/// read at once.
inline constexpr int kMaxPageSize = 500;

/// What to list. Rows come newest first.
struct Query {
    std::optional<std::string> tenant;     ///< nullopt: every tenant (operators, admins)
    std::optional<std::int64_t> since_ms;  ///< Unix ms; rows at or after it
    std::string action;                    ///< exact action, or "queue" for every queue.*
    std::string target;                    ///< object name/id; also matches either part of "a/b"
    int limit = kDefaultPageSize;          ///< 1..kMaxPageSize
    std::optional<std::int64_t> cursor;    ///< from Page::next_cursor: rows older than it
};

/// Builds a Query from text filters named "since" (a duration back from `now_ms`, "1h",
/// or an RFC 3339 time), "action", "target", "limit" and "cursor". Empty values are
/// absent. A malformed one throws ValidationError whose details name the field.
Query parse_query(const std::map<std::string, std::string>& filters, std::int64_t now_ms);

struct Page {
    std::vector<Record> records;
    std::string next_cursor;  ///< empty on the last page
};

/// One page of rows matching `query`.
Page list(pg::Database& db, const Query& query);

}  // namespace mq::audit
