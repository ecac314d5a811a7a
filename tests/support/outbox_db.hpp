#pragma once

// A service's own database with the outbox installed (`mqctl outbox install`), dropped when
// the scope ends, and what the outbox tests read back from Redis. Header-only.

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"
#include "mq/core/message.hpp"
#include "mq/outbox/outbox.hpp"
#include "mq/redis/client.hpp"

namespace mqtest {

class ServiceDatabase {
  public:
    ServiceDatabase() : name_(unique_name("svc")) {
        for (auto& c : name_)
            if (c == '-') c = '_';
        exec_admin("CREATE DATABASE " + name_);
        url_ = database_url_for(name_);
        db_ = std::make_unique<mq::pg::Database>(url_);
        mq::OutboxStore(*db_).install();
    }
    ~ServiceDatabase() {
        db_.reset();
        try {
            exec_admin("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
        } catch (...) {
        }
    }
    ServiceDatabase(const ServiceDatabase&) = delete;
    ServiceDatabase& operator=(const ServiceDatabase&) = delete;

    const std::string& url() const { return url_; }
    mq::pg::Database& db() { return *db_; }
    void exec(const std::string& sql) {
        db_->transact([&](pqxx::work& tx) { tx.exec(sql); });
    }
    std::int64_t scalar(const std::string& sql) {
        return db_->transact([&](pqxx::work& tx) { return tx.exec1(sql)[0].as<std::int64_t>(); });
    }
    std::int64_t rows() { return scalar("SELECT count(*) FROM mq.outbox"); }
    std::int64_t failed_rows() {
        return scalar("SELECT count(*) FROM mq.outbox WHERE failed_at IS NOT NULL");
    }
    /// `n` rows for `queue` with payloads "<stem>0".."<stem>n-1", one transaction.
    void enqueue_n(const std::string& queue, int n, const std::string& stem = "m") {
        db_->transact([&](pqxx::work& tx) {
            tx.exec_params("SELECT mq.enqueue($1, $2 || g::text) FROM generate_series(0, $3 - 1) g",
                           queue, stem, n);
        });
    }

  private:
    std::string name_;
    std::string url_;
    std::unique_ptr<mq::pg::Database> db_;
};

/// Every message in the streams of `partitions` partitions of a queue, partition by
/// partition, each in stream order.
inline std::vector<mq::Message> stream_messages(mq::redis::Connection& redis,
                                                const mq::KeyLayout& keys,
                                                const std::string& tenant, const std::string& queue,
                                                int partitions = 1) {
    std::vector<mq::Message> out;
    for (int p = 0; p < partitions; ++p) {
        auto reply = redis.command({"XRANGE", keys.stream(tenant, queue, p), "-", "+"});
        for (const auto& entry : reply.elements) {
            mq::FieldList fields;
            const auto& flat = entry.elements.at(1).elements;
            for (std::size_t i = 0; i + 1 < flat.size(); i += 2)
                fields.emplace_back(flat[i].str, flat[i + 1].str);
            out.push_back(mq::decode_fields(fields));
        }
    }
    return out;
}

}  // namespace mqtest
