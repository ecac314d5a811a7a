#include "mq/outbox/outbox.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/metrics/exposition.hpp"
#include "mq/pg/listener.hpp"
#include "mq/pg/migrations.hpp"
#include "mq/publish/publish_use_case.hpp"
#include "mq/queue/catalog.hpp"
#include "mq/queue/payload_schema.hpp"

namespace mq {

namespace {

constexpr int kOutboxMigration = 11;
// Longest error text kept in last_error.
constexpr std::size_t kMaxErrorText = 2000;
// How long one wait for a notification lasts: bounds how long stop() takes.
constexpr std::chrono::milliseconds kAwaitSlice{100};

// Headers text longer than this is refused unread (64 headers of a few KiB at most).
constexpr std::int64_t kMaxHeadersText = 262144;

// SELECT ... FOR UPDATE SKIP LOCKED: due pending rows in id order; a row another relay
// holds is skipped, so two relays never publish one row at the same time. A payload over
// $2 bytes or oversized headers are not read (a hostile INSERT must not cost the relay a
// batch of huge rows in memory); their sizes are, so the row fails with the reason. An
// infinite deliver_at (mq.enqueue of 011 accepts one) reads as -1 and fails its row: the
// cast of its epoch would otherwise fail the whole claim, and every later row behind it.
const pg::Statement kClaim{
    "mq_outbox_claim",
    "SELECT id, coalesce(tenant, ''), queue, "
    "CASE WHEN octet_length(payload) <= $2 THEN payload ELSE '' END, coalesce(key, ''), "
    "CASE WHEN octet_length(headers::text) <= $3 THEN headers::text ELSE '{}' END, "
    "coalesce(content_type, ''), coalesce(trace_id, ''), "
    "CASE WHEN deliver_at IS NULL OR deliver_at = '-infinity' THEN 0 "
    "WHEN deliver_at = 'infinity' THEN -1 "
    "ELSE greatest(0, (extract(epoch FROM deliver_at) * 1000)::bigint) END, "
    "octet_length(payload), "
    "octet_length(headers::text) "
    "FROM mq.outbox WHERE failed_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= "
    "now()) ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"};
const pg::Statement kDelete{"mq_outbox_delete",
                            "DELETE FROM mq.outbox WHERE id = ANY($1::bigint[])"};
const pg::Statement kFail{"mq_outbox_fail",
                          "UPDATE mq.outbox SET failed_at = now(), attempts = attempts + 1, "
                          "last_error = $2, next_attempt_at = NULL WHERE id = $1"};
// The wait doubles with each attempt, up to 64 times queue_full_retry: a queue that stays
// full costs one UPDATE per row now and then, not one a second.
const pg::Statement kDefer{"mq_outbox_defer",
                           "UPDATE mq.outbox SET attempts = attempts + 1, last_error = $2, "
                           "next_attempt_at = now() + $3 * power(2, least(attempts, 6)) * "
                           "interval '1 millisecond' WHERE id = $1"};
const pg::Statement kInstance{"mq_outbox_instance", "SELECT id::text FROM mq.outbox_settings"};
const pg::Statement kInstalled{"mq_outbox_installed",
                               "SELECT to_regclass('mq.outbox') IS NOT NULL AND "
                               "to_regclass('mq.outbox_settings') IS NOT NULL"};
const pg::Statement kCounts{
    "mq_outbox_counts",
    "SELECT count(*) FILTER (WHERE failed_at IS NULL), count(*) FILTER (WHERE failed_at IS NOT "
    "NULL), coalesce((extract(epoch FROM now() - min(created_at) FILTER (WHERE failed_at IS "
    "NULL)) * 1000)::bigint, 0) FROM mq.outbox"};
const pg::Statement kList{
    "mq_outbox_list",
    "SELECT id, coalesce(tenant, ''), queue, octet_length(payload), coalesce(key, ''), "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), attempts, "
    "coalesce(to_char(next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "''), coalesce(to_char(failed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "''), coalesce(last_error, '') FROM mq.outbox WHERE id > $1 AND (NOT $2 OR failed_at IS "
    "NOT NULL) ORDER BY id LIMIT $3"};
const pg::Statement kRetry{
    "mq_outbox_retry",
    "UPDATE mq.outbox SET failed_at = NULL, next_attempt_at = NULL, attempts = 0, "
    "last_error = NULL WHERE failed_at IS NOT NULL AND ($1 OR id = ANY($2::bigint[]))"};
const pg::Statement kDiscard{
    "mq_outbox_discard",
    "DELETE FROM mq.outbox WHERE failed_at IS NOT NULL AND ($1 OR id = ANY($2::bigint[]))"};
const pg::Statement kNotify{"mq_outbox_notify", "SELECT pg_notify('mq_outbox', '')"};

std::string id_array(const std::vector<std::int64_t>& ids) {
    std::string s = "{";
    for (std::size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
    return s + "}";
}

std::string error_text(const Error& e) {
    std::string s = std::string(code_name(e.code())) + ": " + e.what();
    if (s.size() > kMaxErrorText) s.resize(kMaxErrorText);
    return s;
}

// A code that may go away by itself: the row waits instead of failing.
bool transient(ErrorCode code) {
    return code == ErrorCode::kQueueFull || code == ErrorCode::kBackendUnavailable ||
           code == ErrorCode::kOverloaded || code == ErrorCode::kQuotaExceeded;
}

std::string outbox_sql() {
    for (const auto& m : pg::embedded_migrations())
        if (m.version == kOutboxMigration) return m.sql;
    throw Error(ErrorCode::kInternal, "the outbox migration (011) is not embedded in this build");
}

// One claimed row.
struct Claimed {
    std::int64_t id = 0;
    std::string tenant;
    std::string queue;
    std::string payload;
    std::string key;
    std::string headers;
    std::string content_type;
    std::string trace_id;
    std::int64_t deliver_at_ms = 0;
    std::int64_t payload_bytes = 0;
    std::int64_t headers_bytes = 0;
};

// headers::text of a row: a JSON object of strings (the table only checks "object").
std::map<std::string, std::string> parse_headers(const std::string& text) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) throw ValidationError("headers must be a JSON object of strings");
    std::map<std::string, std::string> out;
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (!it.value().is_string())
            throw ValidationError("header '" + printable(it.key()) +
                                  "' must be a JSON string, not " + it.value().type_name());
        out[it.key()] = it.value().get<std::string>();
    }
    return out;
}

}  // namespace

// ---- OutboxStore ------------------------------------------------------------------------

void OutboxStore::install() {
    const std::string sql = outbox_sql();
    db_.transact([&](pqxx::work& tx) {
        // Two installers at once would race on CREATE ... IF NOT EXISTS.
        tx.exec("SELECT pg_advisory_xact_lock(7263511011)");
        tx.exec(sql);
    });
}

void OutboxStore::require_installed() {
    bool ok =
        db_.transact([&](pqxx::work& tx) { return db_.exec(tx, kInstalled)[0][0].as<bool>(); });
    if (!ok)
        throw Error(ErrorCode::kNotFound,
                    "no outbox in the database at " + pg::describe_url(db_.url()) +
                        " (schema mq, table mq.outbox); run `mqctl outbox install` with "
                        "--outbox-url naming it, or `mqctl db migrate` for mq's own database");
}

std::vector<OutboxRow> OutboxStore::list(bool failed_only, std::int64_t after_id, int limit) {
    if (limit < 1 || limit > 1000) throw ValidationError("--limit must be between 1 and 1000");
    require_installed();
    return db_.transact([&](pqxx::work& tx) {
        std::vector<OutboxRow> rows;
        for (const auto& r : db_.exec(tx, kList, after_id, failed_only, limit)) {
            OutboxRow row;
            row.id = r[0].as<std::int64_t>();
            row.tenant = r[1].as<std::string>();
            row.queue = r[2].as<std::string>();
            row.payload_bytes = r[3].as<std::int64_t>();
            row.key = r[4].as<std::string>();
            row.created_at = r[5].as<std::string>();
            row.attempts = r[6].as<int>();
            row.next_attempt_at = r[7].as<std::string>();
            row.failed_at = r[8].as<std::string>();
            row.last_error = r[9].as<std::string>();
            rows.push_back(std::move(row));
        }
        return rows;
    });
}

std::int64_t OutboxStore::retry(const std::vector<std::int64_t>& ids) {
    require_installed();
    return db_.transact([&](pqxx::work& tx) {
        auto r = db_.exec(tx, kRetry, ids.empty(), id_array(ids));
        if (r.affected_rows() > 0) db_.exec(tx, kNotify);  // delivered at commit
        return static_cast<std::int64_t>(r.affected_rows());
    });
}

std::int64_t OutboxStore::discard(const std::vector<std::int64_t>& ids) {
    require_installed();
    return db_.transact([&](pqxx::work& tx) {
        return static_cast<std::int64_t>(
            db_.exec(tx, kDiscard, ids.empty(), id_array(ids)).affected_rows());
    });
}

OutboxCounts OutboxStore::counts() {
    return db_.transact([&](pqxx::work& tx) {
        auto r = db_.exec(tx, kCounts);
        return OutboxCounts{r[0][0].as<std::int64_t>(), r[0][1].as<std::int64_t>(),
                            r[0][2].as<std::int64_t>()};
    });
}

// ---- OutboxRelay ------------------------------------------------------------------------

/// The relay's connections; used by one thread at a time (the relay's, or the caller's of
/// relay_batch()).
struct OutboxRelay::Backends {
    // Connects to both databases: throws BackendUnavailable when one is down.
    Backends(const OutboxRelayOptions& o, std::shared_ptr<const Keyring> ring)
        : source(o.source.database_url),
          mq(o.database_url),
          schemas(std::make_shared<PayloadSchemaCache>()),
          keyring(std::move(ring)),
          use_case(o.limits, keyring, schemas) {}

    redis::Connection& redis_for(const OutboxRelayOptions& o) {
        if (!redis)
            redis = std::make_unique<redis::Connection>(
                o.redis, redis::ConnectOptions{std::chrono::milliseconds(2000),
                                               std::chrono::milliseconds(5000)});
        return *redis;
    }

    pg::Database source;
    pg::Database mq;
    std::unique_ptr<redis::Connection> redis;
    std::shared_ptr<PayloadSchemaCache> schemas;
    std::shared_ptr<const Keyring> keyring;
    PublishUseCase use_case;
    std::string instance;  // mq.outbox_settings.id of the source, read once
};

/// LISTEN mq_outbox; a notification only records a wake-up.
struct OutboxRelay::Listener {
    explicit Listener(const std::string& url)
        : pg(url, kOutboxChannel, [this](const std::string&) { notified = true; }) {}
    bool notified = false;
    pg::Listener pg;
};

// Backends connect on first use: a relay starts (and mq-worker with it) while a database
// is down, and catches up when it is back.
OutboxRelay::OutboxRelay(OutboxRelayOptions options)
    : options_(std::move(options)),
      keyring_(options_.keyring_file.empty()
                   ? std::make_shared<const Keyring>()
                   : std::make_shared<const Keyring>(Keyring::load(options_.keyring_file))) {
    if (!is_valid_name(options_.source.tenant))
        throw ValidationError("outbox source tenant '" + printable(options_.source.tenant) +
                              "' is not a tenant name");
    if (options_.batch_size < 1) options_.batch_size = 1;
}

OutboxRelay::~OutboxRelay() { stop(); }

OutboxPass OutboxRelay::relay_batch() {
    if (!backends_) backends_ = std::make_unique<Backends>(options_, keyring_);
    Backends& b = *backends_;
    if (b.instance.empty()) {
        OutboxStore(b.source).require_installed();
        // A mistyped tenant would otherwise mark every row failed (queue not found).
        Catalog(b.mq).require_tenant(options_.source.tenant);
        b.instance = b.source.transact(
            [&](pqxx::work& tx) { return b.source.exec(tx, kInstance)[0][0].as<std::string>(); });
    }
    redis::Connection& redis = b.redis_for(options_);
    const std::string& tenant = options_.source.tenant;
    OutboxPass pass = b.source.transact([&](pqxx::work& tx) {
        OutboxPass p;
        std::vector<Claimed> rows;
        for (const auto& r : b.source.exec(tx, kClaim, options_.batch_size,
                                           options_.limits.max_message_size, kMaxHeadersText)) {
            Claimed c;
            c.id = r[0].as<std::int64_t>();
            c.tenant = r[1].as<std::string>();
            c.queue = r[2].as<std::string>();
            c.payload = r[3].as<std::string>();
            c.key = r[4].as<std::string>();
            c.headers = r[5].as<std::string>();
            c.content_type = r[6].as<std::string>();
            c.trace_id = r[7].as<std::string>();
            c.deliver_at_ms = r[8].as<std::int64_t>();
            c.payload_bytes = r[9].as<std::int64_t>();
            c.headers_bytes = r[10].as<std::int64_t>();
            rows.push_back(std::move(c));
        }
        p.claimed = static_cast<std::int64_t>(rows.size());
        if (rows.empty()) return p;

        std::vector<std::int64_t> done;
        std::vector<std::pair<std::int64_t, std::string>> failed;
        std::vector<std::pair<std::int64_t, std::string>> deferred;
        // Per queue, in the order queues first appear; rows of a queue stay in id order.
        std::vector<std::string> order;
        std::map<std::string, std::vector<const Claimed*>> by_queue;
        for (const auto& c : rows) {
            if (c.payload_bytes > options_.limits.max_message_size) {
                failed.emplace_back(
                    c.id, error_text(Error(ErrorCode::kPayloadTooLarge,
                                           "payload is " + std::to_string(c.payload_bytes) +
                                               " bytes, over the limit of " +
                                               std::to_string(options_.limits.max_message_size) +
                                               " bytes (MAX_MESSAGE_SIZE)")));
                continue;
            }
            if (c.headers_bytes > kMaxHeadersText) {
                failed.emplace_back(
                    c.id,
                    error_text(ValidationError("headers are " + std::to_string(c.headers_bytes) +
                                               " bytes of JSON, over the limit of " +
                                               std::to_string(kMaxHeadersText))));
                continue;
            }
            if (c.deliver_at_ms < 0) {
                failed.emplace_back(c.id, error_text(ValidationError(
                                              "deliver_at is 'infinity': give a time at most "
                                              "100 years ahead, or NULL for now")));
                continue;
            }
            if (!c.tenant.empty() && c.tenant != tenant) {
                failed.emplace_back(c.id, std::string(code_name(ErrorCode::kForbidden)) +
                                              ": the row names tenant '" + c.tenant +
                                              "' but this outbox publishes for tenant '" + tenant +
                                              "' only");
                continue;
            }
            auto [it, fresh] = by_queue.try_emplace(c.queue);
            if (fresh) order.push_back(c.queue);
            it->second.push_back(&c);
        }
        Catalog catalog(b.mq);
        Publisher publisher(redis, options_.keys, options_.limits);
        const std::int64_t now = now_ms();
        for (const auto& name : order) {
            const auto& members = by_queue[name];
            std::optional<Queue> queue = catalog.find_queue(tenant, name);
            if (!queue) {
                std::string why = error_text(queue_not_found(tenant, name));
                for (const Claimed* c : members) failed.emplace_back(c->id, why);
                continue;
            }
            std::vector<PublishRequest> requests;
            std::vector<const Claimed*> sent;
            for (const Claimed* c : members) {
                PublishRequest r;
                try {
                    r.headers = parse_headers(c->headers);
                } catch (const Error& e) {
                    failed.emplace_back(c->id, error_text(e));
                    continue;
                }
                r.payload = c->payload;
                r.key = c->key;
                r.content_type = c->content_type;
                r.trace_id = c->trace_id;
                r.idempotency_key = "outbox-" + b.instance + "-" + std::to_string(c->id);
                if (c->deliver_at_ms > now) r.deliver_at_ms = c->deliver_at_ms;
                requests.push_back(std::move(r));
                sent.push_back(c);
            }
            if (requests.empty()) continue;
            std::vector<std::optional<Error>> refused(requests.size());
            AdmittedBatch admitted =
                b.use_case.admit_all(*queue, std::move(requests), std::move(refused),
                                     /*partial=*/true, /*charge_quota=*/false);
            for (std::size_t i = 0; i < admitted.refused.size(); ++i)
                if (admitted.refused[i])
                    failed.emplace_back(sent[i]->id, error_text(*admitted.refused[i]));
            if (admitted.accepted.empty()) continue;
            // Throws BackendUnavailable when Redis fails: the transaction rolls back. A
            // replica that did not confirm a `durability: replica` queue's write is that
            // queue's trouble only: its rows wait (the retry is a duplicate Redis drops by
            // idempotency key) and the other queues' rows go on.
            std::vector<PublishOutcome> outcomes;
            try {
                outcomes = publisher.publish_batch(*queue, admitted.accepted);
            } catch (const Error& e) {
                if (e.code() != ErrorCode::kBackendUnavailable || queue->durability != "replica")
                    throw;
                for (std::size_t i = 0; i < admitted.accepted.size(); ++i)
                    deferred.emplace_back(sent[admitted.index[i]]->id, error_text(e));
                continue;
            }
            for (std::size_t i = 0; i < outcomes.size(); ++i) {
                const Claimed* c = sent[admitted.index[i]];
                const auto& out = outcomes[i];
                if (out.status == PublishStatus::kAccepted) {
                    done.push_back(c->id);
                } else if (out.status == PublishStatus::kDuplicate) {
                    done.push_back(c->id);
                    ++p.duplicates;
                } else {
                    Error e = out.error.value_or(
                        Error(ErrorCode::kPublishFailed, "the publish was refused"));
                    if (transient(e.code()))
                        deferred.emplace_back(c->id, error_text(e));
                    else
                        failed.emplace_back(c->id, error_text(e));
                }
            }
        }
        if (!done.empty()) b.source.exec(tx, kDelete, id_array(done));
        for (const auto& [id, why] : failed) b.source.exec(tx, kFail, id, why);
        for (const auto& [id, why] : deferred)
            b.source.exec(tx, kDefer, id, why,
                          static_cast<std::int64_t>(options_.queue_full_retry.count()));
        p.relayed = static_cast<std::int64_t>(done.size());
        p.failed = static_cast<std::int64_t>(failed.size());
        p.deferred = static_cast<std::int64_t>(deferred.size());
        return p;
    });
    relayed_ += pass.relayed;
    failed_ += pass.failed;
    deferred_ += pass.deferred;
    if (pass.failed > 0)
        spdlog::warn("outbox {}: {} row(s) failed and wait for `mqctl outbox retry`",
                     options_.source.tenant, pass.failed);
    return pass;
}

OutboxPass OutboxRelay::drain() {
    OutboxPass total;
    for (;;) {
        OutboxPass p = relay_batch();
        total.claimed += p.claimed;
        total.relayed += p.relayed;
        total.duplicates += p.duplicates;
        total.failed += p.failed;
        total.deferred += p.deferred;
        // A short batch means nothing due is left (rows another relay holds are its own). A
        // batch of which every row had to wait (a full queue, a missing replica) ends the
        // drain too: going on would only meet those rows again once they are due, so
        // `relay --once` ends and the loop waits its poll interval.
        if (p.claimed < options_.batch_size || stopping_) return total;
        if (p.deferred == p.claimed) return total;
    }
}

void OutboxRelay::start() {
    if (thread_.joinable()) return;
    stopping_ = false;
    thread_ = std::thread([this] { loop(); });
}

void OutboxRelay::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

OutboxRelayStats OutboxRelay::stats() const {
    OutboxRelayStats s;
    s.tenant = options_.source.tenant;
    s.source = pg::describe_url(options_.source.database_url);
    s.relayed = relayed_;
    s.failed = failed_;
    s.deferred = deferred_;
    s.errors = errors_;
    s.up = up_;
    {
        std::lock_guard lock(mu_);
        s.counts = counts_;
    }
    return s;
}

void OutboxRelay::refresh_counts(bool force) {
    auto now = std::chrono::steady_clock::now();
    if (!force && now - counts_at_ < std::chrono::seconds(1)) return;
    OutboxCounts c = OutboxStore(backends_->source).counts();
    std::lock_guard lock(mu_);
    counts_ = c;
    counts_at_ = now;
}

bool OutboxRelay::wait(std::chrono::milliseconds d, Listener* listener) {
    auto until = std::chrono::steady_clock::now() + d;
    while (!stopping_) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left <= std::chrono::milliseconds(0)) return true;
        auto slice = std::min(left, kAwaitSlice);
        if (listener) {
            listener->pg.wait(slice);  // throws when the connection dropped
            if (listener->notified) {
                listener->notified = false;
                return true;
            }
        } else {
            std::unique_lock lock(mu_);
            wake_.wait_for(lock, slice, [this] { return stopping_.load(); });
        }
    }
    return false;
}

void OutboxRelay::loop() {
    const std::string where =
        options_.source.tenant + "@" + pg::describe_url(options_.source.database_url);
    std::unique_ptr<Listener> listener;
    auto backoff = std::chrono::milliseconds(100);
    bool outage = false;
    while (!stopping_) {
        try {
            // LISTEN before the drain, so a row committed in between wakes the next wait.
            if (!listener) listener = std::make_unique<Listener>(options_.source.database_url);
            OutboxPass p = drain();
            refresh_counts(p.claimed > 0);
            up_ = true;
            if (outage) {
                spdlog::info("outbox {}: relaying again", where);
                outage = false;
            }
            backoff = std::chrono::milliseconds(100);
            if (p.relayed > 0) spdlog::debug("outbox {}: relayed {} row(s)", where, p.relayed);
            if (!wait(options_.poll_interval, listener.get())) break;
        } catch (const std::exception& e) {
            ++errors_;
            up_ = false;
            listener.reset();
            // Connections are rebuilt on the next try (pg::Database reconnects itself).
            if (backends_) backends_->redis.reset();
            if (!outage) {
                spdlog::warn("outbox {}: {}; rows stay in the outbox, retrying with backoff", where,
                             e.what());
                outage = true;
            }
            if (!wait(backoff, nullptr)) break;
            backoff = std::min(backoff * 2, options_.max_backoff);
        }
    }
}

std::vector<std::unique_ptr<OutboxRelay>> make_outbox_relays(const Config& config) {
    std::vector<std::unique_ptr<OutboxRelay>> relays;
    for (const auto& source : config.outbox.sources) {
        // A URL libpq cannot read is refused at start (exit 2), not retried forever.
        pg::connection_string(source.database_url);
        OutboxRelayOptions o;
        o.source = source;
        o.database_url = config.database_url;
        o.redis = redis::endpoint_from_config(config);
        o.keys = KeyLayout(config.key_prefix);
        o.limits.max_message_size = config.max_message_size;
        o.keyring_file = config.keyring_file;
        o.batch_size = config.outbox.batch_size;
        o.poll_interval = config.outbox.poll_interval;
        relays.push_back(std::make_unique<OutboxRelay>(std::move(o)));
    }
    return relays;
}

std::vector<prometheus::MetricFamily> outbox_families(
    const std::vector<std::unique_ptr<OutboxRelay>>& relays) {
    if (relays.empty()) return {};  // no relay configured: no families at all
    using prometheus::MetricType;
    metrics::FamilyBuilder relayed("mq_outbox_relayed_total",
                                   "Outbox rows published and deleted by this process",
                                   MetricType::Counter);
    metrics::FamilyBuilder failed("mq_outbox_failed_total",
                                  "Outbox rows this process marked failed (mqctl outbox list "
                                  "--failed)",
                                  MetricType::Counter);
    metrics::FamilyBuilder deferred("mq_outbox_deferred_total",
                                    "Outbox rows put back for later (queue full)",
                                    MetricType::Counter);
    metrics::FamilyBuilder errors("mq_outbox_errors_total",
                                  "Relay batches that failed on a backend (rolled back)",
                                  MetricType::Counter);
    metrics::FamilyBuilder pending("mq_outbox_pending", "Outbox rows waiting to be published",
                                   MetricType::Gauge);
    metrics::FamilyBuilder failed_rows("mq_outbox_failed_rows",
                                       "Outbox rows marked failed, waiting for an operator",
                                       MetricType::Gauge);
    metrics::FamilyBuilder oldest("mq_outbox_oldest_pending_age_seconds",
                                  "Age of the oldest pending outbox row", MetricType::Gauge);
    metrics::FamilyBuilder up("mq_outbox_up",
                              "1 when the relay's last batch reached PostgreSQL and Redis",
                              MetricType::Gauge);
    for (const auto& r : relays) {
        OutboxRelayStats s = r->stats();
        metrics::LabelList labels{{"tenant", s.tenant}, {"source", s.source}};
        relayed.add(labels, static_cast<double>(s.relayed));
        failed.add(labels, static_cast<double>(s.failed));
        deferred.add(labels, static_cast<double>(s.deferred));
        errors.add(labels, static_cast<double>(s.errors));
        pending.add(labels, static_cast<double>(s.counts.pending));
        failed_rows.add(labels, static_cast<double>(s.counts.failed));
        oldest.add(labels, static_cast<double>(s.counts.oldest_pending_age_ms) / 1000.0);
        up.add(labels, s.up ? 1.0 : 0.0);
    }
    return {relayed.take(), failed.take(),      deferred.take(), errors.take(),
            pending.take(), failed_rows.take(), oldest.take(),   up.take()};
}

}  // namespace mq
