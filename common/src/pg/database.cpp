#include "mq/pg/database.hpp"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <set>

namespace mq::pg {

namespace {

using ConninfoOptions = std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption*)>;

// libpq's reading of a URL or key=value string (null when it cannot read it; `error`, if
// given, gets libpq's message, which may quote the text).
ConninfoOptions parse_conninfo(std::string_view url, std::string* error = nullptr) {
    char* message = nullptr;
    ConninfoOptions options(PQconninfoParse(std::string(url).c_str(), &message), PQconninfoFree);
    if (error) *error = message ? message : (options ? "" : "out of memory");
    PQfreemem(message);
    return options;
}

// A key=value value in single quotes, \\ and \' escaped (libpq's syntax).
std::string quoted(std::string_view value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\\' || c == '\'') out += '\\';
        out += c;
    }
    return out + "'";
}

}  // namespace

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

std::string connection_string(const std::string& url) {
    std::string why;
    auto options = parse_conninfo(url, &why);
    if (!options) {
        // libpq's message quotes the text it could not read: only its kind is kept.
        spdlog::debug("libpq could not parse a connection string: {}",
                      scrub(why, url).substr(0, 200));
        throw ValidationError(
            "a PostgreSQL URL (DATABASE_URL, --database-url or an outbox URL) is not one "
            "libpq can read; give "
            "postgresql://user:password@host:5432/database (percent-encode special "
            "characters in the password) or key=value pairs",
            {{"field", "DATABASE_URL"}});
    }
    std::string out;
    std::set<std::string> given;
    for (const PQconninfoOption* o = options.get(); o->keyword; ++o) {
        if (!o->val) continue;
        given.insert(o->keyword);
        if (!out.empty()) out += ' ';
        out += std::string(o->keyword) + "=" + quoted(o->val);
    }
    for (const auto& [key, value] :
         std::initializer_list<std::pair<const char*, const char*>>{{"connect_timeout", "10"},
                                                                    {"keepalives_idle", "30"},
                                                                    {"keepalives_interval", "10"},
                                                                    {"keepalives_count", "3"}})
        if (!given.count(key)) out += std::string(out.empty() ? "" : " ") + key + "=" + value;
    return out;
}

std::string scrub(std::string text, std::string_view url) {
    auto replace_all = [&](std::string_view what) {
        if (what.size() < 3) return;  // too short to be told from other text
        for (std::size_t at = text.find(what); at != std::string::npos;
             at = text.find(what, at + 3))
            text.replace(at, what.size(), "***");
    };
    replace_all(url);
    if (auto options = parse_conninfo(url))
        for (const PQconninfoOption* o = options.get(); o->keyword; ++o)
            if (o->val && std::string_view(o->keyword) == "password") replace_all(o->val);
    // The password as written in a URL (percent-encoded) too.
    if (auto scheme = url.find("://"); scheme != std::string_view::npos) {
        std::string_view rest = url.substr(scheme + 3);
        if (auto at = rest.rfind('@'); at != std::string_view::npos) {
            std::string_view userinfo = rest.substr(0, at);
            if (auto colon = userinfo.find(':'); colon != std::string_view::npos)
                replace_all(userinfo.substr(colon + 1));
        }
    }
    return text;
}

Database::Database(std::string url) : url_(std::move(url)) {
    conninfo_ = connection_string(url_);
    ensure_connected();
}

void Database::ensure_connected() {
    if (conn_ && conn_->is_open()) return;
    prepared_.clear();
    try {
        conn_ = std::make_unique<pqxx::connection>(conninfo_);
    } catch (const std::exception& e) {
        conn_.reset();
        std::string detail = scrub(e.what(), url_);
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
    std::string detail = scrub(e.what(), url_);
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
    // statement_timeout (a bounded query ran out of time): the server is busy or the
    // query too wide; the caller may narrow it or try again.
    if (sqlstate() == "57014") {
        spdlog::warn("PostgreSQL cancelled a query: {}", detail);
        throw Error(ErrorCode::kOverloaded,
                    "the database stopped a query that ran past its time limit; narrow it "
                    "(a later since, a status) or try again later",
                    {{"sqlstate", "57014"}});
    }
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
