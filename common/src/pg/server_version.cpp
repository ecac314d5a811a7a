#include "mq/pg/server_version.hpp"

namespace mq::pg {

std::string server_version(Database& db) {
    return db.transact(
        [](pqxx::work& tx) { return tx.exec1("SHOW server_version")[0].as<std::string>(); });
}

}  // namespace mq::pg
