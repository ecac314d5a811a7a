// What answers reveal: backend failures answer a generic message with the request id (the
// backend's text goes to the log), /metrics needs a scrape token and measures the queues in
// the background at most once per period, /health reads and never writes. docs/security.md,
// "What answers reveal" and "Metrics and health".
#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"
#include "private_services.hpp"

using namespace mqtest;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

/// Strings that only backend text or the host layout would put in an answer.
void check_reveals_nothing(const HttpResult& r, const std::vector<std::string>& secrets) {
    INFO(r.status << " " << r.body);
    for (const auto& s : secrets) CHECK(r.body.find(s) == std::string::npos);
    for (const char* word : {"WRONGTYPE", "ERR ", "PostgreSQL at", "Redis at", "SQLSTATE", "pqxx",
                             "/tmp/", "what():", "Connection refused", "127.0.0.1"})
        CHECK(r.body.find(word) == std::string::npos);
}

std::string request_id_of(const HttpResult& r) {
    auto it = r.headers.find("x-request-id");
    return it == r.headers.end() ? "" : it->second;
}

std::int64_t command_calls(mq::redis::Connection& c, const std::string& command) {
    auto stats = c.command({"INFO", "commandstats"}).as_string();
    auto at = stats.find("cmdstat_" + command + ":calls=");
    if (at == std::string::npos) return 0;
    return std::stoll(stats.substr(at + std::string("cmdstat_" + command + ":calls=").size()));
}

}  // namespace

TEST_CASE(
    "a Redis command failure answers a generic error naming the request id and the reason "
    "goes to the log",
    "[security][answers]") {
    ApiSession s;
    auto& api = s.api;
    REQUIRE(api.call_json("POST", "/api/v1/mq/queues", {{"name", "q"}}, s.token).status == 201);
    auto sub =
        api.call_json("POST", "/api/v1/mq/subscriptions", {{"queue", "q"}, {"name", "w"}}, s.token);
    REQUIRE(sub.status == 201);
    const std::string sid = sub.json()["id"];
    // The queue's stream replaced by a string: every stream command on it fails (WRONGTYPE).
    mq::redis::Connection c(mq::redis::parse_url(services().redis_url));
    auto key = mq::KeyLayout(api.key_prefix()).stream(s.tenant.tenant(), "q", 0);
    c.command({"DEL", key});
    c.command({"SET", key, "not a stream"});

    auto pub = api.call_json("POST", "/api/v1/mq/publish", {{"queue", "q"}, {"payload", 1}},
                             s.token, {{"X-Request-Id", "req-publish-1"}});
    INFO(pub.body);
    CHECK(pub.status >= 500);
    check_reveals_nothing(pub, {key});
    CHECK(pub.body.find("req-publish-1") != std::string::npos);
    CHECK(pub.json()["error"]["details"]["request_id"] == "req-publish-1");

    auto pull = api.call_json("POST", "/api/v1/mq/subscriptions/" + sid + "/pull",
                              {{"max_messages", 1}}, s.token);
    INFO(pull.body);
    CHECK(pull.status >= 500);
    check_reveals_nothing(pull, {key});
    const std::string pull_id = request_id_of(pull);
    REQUIRE_FALSE(pull_id.empty());
    CHECK(pull.body.find(pull_id) != std::string::npos);

    auto batch = api.call_json("POST", "/api/v1/mq/publish/batch",
                               {{"queue", "q"}, {"messages", {{{"payload", 1}}}}}, s.token);
    check_reveals_nothing(batch, {key});

    // The operator finds the reason under the request id.
    CHECK(eventually(
        [&] {
            auto log = api.log();
            auto at = log.find("req-publish-1");
            return at != std::string::npos && log.find("WRONGTYPE", at) != std::string::npos;
        },
        5s));
    CHECK(eventually([&] { return api.log().find(pull_id) != std::string::npos; }, 5s));
    c.command({"DEL", key});
}

TEST_CASE("with backends down answers name neither hosts nor ports and /health shows no reasons",
          "[security][answers]") {
    PrivateServices backends;
    REQUIRE(mqctl({"db", "migrate"},
                  {{"REDIS_URL", backends.redis_url()}, {"DATABASE_URL", backends.database_url()}})
                .status == 0);
    ApiOptions options;
    options.redis_url = backends.redis_url();
    options.database_url = backends.database_url();
    options.env["MAINTENANCE"] = "off";
    ApiProcess api(options);
    auto redis_port = backends.redis_url().substr(backends.redis_url().rfind(':') + 1);
    redis_port = redis_port.substr(0, redis_port.find('/'));

    backends.stop_postgres();
    auto health = api.call("GET", "/api/v1/mq/health");
    INFO(health.body);
    CHECK(health.status == 200);  // "degraded": publishing still works without PostgreSQL
    CHECK(health.json()["status"] == "degraded");
    check_reveals_nothing(health, {":" + redis_port});
    CHECK(health.json()["checks"]["postgres"]["status"] == "down");
    CHECK(health.json()["checks"]["postgres"]["error"] == "unavailable");

    // An unknown token needs PostgreSQL to be checked: 503 (or 401), never the reason.
    auto queues = api.call("GET", "/api/v1/mq/queues", "", "mq_unknown_token_123");
    INFO(queues.body);
    CHECK(queues.status != 500);
    check_reveals_nothing(queues, {":" + redis_port});
    if (queues.status == 503) {
        CHECK(queues.error_code() == "MQ_BACKEND_UNAVAILABLE");
        CHECK(queues.headers.count("retry-after") == 1);
        CHECK(queues.body.find(request_id_of(queues)) != std::string::npos);
    }
    backends.start_postgres();
}

TEST_CASE("/metrics answers only the scrape token or an admin token and others learn no queue name",
          "[security][metrics]") {
    TenantScope t;
    ApiProcess api;
    auto admin = create_token(t.tenant(), "admin", "root");
    auto tenant_admin = create_token(t.tenant(), "tenant-admin", "ops");
    auto producer = create_token(t.tenant(), "producer", "app");
    REQUIRE(api.call_json("POST", "/api/v1/mq/queues", {{"name", "very-secret-queue-name"}},
                          tenant_admin)
                .status == 201);

    struct Case {
        std::map<std::string, std::string> headers;
        int status;
    };
    std::vector<Case> refused{
        {{}, 401},
        {{{"Authorization", "Bearer "}}, 401},
        {{{"Authorization", "Bearer wrong-" + kMetricsToken}}, 401},
        {{{"Authorization", "Basic " + kMetricsToken}}, 401},
        {{{"Authorization", kMetricsToken}}, 401},
        {{{"X-Service-Token", kMetricsToken}}, 401},
        {{{"Authorization", "Bearer " + tenant_admin}}, 403},
        {{{"Authorization", "Bearer " + producer}}, 403},
    };
    for (const auto& c : refused) {
        auto r = api.call("GET", "/metrics", "", "", c.headers);
        INFO((c.headers.empty() ? "(none)" : c.headers.begin()->second)
             << " -> " << r.status << " " << r.body);
        CHECK(r.status == c.status);
        CHECK(r.body.find("very-secret-queue-name") == std::string::npos);
        CHECK(r.body.find(t.tenant()) == std::string::npos);
        CHECK(r.body.find("mq_queue") == std::string::npos);
    }
    for (const auto& bearer : {kMetricsToken, admin}) {
        auto r = api.call("GET", "/metrics", "", bearer);
        INFO(r.body.substr(0, 300));
        CHECK(r.status == 200);
        CHECK(r.body.find("very-secret-queue-name") != std::string::npos);
        CHECK(r.body.find("mq_queue_figures_up 1") != std::string::npos);
    }

    // Without METRICS_TOKEN only an admin API token scrapes.
    ApiOptions no_token;
    no_token.env["METRICS_TOKEN"] = "";
    ApiProcess strict(no_token);
    CHECK(strict.call("GET", "/metrics").status == 401);
    CHECK(strict.call("GET", "/metrics", "", kMetricsToken).status == 401);
    CHECK(strict.call("GET", "/metrics", "", tenant_admin).status == 403);
    CHECK(strict.call("GET", "/metrics", "", admin).status == 200);
}

TEST_CASE("a flood of scrapes walks the queues at most once per METRICS_REFRESH_S",
          "[security][metrics]") {
    PrivateRedis redis;
    TenantScope t;
    ApiOptions options;
    options.redis_url = redis.url();
    options.env["METRICS_REFRESH_S"] = "2";
    options.env["MAINTENANCE"] = "off";
    ApiProcess api(options);
    auto token = create_token(t.tenant(), "tenant-admin", "ops");
    for (const char* name : {"a", "b", "c"})
        REQUIRE(
            api.call_json("POST", "/api/v1/mq/queues", {{"name", name}, {"partitions", 4}}, token)
                .status == 201);
    mq::redis::Connection c(mq::redis::parse_url(redis.url()));
    REQUIRE(api.scrape().status == 200);  // starts the background measurement
    auto before = command_calls(c, "evalsha");
    std::set<std::string> stamps;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 60; ++i) {
        auto r = api.scrape();
        REQUIRE(r.status == 200);
        auto at = r.body.find("\nmq_queue_figures_timestamp_seconds ");
        REQUIRE(at != std::string::npos);
        stamps.insert(r.body.substr(at, r.body.find('\n', at + 1) - at));
    }
    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto walks = command_calls(c, "evalsha") - before;
    INFO(seconds << " s, " << stamps.size() << " snapshots, " << walks << " EVALSHA");
    // 3 queues x 4 partitions = 12 inspection scripts per walk; one walk per 2 s at most.
    const auto allowed = static_cast<std::int64_t>(seconds / 2.0) + 2;
    CHECK(static_cast<std::int64_t>(stamps.size()) <= allowed);
    CHECK(walks <= allowed * 12);
    CHECK(walks < 60 * 12);
}

TEST_CASE("/health probes Redis and PostgreSQL without writing", "[security][health]") {
    PrivateRedis redis;
    ApiOptions options;
    options.redis_url = redis.url();
    options.env["MAINTENANCE"] = "off";
    ApiProcess api(options);
    mq::redis::Connection c(mq::redis::parse_url(redis.url()));
    // Nothing else writes to this Redis: every write would be the probe's.
    auto writes = [&] {
        std::int64_t dirty = 0;
        auto persistence = c.command({"INFO", "persistence"}).as_string();
        auto at = persistence.find("rdb_changes_since_last_save:");
        if (at != std::string::npos) dirty = std::stoll(persistence.substr(at + 28));
        return dirty;
    };
    auto keys_before = c.command({"DBSIZE"}).as_integer();
    auto dirty_before = writes();
    for (int i = 0; i < 20; ++i) {
        auto r = api.call("GET", "/api/v1/mq/health");
        INFO(r.body);
        REQUIRE(r.status == 200);
        CHECK(r.json()["checks"]["redis_stream"]["status"] == "ok");
        CHECK(r.json()["checks"]["postgres"]["status"] == "ok");
    }
    CHECK(c.command({"DBSIZE"}).as_integer() == keys_before);
    CHECK(writes() == dirty_before);
    CHECK(command_calls(c, "xadd") == 0);
}
