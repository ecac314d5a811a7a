#include "mq/pg/migrations.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "mq/core/codec.hpp"

namespace mq::pg {

namespace {

constexpr long kMigrationLockId = 0x6d715f6d6967;  // "mq_mig"

int version_of(const std::string& file_name) {
    std::size_t i = 0;
    int v = 0;
    while (i < file_name.size() && std::isdigit(static_cast<unsigned char>(file_name[i])))
        v = v * 10 + (file_name[i++] - '0');
    if (i == 0 || i >= file_name.size() || file_name[i] != '_') return -1;
    return v;
}

}  // namespace

std::vector<Migration> load_migrations(const std::string& directory) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(directory, ec))
        throw ValidationError("migrations directory '" + directory + "' does not exist");
    std::map<int, Migration> by_version;
    for (const auto& entry : fs::directory_iterator(directory)) {
        std::string name = entry.path().filename().string();
        if (entry.path().extension() != ".sql") continue;
        int v = version_of(name);
        if (v <= 0)
            throw ValidationError("migration file '" + name +
                                  "' must be named NNN_description.sql with NNN > 0");
        std::ifstream in(entry.path(), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        auto [it, inserted] = by_version.emplace(v, Migration{v, name, ss.str()});
        if (!inserted)
            throw ValidationError("migrations '" + it->second.name + "' and '" + name +
                                  "' have the same number");
    }
    std::vector<Migration> out;
    for (auto& [v, m] : by_version) out.push_back(std::move(m));
    return out;
}

MigrationReport migrate(Database& db, const std::vector<Migration>& migrations) {
    MigrationReport report;
    pqxx::connection& cx = db.connection();
    std::map<int, std::pair<std::string, std::string>> recorded;  // version -> name, checksum
    std::string running;  // the file being applied, for the error message
    // Releases the advisory lock on every path; a failure to unlock ends with the session.
    struct Unlock {
        pqxx::connection& conn;
        ~Unlock() {
            try {
                pqxx::nontransaction nt(conn);
                nt.exec("SELECT pg_advisory_unlock_all()");
            } catch (...) {
            }
        }
    };
    try {
        // A session-level advisory lock: a second migrator waits, then finds nothing to do.
        {
            pqxx::nontransaction nt(cx);
            nt.exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLockId) + ")");
        }
        Unlock unlock{cx};
        {
            pqxx::nontransaction nt(cx);
            nt.exec(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())");
        }
        {
            pqxx::read_transaction rt(cx);
            for (const auto& row : rt.exec("SELECT version, name, checksum FROM schema_migrations"))
                recorded[row[0].as<int>()] = {row[1].as<std::string>(), row[2].as<std::string>()};
        }
        for (const auto& m : migrations) {
            std::string sum = codec::sha256_hex(m.sql);
            if (auto it = recorded.find(m.version); it != recorded.end()) {
                if (it->second.second != sum)
                    throw Error(ErrorCode::kConflict,
                                "migration " + m.name + " was changed after it was applied (" +
                                    it->second.first +
                                    "); add a new migration instead of editing one");
                continue;
            }
            running = m.name;
            pqxx::work tx(cx);
            tx.exec(m.sql);
            tx.exec_params(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                m.version, m.name, sum);
            tx.commit();
            report.applied.push_back(m);
            recorded[m.version] = {m.name, sum};
            running.clear();
        }
    } catch (const mq::Error&) {
        throw;
    } catch (const pqxx::broken_connection& e) {
        db.rethrow(e);
    } catch (const std::exception& e) {
        if (running.empty()) db.rethrow(e);
        std::string detail = e.what();
        if (auto nl = detail.find('\n'); nl != std::string::npos) detail.resize(nl);
        throw Error(ErrorCode::kInternal,
                    "migration " + running + " failed and was rolled back: " + detail);
    }
    report.current_version = recorded.empty() ? 0 : recorded.rbegin()->first;
    return report;
}

}  // namespace mq::pg
