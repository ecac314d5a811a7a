#pragma once

// Test harness: the services started by the ctest fixture (scripts/mq-services), a
// unique namespace per test (key prefix in Redis, tenant in PostgreSQL), cleaned up by
// RAII, and a way to run mqctl like an operator would.

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "mq/config/config.hpp"
#include "mq/core/keys.hpp"
#include "mq/pg/database.hpp"
#include "mq/queue/catalog.hpp"
#include "mq/redis/client.hpp"

namespace mqtest {

/// REDIS_URL and DATABASE_URL of the fixture's services (from $MQ_TEST_ENV).
struct Services {
    std::string redis_url;
    std::string database_url;
    int redis_port = 0;
    int pg_port = 0;
};
const Services& services();

/// A name no other test uses: "<stem>-<random hex>".
std::string unique_name(const std::string& stem);

/// A loopback port nothing listens on (for "backend down" tests).
int dead_port();

/// A Redis connection plus a unique key prefix; every key under the prefix is removed
/// when the scope ends.
class RedisScope {
  public:
    RedisScope();
    ~RedisScope();
    mq::redis::Connection& redis() { return *redis_; }
    const std::string& prefix() const { return prefix_; }
    mq::KeyLayout keys() const { return mq::KeyLayout(prefix_); }
    /// A second connection to the same server (for concurrent tests).
    std::unique_ptr<mq::redis::Connection> connect() const;
    /// Every key under the prefix.
    std::vector<std::string> all_keys();

  private:
    std::string prefix_;
    std::unique_ptr<mq::redis::Connection> redis_;
};

/// Names of the consumer groups on a stream (XINFO GROUPS); empty when there is no stream.
std::set<std::string> group_names(mq::redis::Connection& redis, const std::string& stream);

/// A tenant of its own in the migrated test database; its queues and the tenant row are
/// removed when the scope ends.
class TenantScope {
  public:
    TenantScope();
    ~TenantScope();
    mq::pg::Database& db() { return *db_; }
    mq::Catalog& catalog() { return *catalog_; }
    const std::string& tenant() const { return tenant_; }
    /// Runs SQL directly (for arranging rows a test needs, e.g. a subscription).
    void exec(const std::string& sql);

  private:
    std::string tenant_;
    std::unique_ptr<mq::pg::Database> db_;
    std::unique_ptr<mq::Catalog> catalog_;
};

/// Runs `sql` on the fixture database outside a transaction (e.g. CREATE DATABASE).
void exec_admin(const std::string& sql);
/// The fixture's DATABASE_URL with another database name.
std::string database_url_for(const std::string& dbname);

/// What a finished mqctl run left.
struct Run {
    int status = -1;
    std::string out;
    std::string err;
};

/// Runs mqctl with `args`, the fixture's REDIS_URL/DATABASE_URL plus `env` (which may
/// override them), standard input from `input` (empty: /dev/null, never a terminal).
Run mqctl(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
          const std::string& input = {});

/// Where the mqctl binary under test is.
std::string mqctl_path();

/// Writes `content` to a new temporary file and returns its path (removed at exit).
std::string temp_file(const std::string& content);

}  // namespace mqtest
