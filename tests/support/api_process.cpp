#include "api_process.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <thread>
#include <vector>

#include "api_contract.hpp"
#include "harness.hpp"
#include "mq/pg/migrations.hpp"

namespace mqtest {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;

nlohmann::json HttpResult::json() const { return nlohmann::json::parse(body, nullptr, false); }

std::string HttpResult::error_code() const {
    auto j = json();
    if (j.is_object() && j.contains("error") && j["error"].is_object() &&
        j["error"].contains("code"))
        return j["error"]["code"].get<std::string>();
    return "";
}

HttpResult http_request(int port, const std::string& method, const std::string& target,
                        const std::string& body, const std::map<std::string, std::string>& headers,
                        std::chrono::milliseconds timeout) {
    HttpResult out;
    try {
        asio::io_context ioc;
        beast::tcp_stream stream(ioc);
        stream.expires_after(timeout);
        stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                               static_cast<unsigned short>(port)));
        http::request<http::string_body> req(http::string_to_verb(method), target, 11);
        req.set(http::field::host, "127.0.0.1");
        for (const auto& [k, v] : headers) req.set(k, v);
        if (!body.empty() || method == "POST" || method == "PUT") {
            req.body() = body;
            if (!req.count(http::field::content_type))
                req.set(http::field::content_type, "application/json");
            req.prepare_payload();
        }
        http::write(stream, req);
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        http::read(stream, buffer, parser);
        auto& res = parser.get();
        out.status = res.result_int();
        out.body = res.body();
        for (const auto& f : res) {
            std::string name(f.name_string());
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            out.headers[name] = std::string(f.value());
        }
        beast::error_code ec;
        stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    } catch (const std::exception&) {
        out.status = 0;
    }
    return out;
}

ApiProcess::ApiProcess(ApiOptions options) {
    const auto& svc = services();
    if (options.database_url.empty()) {
        // The fixture's database may not be migrated yet when the API test runs first.
        mq::pg::Database db(svc.database_url);
        mq::pg::migrate(db, mq::pg::embedded_migrations());
    }
    prefix_ = options.key_prefix.empty() ? unique_name("api") + ":" : options.key_prefix;
    port_ = dead_port();
    log_path_ = temp_file("");
    auto env = inherited_env();
    env["REDIS_URL"] = options.redis_url.empty() ? svc.redis_url : options.redis_url;
    env["DATABASE_URL"] = options.database_url.empty() ? svc.database_url : options.database_url;
    env["REDIS_KEY_PREFIX"] = prefix_;
    env["LOG_LEVEL"] = "info";
    env["METRICS_TOKEN"] = kMetricsToken;  // scrapes: api.scrape() or this bearer
    env["METRICS_REFRESH_S"] = "0";        // figures measured per scrape: tests read them fresh
    // Tests deliver webhooks to sinks on 127.0.0.1, which the SSRF rules refuse unless an
    // operator allows the range (docs/security.md); options.env may override it ("" = none).
    env["WEBHOOK_ALLOWED_CIDRS"] = "127.0.0.0/8";
    for (const auto& [k, v] : options.env) env[k] = v;
    // A port free when it was picked can be taken by an outgoing connection before mq-api
    // binds it: pick another and start again (a few times).
    for (int attempt = 0;; ++attempt) {
        env["PORT"] = std::to_string(port_);
        process_.start(MQ_API_PATH, {}, env, log_path_);
        if (!options.wait_ready) return;
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        bool port_taken = false;
        while (std::chrono::steady_clock::now() < until) {
            if (!running()) {
                port_taken =
                    attempt < 4 && log().find("Address already in use") != std::string::npos;
                if (port_taken) break;
                FAIL("mq-api exited early (status " << process_.wait_exit({}).value_or(-1) << "):\n"
                                                    << log());
            }
            auto r =
                http_request(port_, "GET", "/api/v1/mq/health", "", {}, std::chrono::seconds(5));
            if (r.status != 0) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(30));
        }
        if (!port_taken) break;
        port_ = dead_port();
        std::ofstream(log_path_, std::ios::trunc);  // the next attempt's log only
    }
    FAIL("mq-api did not answer within 20 s:\n" << log());
}

ApiProcess::~ApiProcess() {
    if (running()) process_.terminate(std::chrono::seconds(5));
    std::remove(log_path_.c_str());
}

std::string ApiProcess::log() const { return process_.log(); }

bool ApiProcess::running() { return process_.alive(); }

int ApiProcess::terminate(std::chrono::milliseconds wait) { return process_.terminate(wait); }

HttpResult ApiProcess::call(const std::string& method, const std::string& target,
                            const std::string& body, const std::string& token,
                            std::map<std::string, std::string> headers) const {
    if (!token.empty()) headers["Authorization"] = "Bearer " + token;
    auto result = http_request(port_, method, target, body, headers);
    check_contract(method, target, result);
    return result;
}

HttpResult ApiProcess::call_json(const std::string& method, const std::string& target,
                                 const nlohmann::json& body, const std::string& token,
                                 std::map<std::string, std::string> headers) const {
    return call(method, target, body.dump(), token, std::move(headers));
}

std::string create_token(const std::string& tenant, const std::string& role,
                         const std::string& principal) {
    auto r = mqctl({"--tenant", tenant, "token", "create", "--role", role, "--principal", principal,
                    "-o", "json"});
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    return nlohmann::json::parse(r.out)["token"].get<std::string>();
}

void api_create_queue(const ApiProcess& api, const std::string& token, const std::string& name) {
    auto r = api.call_json("POST", "/api/v1/mq/queues", {{"name", name}}, token);
    INFO(r.body);
    REQUIRE(r.status == 201);
}

void api_publish_n(const ApiProcess& api, const std::string& token, const std::string& queue,
                   int n) {
    for (int i = 0; i < n; ++i) {
        auto r = api.call_json("POST", "/api/v1/mq/publish",
                               {{"queue", queue}, {"payload", {{"i", i}}}}, token);
        INFO(r.body);
        REQUIRE(r.status == 201);
    }
}

std::string api_subscribe(const ApiProcess& api, const std::string& token, const std::string& queue,
                          const std::string& name) {
    auto r = api.call_json("POST", "/api/v1/mq/subscriptions",
                           {{"queue", queue}, {"name", name}, {"start_from", "earliest"}}, token);
    INFO(r.body);
    REQUIRE(r.status == 201);
    return r.json()["id"].get<std::string>();
}

}  // namespace mqtest
