// The webhook handler against a local HTTP sink: what it sends, how it signs, and how it
// reads the answer into ack / retry / dead-letter.

#include <catch2/catch.hpp>
#include <chrono>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "http_sink.hpp"
#include "mq/deliver/webhook.hpp"
#include "mq/error.hpp"

using Catch::Matchers::Contains;
using mq::DeliveryOutcome;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

// The example of the Standard Webhooks specification (and of svix's libraries): a
// signature computed by someone else's code.
constexpr const char* kSpecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr const char* kSpecId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr std::int64_t kSpecTimestamp = 1614265330;
constexpr const char* kSpecBody = R"({"test": 2432232314})";
constexpr const char* kSpecSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

mq::Delivery order_delivery(std::string payload = R"({"order":42})") {
    mq::Delivery d;
    d.message.id = "01900000-0000-7000-8000-000000000042";
    d.message.key = "customer 7";
    d.message.headers_json = R"({"source":"shop","note":"line1\nline2"})";
    d.message.payload = std::move(payload);
    d.message.content_type = "application/json";
    d.tenant = "acme";
    d.queue = "orders";
    d.subscription = "billing";
    d.partition = 3;
    d.stream_id = "1700000000000-0";
    d.attempt = 2;
    return d;
}

mq::WebhookConfig config_for(const mqtest::HttpSink& sink, const std::string& path = "/hook") {
    mq::WebhookConfig c;
    c.url = sink.url(path);
    c.timeout = milliseconds(5000);
    return c;
}

long long ms_since(Clock::time_point t) {
    return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
}

/// The "field" detail of the ValidationError `parse` throws; "" when it does not throw.
template <typename F>
std::string rejected_field(F parse) {
    try {
        parse();
    } catch (const mq::ValidationError& e) {
        return e.details().value("field", "(no field)");
    }
    return "";
}

}  // namespace

// ---- signing -----------------------------------------------------------------------------

TEST_CASE("webhook_handler_sign_matches_the_standard_webhooks_example", "[webhook]") {
    CHECK(mq::WebhookHandler::sign(kSpecSecret, kSpecId, kSpecTimestamp, kSpecBody) ==
          kSpecSignature);
    CHECK(mq::WebhookHandler::verify(kSpecSecret, kSpecId, kSpecTimestamp, kSpecBody,
                                     kSpecSignature));
    // Several signatures (key rotation): one valid entry is enough.
    CHECK(mq::WebhookHandler::verify(kSpecSecret, kSpecId, kSpecTimestamp, kSpecBody,
                                     std::string("v1,AAAA ") + kSpecSignature));
    CHECK_FALSE(mq::WebhookHandler::verify(kSpecSecret, kSpecId, kSpecTimestamp + 1, kSpecBody,
                                           kSpecSignature));
    CHECK_FALSE(mq::WebhookHandler::verify(kSpecSecret, kSpecId, kSpecTimestamp,
                                           R"({"test": 2432232315})", kSpecSignature));
    CHECK_FALSE(
        mq::WebhookHandler::verify("whsec_"
                                   "b3RoZXJzZWNyZXQ=",
                                   kSpecId, kSpecTimestamp, kSpecBody, kSpecSignature));
}

TEST_CASE("webhook_handler_signature_verifies_at_the_receiver_only_with_the_secret", "[webhook]") {
    mqtest::HttpSink sink;
    auto config = config_for(sink);
    config.signing_secret = kSpecSecret;
    mq::WebhookHandler handler(config);
    auto d = order_delivery();

    auto result = handler.deliver(d);
    REQUIRE(result.outcome == DeliveryOutcome::kAck);
    REQUIRE(sink.request_count() == 1);
    auto req = sink.requests().at(0);
    std::int64_t ts = std::stoll(req.header("webhook-timestamp"));
    CHECK(std::abs(ts - static_cast<std::int64_t>(std::time(nullptr))) <= 5);
    CHECK(req.header("webhook-id") == d.message.id);
    CHECK(mq::WebhookHandler::verify(kSpecSecret, req.header("webhook-id"), ts, req.body,
                                     req.header("webhook-signature")));
    CHECK_FALSE(mq::WebhookHandler::verify(
        "whsec_"
        "c29tZW9uZWVsc2U=",
        req.header("webhook-id"), ts, req.body, req.header("webhook-signature")));
    // A raw (non-whsec_) secret is used as the key bytes as given.
    CHECK_FALSE(mq::WebhookHandler::verify("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                           req.header("webhook-id"), ts, req.body,
                                           req.header("webhook-signature")));
}

TEST_CASE("webhook_handler_without_secret_sends_no_signature", "[webhook]") {
    mqtest::HttpSink sink;
    mq::WebhookHandler handler(config_for(sink));
    REQUIRE(handler.deliver(order_delivery()).outcome == DeliveryOutcome::kAck);
    auto req = sink.requests().at(0);
    CHECK_FALSE(req.has_header("webhook-signature"));
    CHECK(req.has_header("webhook-id"));
    CHECK(req.has_header("webhook-timestamp"));
}

// ---- request -----------------------------------------------------------------------------

TEST_CASE("webhook_handler_posts_payload_with_content_type_and_delivery_headers", "[webhook]") {
    mqtest::HttpSink sink;
    auto config = config_for(sink, "/in/orders?src=mq");
    config.headers = {{"Authorization", "Bearer t0ken"}, {"X-Empty", ""}};
    mq::WebhookHandler handler(config);
    std::string payload("{\"order\":42,\"bin\":\"\0\xff\"}", 22);
    auto d = order_delivery(payload);

    REQUIRE(handler.deliver(d).outcome == DeliveryOutcome::kAck);
    auto req = sink.requests().at(0);
    CHECK(req.method == "POST");
    CHECK(req.target == "/in/orders?src=mq");
    CHECK(req.body == payload);
    CHECK(req.header("Content-Type") == "application/json");
    CHECK(req.header("Authorization") == "Bearer t0ken");
    CHECK(req.has_header("X-Empty"));
    CHECK(req.header("X-Empty").empty());
    CHECK(req.header("X-MQ-Attempt") == "2");
    CHECK(req.header("X-MQ-Tenant") == "acme");
    CHECK(req.header("X-MQ-Queue") == "orders");
    CHECK(req.header("X-MQ-Subscription") == "billing");
    CHECK(req.header("X-MQ-Partition") == "3");
    CHECK(req.header("X-MQ-Key") == "customer%207");  // percent-encoded: no header injection
    auto headers = nlohmann::json::parse(req.header("X-MQ-Headers"));
    CHECK(headers == nlohmann::json{{"source", "shop"}, {"note", "line1\nline2"}});
    CHECK_FALSE(req.has_header("Expect"));
}

TEST_CASE("webhook_handler_defaults_content_type_and_omits_empty_key", "[webhook]") {
    mqtest::HttpSink sink;
    mq::WebhookHandler handler(config_for(sink));
    auto d = order_delivery("raw bytes");
    d.message.content_type.clear();
    d.message.key.clear();
    d.message.headers_json.clear();
    REQUIRE(handler.deliver(d).outcome == DeliveryOutcome::kAck);
    auto req = sink.requests().at(0);
    CHECK(req.header("Content-Type") == "application/octet-stream");
    CHECK_FALSE(req.has_header("X-MQ-Key"));
    CHECK(req.header("X-MQ-Headers") == "{}");

    auto config = config_for(sink);
    config.headers = {{"Content-Type", "text/plain"}};
    mq::WebhookHandler text_handler(config);
    REQUIRE(text_handler.deliver(d).outcome == DeliveryOutcome::kAck);
    CHECK(sink.requests().at(1).header("Content-Type") == "text/plain");
}

// ---- outcomes ----------------------------------------------------------------------------

TEST_CASE("webhook_handler_acks_every_2xx", "[webhook]") {
    mqtest::HttpSink sink;
    mq::WebhookHandler handler(config_for(sink));
    for (int status : {200, 201, 202, 204}) {
        sink.respond_with(status);
        auto r = handler.deliver(order_delivery());
        CHECK(r.outcome == DeliveryOutcome::kAck);
        CHECK(r.error.empty());
        CHECK_FALSE(r.retry_after.has_value());
    }
}

TEST_CASE("webhook_handler_retries_500_naming_status_and_body_snippet", "[webhook]") {
    mqtest::HttpSink sink;
    mq::WebhookHandler handler(config_for(sink));
    sink.respond_with(500, {}, "database is down" + std::string(1000, 'x') + "TAIL");
    auto r = handler.deliver(order_delivery());
    CHECK(r.outcome == DeliveryOutcome::kRetry);
    CHECK_THAT(r.error, Contains("HTTP 500") && Contains("database is down"));
    CHECK_THAT(r.error, !Contains("TAIL"));
    CHECK(r.error.size() < 260);
    CHECK_FALSE(r.retry_after.has_value());
    CHECK_THAT(r.error, !Contains("127.0.0.1"));  // the URL (maybe with a token) stays out
}

TEST_CASE("webhook_handler_retries_408_and_429_by_default", "[webhook]") {
    mqtest::HttpSink sink;
    mq::WebhookHandler handler(config_for(sink));
    sink.respond_with(408);
    sink.respond_with(429);
    CHECK(handler.deliver(order_delivery()).outcome == DeliveryOutcome::kRetry);
    CHECK(handler.deliver(order_delivery()).outcome == DeliveryOutcome::kRetry);
}

TEST_CASE("webhook_handler_honours_retry_after_seconds_on_503", "[webhook]") {
    mqtest::HttpSink sink;
    mq::WebhookHandler handler(config_for(sink));
    sink.respond_with(503, {{"Retry-After", "7"}}, "busy");
    auto r = handler.deliver(order_delivery());
    CHECK(r.outcome == DeliveryOutcome::kRetry);
    REQUIRE(r.retry_after.has_value());
    CHECK(*r.retry_after == milliseconds(7000));
    CHECK_THAT(r.error, Contains("HTTP 503") && Contains("busy"));
}

TEST_CASE("webhook_handler_honours_retry_after_http_date_on_429", "[webhook]") {
    mqtest::HttpSink sink;
    mq::WebhookHandler handler(config_for(sink));
    std::time_t at = std::time(nullptr) + 30;
    char date[64];
    std::tm tm{};
    gmtime_r(&at, &tm);
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    sink.respond_with(429, {{"Retry-After", date}});
    auto r = handler.deliver(order_delivery());
    CHECK(r.outcome == DeliveryOutcome::kRetry);
    REQUIRE(r.retry_after.has_value());
    CHECK(r.retry_after->count() >= 28'000);
    CHECK(r.retry_after->count() <= 30'000);

    sink.respond_with(503, {{"Retry-After", "Thu, 01 Jan 1970 00:00:00 GMT"}});
    auto past = handler.deliver(order_delivery());
    REQUIRE(past.retry_after.has_value());
    CHECK(past.retry_after->count() == 0);

    sink.respond_with(503, {{"Retry-After", "soon"}});
    CHECK_FALSE(handler.deliver(order_delivery()).retry_after.has_value());
}

TEST_CASE("webhook_handler_dead_letters_410_and_other_4xx", "[webhook]") {
    mqtest::HttpSink sink;
    mq::WebhookHandler handler(config_for(sink));
    for (int status : {400, 401, 404, 410, 422}) {
        sink.respond_with(status, {{"Retry-After", "5"}}, "gone for good");
        auto r = handler.deliver(order_delivery());
        CHECK(r.outcome == DeliveryOutcome::kDead);
        CHECK_THAT(r.error,
                   Contains("HTTP " + std::to_string(status)) && Contains("gone for good"));
        CHECK_FALSE(r.retry_after.has_value());
    }
}

TEST_CASE("webhook_handler_retries_a_4xx_listed_in_retry_on", "[webhook]") {
    mqtest::HttpSink sink;
    auto config =
        mq::webhook_config_from_json({{"url", sink.url("/hook")}, {"retry_on", {404, 409}}});
    mq::WebhookHandler handler(config);
    sink.respond_with(404);
    sink.respond_with(409);
    sink.respond_with(410);
    CHECK(handler.deliver(order_delivery()).outcome == DeliveryOutcome::kRetry);
    CHECK(handler.deliver(order_delivery()).outcome == DeliveryOutcome::kRetry);
    CHECK(handler.deliver(order_delivery()).outcome == DeliveryOutcome::kDead);
}

TEST_CASE("webhook_handler_retries_a_redirect_without_following_it", "[webhook]") {
    mqtest::HttpSink sink;
    mq::WebhookHandler handler(config_for(sink));
    sink.respond_with(301, {{"Location", "http://elsewhere.example/hook"}});
    auto r = handler.deliver(order_delivery());
    CHECK(r.outcome == DeliveryOutcome::kRetry);
    CHECK_THAT(r.error, Contains("HTTP 301") && Contains("elsewhere.example"));
    CHECK(sink.request_count() == 1);
}

TEST_CASE("webhook_handler_retries_when_the_receiver_is_slower_than_the_timeout", "[webhook]") {
    mqtest::HttpSink sink;
    auto config = config_for(sink);
    config.timeout = milliseconds(300);
    mq::WebhookHandler handler(config);
    sink.respond_with(200, {}, "too late", milliseconds(5000));
    auto started = Clock::now();
    auto r = handler.deliver(order_delivery());
    auto elapsed = ms_since(started);
    CHECK(r.outcome == DeliveryOutcome::kRetry);
    CHECK_THAT(r.error, Contains("timed out"));
    CHECK(elapsed >= 250);
    CHECK(elapsed < 1500);
    CHECK(r.duration.count() >= 250);

    // The handle that timed out is reused for the next delivery, on a fresh connection.
    auto next = handler.deliver(order_delivery());
    CHECK(next.outcome == DeliveryOutcome::kAck);
}

TEST_CASE("webhook_handler_retries_when_the_connection_is_refused", "[webhook]") {
    mq::WebhookConfig config;
    config.url = "http://127.0.0.1:" + std::to_string(mqtest::dead_port()) + "/hook";
    config.timeout = milliseconds(2000);
    mq::WebhookHandler handler(config);
    auto started = Clock::now();
    auto r = handler.deliver(order_delivery());
    CHECK(r.outcome == DeliveryOutcome::kRetry);
    CHECK_THAT(r.error, Contains("webhook request failed") && Contains("connect"));
    CHECK(ms_since(started) < 1000);
}

TEST_CASE("webhook_handler_retries_when_the_receiver_drops_the_connection", "[webhook]") {
    mqtest::HttpSink sink;
    mq::WebhookHandler handler(config_for(sink));
    mqtest::SinkResponse drop;
    drop.drop = true;
    sink.respond_with(drop);
    auto r = handler.deliver(order_delivery());
    CHECK(r.outcome == DeliveryOutcome::kRetry);
    CHECK_THAT(r.error, Contains("webhook request failed"));
}

// ---- connections and threads ------------------------------------------------------------

TEST_CASE("webhook_handler_keeps_one_connection_alive_for_sequential_deliveries", "[webhook]") {
    mqtest::HttpSink sink;
    mq::WebhookHandler handler(config_for(sink));
    for (int i = 0; i < 20; ++i)
        REQUIRE(handler.deliver(order_delivery("m" + std::to_string(i))).outcome ==
                DeliveryOutcome::kAck);
    CHECK(sink.request_count() == 20);
    CHECK(sink.connections_accepted() == 1);
    auto reqs = sink.requests();
    CHECK(reqs.front().connection == reqs.back().connection);
}

TEST_CASE("webhook_handler_reconnects_after_the_receiver_closes_the_connection", "[webhook]") {
    mqtest::HttpSink sink;
    mq::WebhookHandler handler(config_for(sink));
    mqtest::SinkResponse closing;
    closing.close = true;
    sink.respond_with(closing);
    CHECK(handler.deliver(order_delivery()).outcome == DeliveryOutcome::kAck);
    CHECK(handler.deliver(order_delivery()).outcome == DeliveryOutcome::kAck);
    CHECK(sink.connections_accepted() == 2);
}

TEST_CASE("webhook_handler_delivers_from_many_threads_at_once", "[webhook]") {
    mqtest::HttpSink sink;
    auto config = config_for(sink);
    config.signing_secret = kSpecSecret;
    mq::WebhookHandler handler(config);
    constexpr int kThreads = 4;
    constexpr int kEach = 25;
    std::vector<int> acks(kThreads, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                auto d = order_delivery("t" + std::to_string(t) + "-" + std::to_string(i));
                if (handler.deliver(d).outcome == DeliveryOutcome::kAck) ++acks[t];
            }
        });
    for (auto& t : threads) t.join();
    for (int t = 0; t < kThreads; ++t) CHECK(acks[t] == kEach);
    REQUIRE(sink.request_count() == kThreads * kEach);
    for (const auto& req : sink.requests())
        CHECK(mq::WebhookHandler::verify(kSpecSecret, req.header("webhook-id"),
                                         std::stoll(req.header("webhook-timestamp")), req.body,
                                         req.header("webhook-signature")));
    CHECK(sink.connections_accepted() <= kThreads);
}

// ---- configuration ----------------------------------------------------------------------

TEST_CASE("webhook_handler_config_reads_every_field", "[webhook][config]") {
    auto c = mq::webhook_config_from_json({{"type", "webhook"},
                                           {"url", "https://hooks.example.com/in"},
                                           {"headers", {{"Authorization", "Bearer x"}}},
                                           {"timeout", "2s"},
                                           {"connect_timeout_ms", 500},
                                           {"signing_secret", kSpecSecret},
                                           {"retry_on", {404}}});
    CHECK(c.url == "https://hooks.example.com/in");
    CHECK(c.headers.at("Authorization") == "Bearer x");
    CHECK(c.timeout == milliseconds(2000));
    CHECK(c.connect_timeout == milliseconds(500));
    CHECK(c.signing_secret == kSpecSecret);
    CHECK(c.dead_letter_statuses.count(404) == 0);
    CHECK(c.dead_letter_statuses.count(410) == 1);
    CHECK(c.dead_letter_statuses.count(429) == 0);

    auto defaults = mq::webhook_config_from_json({{"url", "http://localhost:8080/"}});
    CHECK(defaults.timeout == milliseconds(10000));
    CHECK(defaults.connect_timeout == milliseconds(3000));
    CHECK(defaults.signing_secret.empty());
    CHECK(mq::webhook_config_from_json({{"url", "http://h/"}, {"timeout_ms", 1500}}).timeout ==
          milliseconds(1500));
}

TEST_CASE("webhook_handler_config_rejects_bad_input_naming_the_field", "[webhook][config]") {
    using J = nlohmann::json;
    auto parse = [](J j) { return [j] { (void)mq::webhook_config_from_json(j); }; };
    CHECK(rejected_field(parse(J::object())) == "url");
    CHECK(rejected_field(parse({{"url", 42}})) == "url");
    CHECK(rejected_field(parse({{"url", "ftp://files.example.com/"}})) == "url");
    CHECK(rejected_field(parse({{"url", "hooks.example.com/in"}})) == "url");
    CHECK(rejected_field(parse({{"url", "http://h/a b"}})) == "url");
    CHECK(rejected_field(parse({{"url", "http://h/"}, {"headers", {{"X-A", "a\r\nX-B: b"}}}})) ==
          "headers");
    CHECK(rejected_field(parse({{"url", "http://h/"}, {"headers", {{"Bad Name", "v"}}}})) ==
          "headers");
    CHECK(rejected_field(parse({{"url", "http://h/"}, {"headers", {{"X-A", 1}}}})) == "headers");
    CHECK(rejected_field(parse({{"url", "http://h/"}, {"headers", {{"webhook-id", "x"}}}})) ==
          "headers");
    CHECK(rejected_field(parse({{"url", "http://h/"}, {"timeout", "soon"}})) == "timeout");
    CHECK(rejected_field(parse({{"url", "http://h/"}, {"timeout", 10}})) == "timeout");
    CHECK(rejected_field(parse({{"url", "http://h/"}, {"timeout", "0s"}})) == "timeout");
    CHECK(rejected_field(parse({{"url", "http://h/"}, {"timeout_ms", -5}})) == "timeout_ms");
    CHECK(rejected_field(parse({{"url", "http://h/"}, {"timeout", "1s"}, {"timeout_ms", 5}})) !=
          "");
    CHECK(rejected_field(parse({{"url", "http://h/"}, {"retry_on", {500}}})) == "retry_on");
    CHECK(rejected_field(parse({{"url", "http://h/"}, {"retry_on", 404}})) == "retry_on");
    CHECK(rejected_field(parse({{"url", "http://h/"}, {"signing_secret", "whsec_%%%"}})) ==
          "signing_secret");
    CHECK(rejected_field(parse({{"url", "http://h/"}, {"timout", "1s"}})) == "timout");
    CHECK_THROWS_AS(mq::webhook_config_from_json("http://h/"), mq::ValidationError);

    mq::WebhookConfig in_code;
    in_code.url = "gopher://h/";
    CHECK_THROWS_WITH(mq::WebhookHandler(in_code), Contains("http or https"));
}
