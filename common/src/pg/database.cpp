#include "mq/pg/database.hpp"

#include <spdlog/spdlog.h>

namespace mq::pg {

std::string describe_url(std::string_view url) {
    std::string host = "localhost", port = "5432";
    if (auto scheme = url.find("://"); scheme != std::string_view::npos) {
        std::string_view rest = url.substr(scheme + 3);
        // The authority ends at the first '/' or '?' after the last '@' (a password may
        // contain either character unescaped).
        std::size_t at = rest.rfind('@');
        std::size_t from = at == std::string_view::npos ? 0 : at + 1;
        std::string_view authority = rest.substr(from);
        authority = authority.substr(0, authority.find_first_of("/?"));
        if (auto colon = authority.rfind(':');
            colon != std::string_view::npos && authority.back() != ']') {
            port = std::string(authority.substr(colon + 1));
            authority = authority.substr(0, colon);
        }
        if (!authority.empty()) host = std::string(authority);
    } else {
        // key=value form: compare whole keys, never look inside values (a password).
        std::size_t i = 0;
        while (i < url.size()) {
            while (i < url.size() && url[i] == ' ') ++i;
            std::size_t eq = url.find('=', i);
            if (eq == std::string_view::npos) break;
            std::string_view key = url.substr(i, eq - i);
            std::size_t j = eq + 1;
            std::string value;
            if (j < url.size() && url[j] == '\'') {
                for (++j; j < url.size() && url[j] != '\''; ++j) {
                    if (url[j] == '\\' && j + 1 < url.size()) ++j;
                    value += url[j];
                }
                ++j;
            } else {
                while (j < url.size() && url[j] != ' ') value += url[j++];
            }
            if (key == "host" || key == "hostaddr") host = value;
            if (key == "port") port = value;
            i = j;
        }
    }
    if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos)
        return "(unparsed address)";
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
    // PostgreSQL's text names tables, columns and constraints, and quotes values: it goes to
    // the log; the error says what kind of failure it was (mq-api shows none of it for 5xx).
    auto sqlstate = [&] {
        auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
        return sql ? sql->sqlstate() : std::string();
    };
    if (dynamic_cast<const pqxx::check_violation*>(&e) ||
        dynamic_cast<const pqxx::data_exception*>(&e)) {
        spdlog::warn("PostgreSQL rejected a value: {}", detail);
        throw ValidationError("a value was rejected by the database (out of range or malformed)",
                              {{"sqlstate", sqlstate()}});
    }
    spdlog::error("PostgreSQL error: {}", e.what());
    throw Error(ErrorCode::kInternal, "PostgreSQL error (SQLSTATE " + sqlstate() + "): " + detail);
}

}  // namespace mq::pg
