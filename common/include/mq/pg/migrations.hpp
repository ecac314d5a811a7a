#pragma once

#include <string>
#include <vector>

#include "mq/pg/database.hpp"

namespace mq::pg {

/// One numbered SQL file of schemas/migrations: "001_initial.sql" is version 1.
struct Migration {
    int version = 0;
    std::string name;  ///< file name
    std::string sql;
};

/// The migrations compiled into the binary from schemas/migrations at build time, so an
/// installed mqctl needs no source tree.
const std::vector<Migration>& embedded_migrations();

/// Reads NNN_*.sql files from a directory, sorted by version. Throws ValidationError on a
/// file without a number or two files with the same number.
std::vector<Migration> load_migrations(const std::string& directory);

struct MigrationReport {
    std::vector<Migration> applied;  ///< applied by this run, in order
    int current_version = 0;         ///< highest version recorded after the run
};

/// Applies every migration not yet recorded in schema_migrations, each in its own
/// transaction together with its record. Holds an advisory lock so two migrators never
/// race. A recorded migration whose SQL changed since is refused (Conflict).
MigrationReport migrate(Database& db, const std::vector<Migration>& migrations);

}  // namespace mq::pg
