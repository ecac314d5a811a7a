#include "mq/maintenance/tasks.hpp"

#include <spdlog/spdlog.h>

#include "mq/consume/dead_letter_archive.hpp"
#include "mq/crypto/keyring.hpp"
#include "mq/history/history.hpp"
#include "mq/queue/catalog.hpp"
#include "mq/queue/trimmer.hpp"
#include "mq/schedule/ticker.hpp"

namespace mq {

namespace {

// A trim call looks at a bounded batch per partition; a queue far behind gets a few more
// calls in the same pass, and the rest at the next one.
constexpr int kTrimCallsPerPass = 20;
// History batches per queue and pass of the writer (HISTORY_BATCH events each, per partition).
constexpr int kHistoryCallsPerPass = 10;

}  // namespace

std::unique_ptr<MaintenanceService> make_maintenance_service(const Config& config,
                                                             std::string instance) {
    const KeyLayout keys(config.key_prefix);
    MaintenanceOptions o;
    o.redis = redis::endpoint_from_config(config);
    o.database_url = config.database_url;
    o.keys = keys;
    o.instance = std::move(instance);
    auto service = std::make_unique<MaintenanceService>(std::move(o));

    // Retention (docs/retention.md): every queue of the shards this instance holds, each second.
    if (config.retention_trim) {
        service->add_queue_task(
            "trim", std::chrono::seconds(1),
            [keys, options = trim_options(config)](redis::Connection& r, const Queue& q) {
                Trimmer trimmer(r, keys, options);
                for (int i = 0; i < kTrimCallsPerPass && trimmer.trim(q).more; ++i) {
                }
            });
    } else {
        spdlog::warn("RETENTION_TRIM=off: streams are not trimmed; Redis memory will grow");
    }

    // The PostgreSQL dead-letter archive keeps rows for DEAD_LETTER_RETENTION.
    service->add_global_task(
        "dead-letter-retention", std::chrono::minutes(10),
        [retention = std::chrono::duration_cast<std::chrono::milliseconds>(
             config.dead_letter_retention)](redis::Connection&, pg::Database& db) {
            if (auto n = purge_archived_dead_letters(db, retention); n > 0)
                spdlog::info("dead-letter archive: removed {} row(s) past DEAD_LETTER_RETENTION",
                             n);
        });

    // Message history (docs/history.md): the buffers of every queue drained to PostgreSQL
    // about every second by the one instance holding the global lease, a bounded number of
    // batches per pass; PostgreSQL down: the pass fails, the buffers keep growing, the next
    // pass catches up.
    service->add_global_task(
        "history-writer", std::chrono::seconds(1),
        [keys, batch = config.history_batch](redis::Connection& r, pg::Database& db) {
            HistoryWriterOptions options;
            options.batch = batch;
            HistoryWriter writer(r, db, keys, options);
            for (const Queue& q : Catalog(db).all_queues())
                for (int i = 0; i < kHistoryCallsPerPass && writer.drain(q).more; ++i) {
                }
        });
    // ... and kept for HISTORY_RETENTION.
    service->add_global_task(
        "history-retention", std::chrono::minutes(1),
        [retention = std::chrono::duration_cast<std::chrono::milliseconds>(
             config.history_retention)](redis::Connection&, pg::Database& db) {
            if (auto n = HistoryStore(db).purge(retention); n > 0)
                spdlog::info("message history: removed {} event(s) past HISTORY_RETENTION", n);
        });

    // Cron schedules (docs/schedules.md): due ticks published once, about every second.
    std::shared_ptr<const Keyring> keyring;
    if (!config.keyring_file.empty())
        keyring = std::make_shared<const Keyring>(Keyring::load(config.keyring_file));
    TickerOptions ticker;
    ticker.limits.max_message_size = config.max_message_size;
    service->add_global_task(
        "schedules", std::chrono::seconds(1),
        [keys, ticker, keyring](redis::Connection& r, pg::Database& db) mutable {
            ticker.keyring = keyring.get();
            ScheduleTicker(db, r, keys, ticker).run_due(std::chrono::system_clock::now());
        });
    return service;
}

}  // namespace mq
