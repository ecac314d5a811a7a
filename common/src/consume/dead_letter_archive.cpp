#include "mq/consume/dead_letter_archive.hpp"

#include <openssl/evp.h>

#include <charconv>

#include "mq/consume/consumer.hpp"

namespace mq {

namespace {

constexpr const char* kArchiveGroup = "mq-archive";

const pg::Statement kInsertDeadLetter{
    "mq_insert_dead_letter",
    "INSERT INTO dead_letters (tenant_id, topic_name, subscription_name, partition, message_id, stream_id, "
    "message_key, headers, payload, reason, last_error, attempts, published_at, dead_at) "
    "VALUES ($1, $2, $3, $4, $5::uuid, $6, NULLIF($7, ''), NULLIF($8, '')::jsonb, decode($9, 'base64'), $10, "
    "NULLIF($11, ''), $12, to_timestamp($13::double precision / 1000), to_timestamp($14::double precision / 1000)) "
    "ON CONFLICT (tenant_id, topic_name, partition, stream_id) DO NOTHING"};

std::string base64(const std::string& in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

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
        // First what this consumer read but did not ack (a crash between insert and
        // XACK), then new entries.
        for (const char* from : {"0", ">"}) {
            for (;;) {
                auto r = redis_.command({"XREADGROUP", "GROUP", kArchiveGroup, consumer_, "COUNT",
                                         std::to_string(batch), "STREAMS", dlq, from});
                if (r.is_nil() || r.elements.empty()) break;
                std::vector<Row> rows;
                for (const auto& e : r.elements[0].elements.at(1).elements) {
                    Row row;
                    row.stream_id = e.elements.at(0).str;
                    if (e.elements.at(1).is_array()) {
                        const auto& kv = e.elements.at(1).elements;
                        for (std::size_t i = 0; i + 1 < kv.size(); i += 2) row.fields.emplace_back(kv[i].str, kv[i + 1].str);
                    }
                    rows.push_back(std::move(row));
                }
                if (rows.empty()) break;
                written += db_.transact([&](pqxx::work& tx) {
                    std::int64_t n = 0;
                    for (const auto& row : rows) {
                        if (row.fields.empty()) continue;  // deleted while pending: nothing to keep
                        std::int64_t dead_ms = to_int(row.get("dlt"));
                        if (dead_ms == 0) dead_ms = to_int(row.stream_id);
                        n += db_.exec(tx, kInsertDeadLetter, q.tenant, q.name, row.get("dls"), p, row.get("id"),
                                      row.stream_id, row.get("k"), row.get("h"), base64(row.get("p")), row.get("dlr"),
                                      row.get("dle"), static_cast<int>(to_int(row.get("dla"))), to_int(row.get("t")),
                                      dead_ms)
                                 .affected_rows();
                    }
                    return n;
                });
                std::vector<std::string> ack{"XACK", dlq, kArchiveGroup};
                for (const auto& row : rows) ack.push_back(row.stream_id);
                redis_.command(ack);
                if (static_cast<int>(rows.size()) < batch) break;
            }
        }
    }
    return written;
}

}  // namespace mq
