#include "mq/consume/dead_letter_archive.hpp"

#include <charconv>

#include "mq/consume/consumer.hpp"
#include "mq/core/codec.hpp"

namespace mq {

namespace {

constexpr const char* kArchiveGroup = "mq-archive";

const pg::Statement kInsertDeadLetter{
    "mq_insert_dead_letter",
    "INSERT INTO dead_letters (tenant_id, topic_name, subscription_name, partition, message_id, "
    "stream_id, "
    "message_key, headers, payload, reason, last_error, attempts, published_at, dead_at) "
    "VALUES ($1, $2, $3, $4, $5::uuid, $6, NULLIF($7, ''), NULLIF($8, '')::jsonb, decode($9, "
    "'base64'), $10, "
    "NULLIF($11, ''), $12, to_timestamp($13::double precision / 1000), to_timestamp($14::double "
    "precision / 1000)) "
    "ON CONFLICT (tenant_id, topic_name, partition, stream_id) DO NOTHING"};

// DELETE by age in batches (dead_letters_dead_at_idx), so a large purge never holds one
// long transaction. $1: age in ms, $2: rows per batch.
const pg::Statement kPurgeArchived{
    "mq_purge_archived_dead_letters",
    "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters "
    "WHERE dead_at < now() - $1::bigint * interval '1 millisecond' ORDER BY dead_at LIMIT $2)"};

struct Row {
    std::string stream_id;
    FieldList fields;
    std::string get(const char* name) const {
        for (const auto& [f, v] : fields)
            if (f == name) return v;
        return {};
    }
};

std::int64_t to_int(const std::string& s) {
    std::int64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

}  // namespace

std::int64_t DeadLetterArchiver::archive(const Queue& q, int batch) {
    if (batch < 1 || batch > 10000)
        throw ValidationError("archive batch must be between 1 and 10000", {{"field", "batch"}});
    std::int64_t written = 0;
    for (int p = 0; p < q.partition_count; ++p) {
        const std::string dlq = keys_.dead_letters(q.tenant, q.name, p);
        // No MKSTREAM: a partition without dead letters needs no stream, and the maintenance
        // service must not recreate the keys of a queue deleted since it read the queue list.
        auto created = redis_.command_raw({"XGROUP", "CREATE", dlq, kArchiveGroup, "0"});
        if (created.is_error() &&
            created.str.find("requires the key to exist") != std::string::npos)
            continue;
        if (created.is_error() && created.error_code() != "BUSYGROUP")
            throw Error(ErrorCode::kInternal, "cannot create the archive group: " + created.str);

        // INSERT the rows in one transaction, then XACK them: a crash in between repeats
        // the batch, which ON CONFLICT makes harmless.
        auto store = [&](const redis::Reply& entries) {
            std::vector<Row> rows;
            for (const auto& e : entries.elements) {
                Row row;
                row.stream_id = e.elements.at(0).str;
                if (e.elements.at(1).is_array()) {
                    const auto& kv = e.elements.at(1).elements;
                    for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
                        row.fields.emplace_back(kv[i].str, kv[i + 1].str);
                }
                rows.push_back(std::move(row));
            }
            if (rows.empty()) return std::size_t{0};
            written += db_.transact([&](pqxx::work& tx) {
                std::int64_t n = 0;
                for (const auto& row : rows) {
                    if (row.fields.empty()) continue;  // deleted while pending: nothing to keep
                    std::int64_t dead_ms = to_int(row.get("dlt"));
                    if (dead_ms == 0) dead_ms = to_int(row.stream_id);
                    n += db_.exec(tx, kInsertDeadLetter, q.tenant, q.name, row.get("dls"), p,
                                  row.get("id"), row.stream_id, row.get("k"), row.get("h"),
                                  codec::base64_encode(row.get("p")), row.get("dlr"),
                                  row.get("dle"), static_cast<int>(to_int(row.get("dla"))),
                                  to_int(row.get("t")), dead_ms)
                             .affected_rows();
                }
                return n;
            });
            std::vector<std::string> ack{"XACK", dlq, kArchiveGroup};
            for (const auto& row : rows) ack.push_back(row.stream_id);
            redis_.command(ack);
            return rows.size();
        };
        const auto limit = static_cast<std::size_t>(batch);
        constexpr int kMaxPages = 10000;  // bounded: a pass ends even if entries keep coming

        // 1. What this consumer read but did not ack (a crash between insert and XACK).
        // XREADGROUP GROUP mq-archive <self> COUNT n STREAMS dlq 0 re-reads only its own PEL
        // from the start, so after storing a page, read on after its last id.
        std::string from = "0";
        for (int page = 0; page < kMaxPages; ++page) {
            auto r = redis_.command({"XREADGROUP", "GROUP", kArchiveGroup, consumer_, "COUNT",
                                     std::to_string(batch), "STREAMS", dlq, from});
            if (r.is_nil() || r.elements.empty()) break;
            const auto& entries = r.elements[0].elements.at(1);
            if (entries.elements.empty()) break;
            from = entries.elements.back().elements.at(0).str;
            if (store(entries) < limit) break;
        }
        // 2. Entries any other archiver left pending for claim_idle (it died, or PostgreSQL
        // was down): XAUTOCLAIM dlq mq-archive <self> <min idle> <cursor> COUNT n. Entries
        // deleted meanwhile come back in the third element and are already off the PEL.
        std::string cursor = "0-0";
        for (int page = 0; page < kMaxPages; ++page) {
            auto r = redis_.command({"XAUTOCLAIM", dlq, kArchiveGroup, consumer_,
                                     std::to_string(claim_idle_.count()), cursor, "COUNT",
                                     std::to_string(batch)});
            cursor = r.elements.at(0).str;
            store(r.elements.at(1));
            if (cursor == "0-0") break;
        }
        // 3. New dead letters.
        for (int page = 0; page < kMaxPages; ++page) {
            auto r = redis_.command({"XREADGROUP", "GROUP", kArchiveGroup, consumer_, "COUNT",
                                     std::to_string(batch), "STREAMS", dlq, ">"});
            if (r.is_nil() || r.elements.empty()) break;
            if (store(r.elements[0].elements.at(1)) < limit) break;
        }
    }
    return written;
}

std::int64_t purge_archived_dead_letters(pg::Database& db, std::chrono::milliseconds older_than,
                                         int batch) {
    if (older_than.count() <= 0)
        throw ValidationError("dead-letter retention must be positive",
                              {{"field", "DEAD_LETTER_RETENTION"}});
    if (batch < 1) throw ValidationError("purge batch must be positive", {{"field", "batch"}});
    std::int64_t deleted = 0;
    for (int round = 0; round < 100000; ++round) {  // bounded; each round is one short transaction
        auto n = db.transact([&](pqxx::work& tx) {
            return db.exec(tx, kPurgeArchived, older_than.count(), batch).affected_rows();
        });
        deleted += static_cast<std::int64_t>(n);
        if (n < static_cast<pqxx::result::size_type>(batch)) break;
    }
    return deleted;
}

}  // namespace mq
