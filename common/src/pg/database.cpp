#include "mq/pg/database.hpp"

#include <spdlog/spdlog.h>

namespace mq::pg {

std::string describe_url(std::string_view url) {
    std::string host = "localhost", port = "5432";
    if (url.find("://") != std::string_view::npos) {
        std::string_view rest = url.substr(url.find("://") + 3);
        rest = rest.substr(0, rest.find_first_of("/?"));
        if (auto at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
        if (auto colon = rest.rfind(':'); colon != std::string_view::npos && rest.back() != ']') {
            port = std::string(rest.substr(colon + 1));
            rest = rest.substr(0, colon);
        }
        if (!rest.empty()) host = std::string(rest);
    } else {
        // key=value form: host=... port=...
        auto value = [&](std::string_view key) -> std::string {
            auto pos = url.find(key);
            if (pos == std::string_view::npos) return {};
            auto start = pos + key.size();
            return std::string(url.substr(start, url.find(' ', start) - start));
        };
        if (auto h = value("host="); !h.empty()) host = h;
        if (auto p = value("port="); !p.empty()) port = p;
    }
    return host + ":" + port;
}

Database::Database(std::string url) : url_(std::move(url)) { ensure_connected(); }

void Database::ensure_connected() {
    if (conn_ && conn_->is_open()) return;
    prepared_.clear();
    try {
        conn_ = std::make_unique<pqxx::connection>(url_);
    } catch (const std::exception& e) {
        conn_.reset();
        std::string detail = e.what();
        if (auto nl = detail.find('\n'); nl != std::string::npos) detail.resize(nl);
        throw BackendUnavailable("cannot reach PostgreSQL at " + describe_url(url_) + " (" +
                                 detail + "); is it running? set DATABASE_URL");
    }
}

pqxx::connection& Database::connection() {
    ensure_connected();
    return *conn_;
}

void Database::prepare(const Statement& st) {
    if (prepared_.count(st.name)) return;
    conn_->prepare(st.name, st.sql);
    prepared_.insert(st.name);
}

void Database::rethrow(const std::exception& e) const {
    std::string detail = e.what();
    if (auto nl = detail.find('\n'); nl != std::string::npos) detail.resize(nl);
    if (dynamic_cast<const pqxx::broken_connection*>(&e))
        throw BackendUnavailable("lost connection to PostgreSQL at " + describe_url(url_) + " (" +
                                 detail + "); is it running? set DATABASE_URL");
    if (dynamic_cast<const pqxx::unique_violation*>(&e))
        throw Error(ErrorCode::kConflict, "already exists");
    if (dynamic_cast<const pqxx::check_violation*>(&e) ||
        dynamic_cast<const pqxx::data_exception*>(&e))
        throw ValidationError("value rejected by the database: " + detail);
    spdlog::error("PostgreSQL error: {}", e.what());
    throw Error(ErrorCode::kInternal, "PostgreSQL error: " + detail);
}

}  // namespace mq::pg
