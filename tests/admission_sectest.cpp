// Admission control of mq-api (docs/security.md, "Admission control"): slowloris
// connections are cut off while others are served, the connection limit, the bounded
// blocking pool, the failed-authentication limit per client, the negative token cache,
// the accept back-off when descriptors run out, and the LRU that keeps hot tokens.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <pqxx/pqxx>
#include <random>
#include <sstream>
#include <thread>

#include "api_process.hpp"
#include "harness.hpp"
#include "mq/auth/token.hpp"
#include "mq/core/codec.hpp"
#include "mq/pg/migrations.hpp"
#include "mq/queue/catalog.hpp"

using namespace mqtest;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string kQueues = "/api/v1/mq/queues";
const std::string kPublish = "/api/v1/mq/publish";
const std::string kHealth = "/api/v1/mq/health";

/// A raw TCP connection to 127.0.0.1:port, from `source` (another loopback address makes
/// another client), closed when it goes.
class Conn {
  public:
    explicit Conn(int port, const std::string& source = "127.0.0.1") {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in local{};
        local.sin_family = AF_INET;
        inet_pton(AF_INET, source.c_str(), &local.sin_addr);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    }
    ~Conn() {
        if (fd_ >= 0) ::close(fd_);
    }
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

    bool connected() const { return connected_; }
    bool send(std::string_view data) {
        return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) ==
               static_cast<ssize_t>(data.size());
    }
    /// Waits up to `timeout` for data or the end: the bytes read (empty when closed, or
    /// nullopt when still open and silent).
    std::optional<std::string> read(std::chrono::milliseconds timeout) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
        char buf[8192];
        auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return std::string();
        return std::string(buf, static_cast<std::size_t>(n));
    }
    /// Reads until the peer closes or `timeout`; true when closed.
    bool closed_within(std::chrono::milliseconds timeout) {
        auto until = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < until) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            auto got = read(std::max(left, 1ms));
            if (got && got->empty()) return true;
        }
        return false;
    }
    /// One request/response on this connection; the status (0: none) and the raw answer.
    std::pair<int, std::string> request(const std::string& method, const std::string& target,
                                        const std::string& token = "", const std::string& body = "",
                                        std::chrono::milliseconds timeout = 5s) {
        std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
        if (!body.empty() || method == "POST" || method == "PUT")
            req +=
                "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\n";
        req += "\r\n" + body;
        if (!send(req)) return {0, ""};
        std::string answer;
        auto until = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < until) {
            auto got = read(100ms);
            if (!got) continue;
            if (got->empty()) break;
            answer += *got;
            auto end = answer.find("\r\n\r\n");
            if (end == std::string::npos) continue;
            auto cl = answer.find("Content-Length: ");
            if (cl == std::string::npos || cl > end) break;
            auto length = std::stoul(answer.substr(cl + 16));
            if (answer.size() >= end + 4 + length) break;
        }
        if (answer.rfind("HTTP/1.1 ", 0) != 0) return {0, answer};
        return {std::stoi(answer.substr(9, 3)), answer};
    }

  private:
    int fd_ = -1;
    bool connected_ = false;
};

/// A well-formed token that no one holds.
std::string random_token(std::mt19937_64& rng) {
    static const char* kChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string t = "mq_";
    for (int i = 0; i < 43; ++i) t += kChars[rng() % 64];
    return t;
}

/// Seconds of CPU mq-api used so far (utime + stime from /proc/<pid>/stat).
double cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close = text.rfind(')');
    REQUIRE(close != std::string::npos);
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
        if (i == 14) utime = std::stol(field);
        if (i == 15) stime = std::stol(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int open_descriptors(pid_t pid) {
    int n = 0;
    for ([[maybe_unused]] auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
        ++n;
    return n;
}

/// A database of its own in the fixture's PostgreSQL, migrated, with tenant "acme" and a
/// tenant-admin token: its statistics count only what the mq-api of this test does.
struct PrivateDatabase {
    PrivateDatabase() {
        name = "mqtest_" + unique_name("adm");
        for (char& c : name)
            if (c == '-' || c == ':') c = '_';
        exec_admin("CREATE DATABASE " + name);
        url = database_url_for(name);
        mq::pg::Database db(url);
        mq::pg::migrate(db, mq::pg::embedded_migrations());
        mq::Catalog(db).create_tenant("acme", "", false);
        token = mq::TokenStore(db)
                    .create("acme", mq::Role::kTenantAdmin, "ops", "", std::nullopt)
                    .secret;
    }
    ~PrivateDatabase() {
        try {
            exec_admin("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
        } catch (...) {
        }
    }
    /// Index and sequential scans of api_tokens so far (every token lookup is one).
    std::int64_t token_table_scans() const {
        pqxx::connection c(url);
        pqxx::work tx(c);
        tx.exec("SELECT pg_stat_clear_snapshot()");
        auto r = tx.exec1(
            "SELECT coalesce(idx_scan, 0) + coalesce(seq_scan, 0) FROM pg_stat_user_tables "
            "WHERE relname = 'api_tokens'");
        return r[0].as<std::int64_t>();
    }
    std::string name;
    std::string url;
    std::string token;
};

}  // namespace

TEST_CASE("slowloris_connections_are_closed_after_the_timeouts_while_other_clients_are_served",
          "[admission]") {
    ApiSession s(ApiOptions{
        {},
        {},
        {},
        {{"HEADER_TIMEOUT_MS", "1500"}, {"BODY_TIMEOUT_MS", "1500"}, {"ACCESS_LOG", "false"}}});
    REQUIRE(s.api.call_json("POST", kQueues, {{"name", "slow"}}, s.token).status == 201);

    // 300 clients that send half a header, 100 that send a header and part of a body,
    // and one that trickles a header byte every 100 ms (never idle, never finished).
    std::vector<std::unique_ptr<Conn>> headers, bodies;
    for (int i = 0; i < 300; ++i) {
        headers.push_back(std::make_unique<Conn>(s.api.port()));
        REQUIRE(headers.back()->send("POST /api/v1/mq/publish HTTP/1.1\r\nHost: x\r\n"));
    }
    for (int i = 0; i < 100; ++i) {
        bodies.push_back(std::make_unique<Conn>(s.api.port()));
        REQUIRE(
            bodies.back()->send("POST /api/v1/mq/publish HTTP/1.1\r\nHost: x\r\n"
                                "Content-Type: application/json\r\nContent-Length: 1000\r\n"
                                "Authorization: Bearer " +
                                s.token + "\r\n\r\n{\"queue\":"));
    }
    Conn trickle(s.api.port());
    std::atomic<bool> trickle_cut{false};
    std::thread trickler([&] {
        std::string header =
            "GET /api/v1/mq/queues HTTP/1.1\r\nX-Padding: " + std::string(200, 'a');
        for (char c : header) {
            if (!trickle.send(std::string(1, c))) {
                trickle_cut = true;
                return;
            }
            if (auto got = trickle.read(100ms); got && got->empty()) {
                trickle_cut = true;
                return;
            }
        }
    });

    // Meanwhile a well-behaved client publishes without waiting for any of them.
    auto start = std::chrono::steady_clock::now();
    Conn good(s.api.port());
    int answered = 0;
    double slowest_ms = 0;
    while (std::chrono::steady_clock::now() - start < 1s) {
        auto t0 = std::chrono::steady_clock::now();
        auto [status, raw] =
            good.request("POST", kPublish, s.token, R"({"queue":"slow","payload":1})");
        INFO(raw);
        REQUIRE(status == 201);
        slowest_ms = std::max(slowest_ms, std::chrono::duration<double, std::milli>(
                                              std::chrono::steady_clock::now() - t0)
                                              .count());
        ++answered;
    }
    CHECK(answered > 20);
    CHECK(slowest_ms < 500);

    // Every slow client is cut off soon after its timeout (1.5 s from its start).
    int header_closed = 0, body_closed = 0;
    for (auto& c : headers) header_closed += c->closed_within(3s) ? 1 : 0;
    for (auto& c : bodies) body_closed += c->closed_within(3s) ? 1 : 0;
    CHECK(header_closed == 300);
    CHECK(body_closed == 100);
    trickler.join();
    CHECK(trickle_cut);
    auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(elapsed < 6s);
    // And the server still answers.
    CHECK(s.api.call("GET", kQueues, "", s.token).status == 200);
}

TEST_CASE("an_idle_keep_alive_connection_is_closed_after_the_idle_timeout", "[admission]") {
    ApiSession s(ApiOptions{{}, {}, {}, {{"IDLE_TIMEOUT_MS", "800"}, {"ACCESS_LOG", "false"}}});
    Conn c(s.api.port());
    REQUIRE(c.request("GET", kQueues, s.token).first == 200);
    auto t0 = std::chrono::steady_clock::now();
    CHECK(c.closed_within(3s));
    auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(waited >= 600ms);
    CHECK(waited < 2500ms);
}

TEST_CASE("connections_beyond_max_connections_are_refused_at_once_with_503", "[admission]") {
    ApiSession s(ApiOptions{{}, {}, {}, {{"MAX_CONNECTIONS", "20"}, {"ACCESS_LOG", "false"}}});
    std::vector<std::unique_ptr<Conn>> held;
    for (int i = 0; i < 20; ++i) {
        held.push_back(std::make_unique<Conn>(s.api.port()));
        REQUIRE(held.back()->connected());
    }
    std::this_thread::sleep_for(200ms);  // every one accepted
    for (int i = 0; i < 5; ++i) {
        Conn extra(s.api.port());
        auto t0 = std::chrono::steady_clock::now();
        auto got = extra.read(2s);
        REQUIRE(got);
        CHECK(std::chrono::steady_clock::now() - t0 < 1s);
        if (!got->empty()) {
            CHECK(got->rfind("HTTP/1.1 503", 0) == 0);
            CHECK(got->find("Retry-After: 1") != std::string::npos);
            CHECK(got->find("MQ_OVERLOADED") != std::string::npos);
        }
        CHECK(extra.closed_within(2s));
    }
    CHECK(s.api.log().find("connection limit of 20 reached") != std::string::npos);
    // Held connections still work, and once some go, new ones are served.
    REQUIRE(held.front()->request("GET", kQueues, s.token).first == 200);
    held.resize(10);
    std::this_thread::sleep_for(200ms);
    CHECK(s.api.call("GET", kQueues, "", s.token).status == 200);
}

TEST_CASE("a_full_blocking_pool_queue_answers_503_with_retry_after", "[admission]") {
    ApiSession s(ApiOptions{
        {},
        {},
        {},
        {{"API_BLOCKING_THREADS", "2"}, {"BLOCKING_QUEUE_LIMIT", "3"}, {"ACCESS_LOG", "false"}}});
    REQUIRE(s.api.call_json("POST", kQueues, {{"name", "locked"}}, s.token).status == 201);
    // Hold the queue's row: every update of it waits in PostgreSQL on a blocking thread.
    pqxx::connection holder(services().database_url);
    auto lock = std::make_unique<pqxx::work>(holder);
    lock->exec("SELECT 1 FROM message_topics WHERE tenant_id = " + lock->quote(s.tenant.tenant()) +
               " AND name = 'locked' FOR UPDATE");

    std::vector<HttpResult> results(12);
    std::vector<std::thread> clients;
    for (std::size_t i = 0; i < results.size(); ++i) {
        clients.emplace_back([&, i] {
            results[i] = s.api.call_json("PUT", kQueues + "/locked",
                                         {{"description", "v" + std::to_string(i)}}, s.token);
        });
        std::this_thread::sleep_for(20ms);
    }
    std::this_thread::sleep_for(500ms);
    lock->abort();  // the waiting updates go through
    for (auto& t : clients) t.join();
    int ok = 0, overloaded = 0;
    for (auto& r : results) {
        INFO(r.status << " " << r.body);
        if (r.status == 200) ++ok;
        if (r.status == 503) {
            ++overloaded;
            CHECK(r.error_code() == "MQ_OVERLOADED");
            CHECK(r.headers["retry-after"] == "1");
            CHECK(r.json()["error"]["retryAfter"] == 1);
        }
    }
    // 2 running + 3 waiting are admitted; the other 7 are refused at once.
    CHECK(ok == 5);
    CHECK(overloaded == 7);
    CHECK(s.api.call("GET", kQueues, "", s.token).status == 200);
}

TEST_CASE("failed_authentications_beyond_the_limit_answer_429_without_a_lookup", "[admission]") {
    PrivateDatabase pg;
    ApiProcess api(ApiOptions{{},
                              pg.url,
                              {},
                              {{"AUTH_FAILURE_LIMIT", "5"},
                               {"AUTH_FAILURE_WINDOW_MS", "60000"},
                               {"AUTH_FAILURE_DELAY_MS", "0"}}});
    std::mt19937_64 rng(std::random_device{}());
    Conn known(api.port());
    REQUIRE(known.request("GET", kQueues, pg.token).first == 200);  // remembered from now on

    Conn guesser(api.port());
    for (int i = 0; i < 5; ++i)
        CHECK(guesser.request("GET", kQueues, random_token(rng)).first == 401);
    std::this_thread::sleep_for(1500ms);  // PostgreSQL publishes its statistics
    auto scans = pg.token_table_scans();
    for (int i = 0; i < 200; ++i) {
        auto [status, raw] = guesser.request("GET", kQueues, random_token(rng));
        REQUIRE(status == 429);
        if (i == 0) {
            CHECK(raw.find("Retry-After: ") != std::string::npos);
            CHECK(raw.find("MQ_TOO_MANY_AUTH_FAILURES") != std::string::npos);
        }
    }
    // Malformed tokens count as failures too, and are refused the same way.
    CHECK(guesser.request("GET", kQueues, "nonsense").first == 429);
    std::this_thread::sleep_for(1500ms);
    CHECK(pg.token_table_scans() - scans < 5);  // no lookup per refused request

    // A token this client already used successfully still works from the same address.
    CHECK(known.request("GET", kQueues, pg.token).first == 200);
    // Another client address is not affected.
    Conn other(api.port(), "127.0.0.2");
    CHECK(other.request("GET", kQueues, random_token(rng)).first == 401);
    CHECK(other.request("GET", kQueues, pg.token).first == 200);
    api.terminate();
}

TEST_CASE("a_client_over_the_failed_auth_limit_waits_for_its_429_and_others_do_not",
          "[admission]") {
    PrivateDatabase pg;
    ApiProcess api(ApiOptions{{},
                              pg.url,
                              {},
                              {{"AUTH_FAILURE_LIMIT", "2"},
                               {"AUTH_FAILURE_WINDOW_MS", "60000"},
                               {"AUTH_FAILURE_DELAY_MS", "400"}}});
    std::mt19937_64 rng(std::random_device{}());
    Conn guesser(api.port());
    for (int i = 0; i < 2; ++i)
        CHECK(guesser.request("GET", kQueues, random_token(rng)).first == 401);
    // Over the limit: each refusal is held back, so a keep-alive loop gets few answers.
    std::atomic<int> refused{0};
    std::atomic<bool> stop{false};
    auto started = std::chrono::steady_clock::now();
    std::thread flood([&] {
        while (!stop)
            if (guesser.request("GET", kQueues, random_token(rng)).first == 429) ++refused;
    });
    // Meanwhile a well-behaved client from another address is answered at once.
    Conn other(api.port(), "127.0.0.2");
    for (int i = 0; i < 20; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        CHECK(other.request("GET", kQueues, pg.token).first == 200);
        CHECK(std::chrono::steady_clock::now() - t0 < 300ms);
        std::this_thread::sleep_for(50ms);
    }
    stop = true;
    flood.join();
    auto elapsed = std::chrono::steady_clock::now() - started;
    INFO("429 answers in " << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
                           << " ms: " << refused.load());
    CHECK(refused >= 1);
    // One answer per 400 ms at most (plus the one in flight when the loop stopped).
    CHECK(refused <= elapsed / 400ms + 1);
    api.terminate();
}

TEST_CASE("guessed_service_tokens_count_against_the_failed_auth_limit", "[admission]") {
    const std::string secret = "service-secret-0123456789abcdef";
    ApiProcess api(ApiOptions{{},
                              {},
                              {},
                              {{"INTERNAL_SERVICE_TOKEN", secret},
                               {"AUTH_FAILURE_LIMIT", "3"},
                               {"AUTH_FAILURE_WINDOW_MS", "60000"},
                               {"AUTH_FAILURE_DELAY_MS", "0"}}});
    const std::string target = "/internal/mq/health-detailed";
    auto with = [&](const std::string& token) {
        return api.call("GET", target, "", "", {{"X-Service-Token", token}});
    };
    for (int i = 0; i < 3; ++i) CHECK(with("guess-" + std::to_string(i)).status == 401);
    auto refused = with("guess-3");
    CHECK(refused.status == 429);
    CHECK(refused.body.find("MQ_TOO_MANY_AUTH_FAILURES") != std::string::npos);
    CHECK(api.call("GET", target).status == 429);  // no token at all: a failure too
    // The right token is checked before the limit: the platform's service keeps working.
    CHECK(with(secret).status == 200);
    api.terminate();
}

TEST_CASE("a_flood_of_unknown_tokens_is_answered_from_the_negative_cache", "[admission]") {
    PrivateDatabase pg;
    ApiProcess api(
        ApiOptions{{}, pg.url, {}, {{"AUTH_FAILURE_LIMIT", "0"}, {"ACCESS_LOG", "false"}}});
    std::mt19937_64 rng(std::random_device{}());
    std::vector<std::string> unknown;
    for (int i = 0; i < 10; ++i) unknown.push_back(random_token(rng));
    // Warm: one lookup each.
    for (auto& t : unknown) REQUIRE(api.call("GET", kQueues, "", t).status == 401);
    std::this_thread::sleep_for(1500ms);
    auto before = pg.token_table_scans();
    std::vector<std::thread> clients;
    std::atomic<int> unauthorized{0};
    for (int c = 0; c < 4; ++c)
        clients.emplace_back([&, c] {
            Conn conn(api.port());
            for (int i = 0; i < 250; ++i)
                if (conn.request("GET", kQueues, unknown[(c + i) % unknown.size()]).first == 401)
                    ++unauthorized;
        });
    for (auto& t : clients) t.join();
    CHECK(unauthorized == 1000);
    std::this_thread::sleep_for(1500ms);
    auto lookups = pg.token_table_scans() - before;
    INFO("api_tokens scans during 1,000 requests with 10 unknown tokens: " << lookups);
    CHECK(lookups < 5);

    // A negative answer does not hide a token created afterwards: its NOTIFY clears it.
    std::string secret = unknown.front();
    {
        pqxx::connection c(pg.url);
        pqxx::work tx(c);
        tx.exec_params(
            "INSERT INTO api_tokens (tenant_id, token_hash, token_prefix, role, principal) "
            "VALUES ('acme', decode($1, 'hex'), $2, 'producer', 'late')",
            mq::codec::hex_encode(mq::hash_token(secret)), secret.substr(0, 10));
        tx.commit();
    }
    auto t0 = std::chrono::steady_clock::now();
    int status = 0;
    while (std::chrono::steady_clock::now() - t0 < 4s) {
        status = api.call("GET", kQueues, "", secret).status;
        if (status == 200) break;
        std::this_thread::sleep_for(50ms);
    }
    CHECK(status == 200);
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);  // well before the negative ttl
    api.terminate();
}

TEST_CASE("accept_backs_off_quietly_when_descriptors_run_out_and_recovers", "[admission]") {
    ApiSession s(ApiOptions{{}, {}, {}, {{"ACCESS_LOG", "false"}}});
    pid_t pid = s.api.pid();
    // Leave mq-api room for 20 more descriptors only (the soft limit; the hard one stays).
    rlimit old{};
    REQUIRE(prlimit(pid, RLIMIT_NOFILE, nullptr, &old) == 0);
    rlimit low{static_cast<rlim_t>(open_descriptors(pid) + 20), old.rlim_max};
    REQUIRE(prlimit(pid, RLIMIT_NOFILE, &low, nullptr) == 0);
    auto log_before = s.api.log().size();

    std::vector<std::unique_ptr<Conn>> flood;
    for (int i = 0; i < 100; ++i) flood.push_back(std::make_unique<Conn>(s.api.port()));
    std::this_thread::sleep_for(500ms);
    double cpu0 = cpu_seconds(pid);
    std::this_thread::sleep_for(3s);
    double cpu = cpu_seconds(pid) - cpu0;
    auto log = s.api.log();
    INFO(log.substr(log_before, 2000));
    CHECK(cpu < 0.3);                           // no busy loop (it was 100% of a core)
    CHECK(log.size() - log_before < 4 * 1024);  // a few lines, not millions
    CHECK(log.find("accept failed", log_before) != std::string::npos);

    flood.clear();
    REQUIRE(prlimit(pid, RLIMIT_NOFILE, &old, nullptr) == 0);
    auto t0 = std::chrono::steady_clock::now();
    int status = 0;
    while (status != 200 && std::chrono::steady_clock::now() - t0 < 10s) {
        status = s.api.call("GET", kQueues, "", s.token).status;
        if (status != 200) std::this_thread::sleep_for(100ms);
    }
    CHECK(status == 200);
}

TEST_CASE("the_token_cache_keeps_hot_tokens_while_more_than_10k_distinct_tokens_pass",
          "[admission]") {
    TenantScope ts;
    // 10,500 valid tokens in one statement (secrets "mq_" + 43 characters).
    ts.exec(
        "INSERT INTO api_tokens (tenant_id, token_hash, token_prefix, role, principal) "
        "SELECT '" +
        ts.tenant() +
        "', sha256(convert_to(s, 'UTF8')), left(s, 10), 'consumer', "
        "'p' || i FROM (SELECT i, 'mq_' || lpad(i::text, 43, 'T') AS s "
        "FROM generate_series(1, 10501) AS i) t");
    auto secret = [](int i) {
        auto n = std::to_string(i);
        return "mq_" + std::string(43 - n.size(), 'T') + n;
    };
    mq::TokenStore store(ts.db());
    mq::Authenticator auth(store, std::chrono::minutes(5));
    const std::string hot = secret(1);
    REQUIRE(auth.authenticate(hot));
    for (int i = 2; i <= 10501; ++i) {
        REQUIRE(auth.authenticate(secret(i)));
        if (i % 100 == 0) REQUIRE(auth.authenticate(hot));
    }
    // Each token was looked up once: the hot one was never dropped (the old cache emptied
    // itself at 10,000 entries), and the cache stayed at its bound.
    CHECK(auth.lookups() == 10501);
    CHECK(auth.size() == mq::Authenticator::kMaxEntries);
    CHECK(auth.cached(hot));
    CHECK_FALSE(auth.cached(secret(2)));  // the least recently used went first
    CHECK(auth.cached(secret(10501)));
}
