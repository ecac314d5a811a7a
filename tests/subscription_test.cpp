// Subscription settings, backoff and header filters (pure).
#include "mq/consume/subscription.hpp"

#include <catch2/catch.hpp>

#include "mq/error.hpp"

using namespace std::chrono_literals;

TEST_CASE("backoff doubles from the initial value up to the cap", "[subscription]") {
    mq::RetryPolicy p;
    p.initial_backoff = 1000ms;
    p.max_backoff = 10000ms;
    p.multiplier = 2.0;
    p.jitter = 0.0;
    CHECK(mq::backoff_for(p, 1, 0.5) == 1000ms);
    CHECK(mq::backoff_for(p, 2, 0.5) == 2000ms);
    CHECK(mq::backoff_for(p, 4, 0.5) == 8000ms);
    CHECK(mq::backoff_for(p, 5, 0.5) == 10000ms);
    CHECK(mq::backoff_for(p, 60, 0.5) == 10000ms);
}

TEST_CASE("jitter spreads the backoff by at most its fraction", "[subscription]") {
    mq::RetryPolicy p;
    p.initial_backoff = 1000ms;
    p.jitter = 0.2;
    CHECK(mq::backoff_for(p, 1, 0.0) == 800ms);
    CHECK(mq::backoff_for(p, 1, 0.5) == 1000ms);
    CHECK(mq::backoff_for(p, 1, 0.9999) >= 1199ms);
}

TEST_CASE("subscription settings read from JSON with durations and refuse unknown fields",
          "[subscription]") {
    auto s = mq::subscription_from_json({{"name", "billing"},
                                         {"queue", "orders"},
                                         {"type", "webhook"},
                                         {"handler", {{"url", "http://x"}}},
                                         {"max_attempts", 7},
                                         {"initial_backoff", "500ms"},
                                         {"max_backoff", "1m"},
                                         {"visibility_timeout", 60000},
                                         {"filter", {{"headers", {{"region", {"eu", "us"}}}}}}});
    CHECK(s.name == "billing");
    CHECK(s.retry.max_attempts == 7);
    CHECK(s.retry.initial_backoff == 500ms);
    CHECK(s.retry.max_backoff == 60000ms);
    CHECK(s.visibility_timeout == 60000ms);
    CHECK_NOTHROW(mq::validate(s));
    auto round = mq::subscription_from_json(mq::to_json(s));
    CHECK(round.retry.max_backoff == s.retry.max_backoff);
    CHECK(round.filter == s.filter);
    CHECK_THROWS_WITH(mq::subscription_from_json({{"name", "x"}, {"max_atempts", 3}}),
                      Catch::Contains("max_atempts"));
    CHECK_THROWS_AS(mq::subscription_from_json({{"initial_backoff", "soon"}}), mq::ValidationError);
}

TEST_CASE("invalid subscription settings are refused with the field named", "[subscription]") {
    mq::Subscription s;
    s.name = "ok";
    s.queue = "orders";
    CHECK_NOTHROW(mq::validate(s));
    auto refused = [](mq::Subscription bad, const char* field) {
        try {
            mq::validate(bad);
            FAIL("accepted bad " << field);
        } catch (const mq::ValidationError& e) {
            CHECK(e.details()["field"] == field);
        }
    };
    auto b = s;
    b.type = "carrier-pigeon";
    refused(b, "type");
    b = s;
    b.retry.max_attempts = 0;
    refused(b, "max_attempts");
    b = s;
    b.retry.max_backoff = 1ms;
    refused(b, "max_backoff");
    b = s;
    b.retry.jitter = 1.5;
    refused(b, "jitter");
    b = s;
    b.visibility_timeout = 10ms;
    refused(b, "visibility_timeout");
    b = s;
    b.concurrency = 0;
    refused(b, "concurrency");
    b = s;
    b.filter = {{"payload", 1}};
    refused(b, "filter");
    b = s;
    b.filter = {{"headers", {{"a", 1}}}};
    refused(b, "filter.headers.a");
    b = s;
    b.name = "bad name";
    CHECK_THROWS_AS(mq::validate(b), mq::ValidationError);
}

TEST_CASE("a header filter matches by value or any of a list", "[subscription]") {
    nlohmann::json f = {{"headers", {{"region", {"eu", "us"}}, {"type", "order"}}}};
    CHECK(mq::filter_matches(f, R"({"region":"eu","type":"order","x":"y"})"));
    CHECK(mq::filter_matches(f, R"({"region":"us","type":"order"})"));
    CHECK_FALSE(mq::filter_matches(f, R"({"region":"apac","type":"order"})"));
    CHECK_FALSE(mq::filter_matches(f, R"({"region":"eu"})"));
    CHECK_FALSE(mq::filter_matches(f, ""));
    CHECK_FALSE(mq::filter_matches(f, "not json"));
    CHECK(mq::filter_matches(nullptr, ""));
}

TEST_CASE("a subscription on another tenant's queue has a group naming its tenant and is pull only",
          "[subscription]") {
    mq::Subscription s;
    s.tenant = "acme";
    s.queue = "orders";
    s.name = "audit";
    CHECK(mq::queue_owner(s) == "acme");
    CHECK_FALSE(mq::is_cross_tenant(s));
    CHECK(mq::consumer_group(s) == "audit");  // unchanged for the tenant's own queue
    s.queue_tenant = "acme";
    CHECK(mq::consumer_group(s) == "audit");

    s.queue_tenant = "globex";
    CHECK(mq::queue_owner(s) == "globex");
    CHECK(mq::is_cross_tenant(s));
    CHECK(mq::consumer_group(s) == "acme:audit");
    CHECK_NOTHROW(mq::validate(s));
    // No own subscription name can be another tenant's group name.
    mq::Subscription own = s;
    own.queue_tenant.clear();
    own.name = "acme:audit";
    CHECK_THROWS_AS(mq::validate(own), mq::ValidationError);

    auto refused = [](const mq::Subscription& bad, const char* field) {
        try {
            mq::validate(bad);
            FAIL("accepted bad " << field);
        } catch (const mq::ValidationError& e) {
            CHECK(e.details()["field"] == field);
        }
    };
    auto b = s;
    b.type = "webhook";
    refused(b, "type");
    b = s;
    b.queue_tenant = "not a tenant";
    refused(b, "queue_tenant");

    auto j = mq::to_json(s);
    CHECK(j["tenant"] == "acme");
    CHECK(j["queue_tenant"] == "globex");
    CHECK(mq::subscription_from_json(j).queue_tenant == "globex");
    CHECK_THROWS_AS(mq::subscription_from_json({{"queue_tenant", 1}}), mq::ValidationError);
}
