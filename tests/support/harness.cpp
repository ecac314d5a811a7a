#include "harness.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

#include "mq/pg/migrations.hpp"

namespace mqtest {

namespace {

std::map<std::string, std::string> read_env_file(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        FAIL("cannot read " << path
                            << "; run the tests through ctest so the services fixture starts them");
    std::map<std::string, std::string> out;
    std::string line;
    while (std::getline(in, line)) {
        auto eq = line.find('=');
        if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    return out + "'";
}

struct TempFiles {
    std::mutex mu;
    std::vector<std::string> paths;
    ~TempFiles() {
        for (const auto& p : paths) std::remove(p.c_str());
    }
};
TempFiles& temp_files() {
    static TempFiles t;
    return t;
}

}  // namespace

const Services& services() {
    static const Services s = [] {
        const char* path = std::getenv("MQ_TEST_ENV");
        if (!path) FAIL("MQ_TEST_ENV is not set; run the tests through ctest");
        auto env = read_env_file(path);
        Services out;
        out.redis_url = env["REDIS_URL"];
        out.database_url = env["DATABASE_URL"];
        out.redis_port = std::atoi(env["MQ_REDIS_PORT"].c_str());
        out.pg_port = std::atoi(env["MQ_PG_PORT"].c_str());
        return out;
    }();
    return s;
}

std::string unique_name(const std::string& stem) {
    static std::mt19937_64 rng{std::random_device{}()};
    static std::mutex mu;
    std::lock_guard lock(mu);
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
    return stem + "-" + std::string(buf, 10);
}

int dead_port() {
    // Bind to an ephemeral port, note it, close it: nothing listens there afterwards.
    // The wildcard address, as mq-api binds it: a port picked on 127.0.0.1 alone may still
    // be held by a connection (or its TIME_WAIT) from 127.0.0.2, which tests also use.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = 0;
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    int port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

RedisScope::RedisScope() : prefix_(unique_name("test") + ":"), redis_(connect()) {}

std::unique_ptr<mq::redis::Connection> RedisScope::connect() const {
    return std::make_unique<mq::redis::Connection>(mq::redis::parse_url(services().redis_url));
}

std::vector<std::string> RedisScope::all_keys() {
    std::vector<std::string> keys;
    // Every master of a cluster holds some of them (one server: masters() is itself).
    for (const auto& node : redis_->masters()) {
        auto& conn = redis_->node(node);
        std::string cursor = "0";
        do {
            auto r = conn.command({"SCAN", cursor, "MATCH", prefix_ + "*", "COUNT", "1000"});
            cursor = r.elements.at(0).str;
            for (const auto& k : r.elements.at(1).elements) keys.push_back(k.str);
        } while (cursor != "0");
    }
    return keys;
}

std::set<std::string> group_names(mq::redis::Connection& redis, const std::string& stream) {
    std::set<std::string> names;
    auto reply = redis.command_raw({"XINFO", "GROUPS", stream});
    if (!reply.is_array()) return names;  // no stream
    for (const auto& g : reply.elements)
        for (std::size_t i = 0; i + 1 < g.elements.size(); i += 2)
            if (g.elements[i].str == "name") names.insert(g.elements[i + 1].str);
    return names;
}

RedisScope::~RedisScope() {
    try {
        auto keys = all_keys();
        for (const auto& k : keys) redis_->command({"UNLINK", k});
    } catch (...) {
        // The test may have broken the connection on purpose; leftovers are prefixed.
    }
}

TenantScope::TenantScope()
    : tenant_(unique_name("t")), db_(std::make_unique<mq::pg::Database>(services().database_url)) {
    static std::once_flag migrated;
    std::call_once(migrated, [&] { mq::pg::migrate(*db_, mq::pg::embedded_migrations()); });
    catalog_ = std::make_unique<mq::Catalog>(*db_);
    catalog_->create_tenant(tenant_, "test tenant", false);
}

TenantScope::~TenantScope() {
    try {
        db_->transact([&](pqxx::work& tx) {
            // Its subscriptions on other tenants' public queues too, or the tenant row stays.
            tx.exec_params("DELETE FROM message_subscriptions WHERE tenant_id = $1", tenant_);
            tx.exec_params("DELETE FROM message_topics WHERE tenant_id = $1", tenant_);
            tx.exec_params("DELETE FROM tenants WHERE id = $1", tenant_);
        });
    } catch (...) {
    }
}

void TenantScope::exec(const std::string& sql) {
    db_->transact([&](pqxx::work& tx) { tx.exec(sql); });
}

void exec_admin(const std::string& sql) {
    pqxx::connection cx(services().database_url);
    pqxx::nontransaction nt(cx);
    nt.exec(sql);
}

std::string database_url_for(const std::string& dbname) {
    std::string url = services().database_url;
    return url.substr(0, url.rfind('/') + 1) + dbname;
}

std::string temp_file(const std::string& content) {
    char tmpl[] = "/tmp/mqtest-XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    close(fd);
    std::ofstream(tmpl, std::ios::binary) << content;
    std::lock_guard lock(temp_files().mu);
    temp_files().paths.push_back(tmpl);
    return tmpl;
}

std::string mqctl_path() { return MQCTL_PATH; }

Run mqctl(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
          const std::string& input) {
    std::map<std::string, std::string> vars{{"REDIS_URL", services().redis_url},
                                            {"DATABASE_URL", services().database_url}};
    for (const auto& [k, v] : env) vars[k] = v;
    std::string out = temp_file(""), err = temp_file("");
    std::string in = input.empty() ? "/dev/null" : temp_file(input);
    std::string cmd = "env -i PATH=/usr/bin:/bin";
    for (const auto& [k, v] : vars) cmd += " " + k + "=" + shell_quote(v);
    cmd += " " + shell_quote(MQCTL_PATH);
    for (const auto& a : args) cmd += " " + shell_quote(a);
    cmd += " <" + shell_quote(in) + " >" + shell_quote(out) + " 2>" + shell_quote(err);
    int rc = std::system(cmd.c_str());
    Run r;
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

}  // namespace mqtest
