// W3C trace context through mq-api (docs/wire-format.md, "Trace context"): every publish
// route stores a valid traceparent/tracestate with the message, a malformed header never
// fails a publish and stores nothing, a hostile tracestate is dropped, and a pull hands
// the trace on with a new span id.
#include <catch2/catch.hpp>
#include <set>

#include "api_process.hpp"
#include "harness.hpp"
#include "mq/core/keys.hpp"
#include "mq/core/time.hpp"
#include "mq/redis/client.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

const std::string kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string kParent = "00f067aa0ba902b7";
const std::string kTraceparent = "00-" + kTrace + "-" + kParent + "-01";
const std::string kPublish = "/api/v1/mq/publish";

struct Session : ApiSession {
    explicit Session(const std::string& queue = "traced") : queue_(queue) {
        api_create_queue(api, token, queue);
    }
    HttpResult publish(const json& body, std::map<std::string, std::string> headers,
                       const std::string& path = kPublish) const {
        return api.call_json("POST", path, body, token, std::move(headers));
    }
    /// Every stream entry of the queue (one partition), as field -> value.
    std::vector<std::map<std::string, std::string>> entries() const {
        mq::redis::Connection redis(mq::redis::parse_url(services().redis_url));
        auto reply = redis.command(
            {"XRANGE", mq::KeyLayout(api.key_prefix()).stream(tenant.tenant(), queue_, 0), "-",
             "+"});
        std::vector<std::map<std::string, std::string>> out;
        for (const auto& entry : reply.elements) {
            std::map<std::string, std::string> fields;
            const auto& kv = entry.elements.at(1).elements;
            for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
                fields[kv[i].as_string()] = kv[i + 1].as_string();
            out.push_back(std::move(fields));
        }
        return out;
    }
    /// The packed members of the queue's delayed set (MessagePack: strings are raw bytes).
    std::vector<std::string> delayed_members() const {
        mq::redis::Connection redis(mq::redis::parse_url(services().redis_url));
        auto reply = redis.command(
            {"ZRANGE", mq::KeyLayout(api.key_prefix()).delayed(tenant.tenant(), queue_, 0), "0",
             "-1"});
        std::vector<std::string> out;
        for (const auto& m : reply.elements) out.push_back(m.as_string());
        return out;
    }
    std::string queue_;
};

std::string field(const std::map<std::string, std::string>& entry, const std::string& name) {
    auto it = entry.find(name);
    return it == entry.end() ? "<absent>" : it->second;
}

}  // namespace

TEST_CASE("api_every_publish_route_stores_a_valid_traceparent_and_tracestate", "[api][trace]") {
    Session s;
    const std::map<std::string, std::string> headers{
        {"traceparent", kTraceparent}, {"tracestate", "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE"}};
    REQUIRE(s.publish({{"queue", "traced"}, {"payload", "single"}}, headers).status == 201);
    auto batch =
        s.publish({{"queue", "traced"}, {"messages", {{{"payload", "b1"}}, {{"payload", "b2"}}}}},
                  headers, kPublish + "/batch");
    REQUIRE(batch.status == 200);
    CHECK(batch.json()["accepted"] == 2);
    REQUIRE(
        s.publish({{"payload", "topic-one"}}, headers, "/api/v1/mq/topics/traced/publish").status ==
        201);
    REQUIRE(s.publish({{"messages", {{{"payload", "topic-many"}}}}}, headers,
                      "/api/v1/mq/topics/traced/publish")
                .status == 200);
    // The header wins over a body trace id.
    REQUIRE(
        s.publish({{"queue", "traced"}, {"payload", "both"}, {"traceId", "body-trace"}}, headers)
            .status == 201);

    auto entries = s.entries();
    REQUIRE(entries.size() == 6);
    for (const auto& e : entries) {
        INFO(field(e, "p"));
        CHECK(field(e, "tr") == kTrace);
        CHECK(field(e, "sp") == kParent);
        CHECK(field(e, "tf") == "01");
        CHECK(field(e, "tst") == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    }

    // Delayed and scheduled messages keep it in the delayed set until they are due.
    REQUIRE(s.publish({{"queue", "traced"}, {"payload", "later"}, {"delay_ms", 600000}}, headers,
                      kPublish + "/delayed")
                .status == 201);
    REQUIRE(s.publish({{"queue", "traced"},
                       {"payload", "at"},
                       {"deliver_at", mq::format_rfc3339(mq::now_ms() + 3600000)}},
                      headers, kPublish + "/scheduled")
                .status == 201);
    auto delayed = s.delayed_members();
    REQUIRE(delayed.size() == 2);
    for (const auto& m : delayed) {
        CHECK(m.find(kTrace) != std::string::npos);
        CHECK(m.find(kParent) != std::string::npos);
        CHECK(m.find("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE") != std::string::npos);
    }
}

TEST_CASE("api_malformed_traceparent_headers_are_ignored_and_store_no_trace", "[api][trace]") {
    Session s;
    const std::vector<std::string> malformed = {
        "garbage",
        "00-" + kTrace + "-" + kParent,                            // no flags
        "00-" + kTrace + "-" + kParent + "-01-extra",              // version 00 has four fields
        "00-" + std::string(32, '0') + "-" + kParent + "-01",      // all-zero trace id
        "00-" + kTrace + "-" + std::string(16, '0') + "-01",       // all-zero parent id
        "ff-" + kTrace + "-" + kParent + "-01",                    // version ff
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + kParent + "-01",  // uppercase
        "00-" + kTrace + "-" + kParent + "-zz",
        std::string(4000, 'a'),
    };
    for (const auto& h : malformed) {
        INFO("traceparent: " << h.substr(0, 80));
        auto r = s.publish({{"queue", "traced"}, {"payload", "x"}},
                           {{"traceparent", h}, {"tracestate", "rojo=1"}});
        CHECK(r.status == 201);
    }
    // With a body trace id, a malformed header leaves it as it is.
    auto kept = s.publish({{"queue", "traced"}, {"payload", "x"}, {"trace_id", "req-42"}},
                          {{"traceparent", "nonsense"}});
    CHECK(kept.status == 201);
    auto entries = s.entries();
    REQUIRE(entries.size() == malformed.size() + 1);
    for (std::size_t i = 0; i < malformed.size(); ++i) {
        for (const char* f : {"tr", "sp", "tf", "tst"}) CHECK(field(entries[i], f) == "<absent>");
    }
    CHECK(field(entries.back(), "tr") == "req-42");
    CHECK(field(entries.back(), "sp") == "<absent>");
}

TEST_CASE("api_hostile_tracestate_is_dropped_and_the_traceparent_kept", "[api][trace]") {
    Session s;
    std::string many;
    for (int i = 0; i < 33; ++i)
        many += (i ? "," : "") + std::string("k") + std::to_string(i) + "=v";
    const std::vector<std::string> hostile = {
        many,                          // 33 members
        "k=" + std::string(300, 'v'),  // value over 256 characters
        "a=" + std::string(250, 'v') + ",b=" + std::string(250, 'v') +
            ",c=" + std::string(20, 'v'),  // over 512 characters
        "a=1,a=2",                         // duplicate key
        "Bad=1",                           // uppercase key
        "a=1,=2",                          // empty key
        "a=b=c",                           // '=' in a value
        "a=\xc3\xa9",                      // not ASCII
    };
    for (const auto& h : hostile) {
        INFO("tracestate: " << h.substr(0, 80));
        auto r = s.publish({{"queue", "traced"}, {"payload", "x"}},
                           {{"traceparent", kTraceparent}, {"tracestate", h}});
        CHECK(r.status == 201);
    }
    auto entries = s.entries();
    REQUIRE(entries.size() == hostile.size());
    for (const auto& e : entries) {
        CHECK(field(e, "tr") == kTrace);
        CHECK(field(e, "tst") == "<absent>");
    }
}

TEST_CASE("api_pulled_messages_carry_their_trace_with_a_new_span", "[api][trace]") {
    Session s;
    auto sub = api_subscribe(s.api, s.token, "traced", "reader");
    REQUIRE(s.publish({{"queue", "traced"}, {"payload", "traced"}},
                      {{"traceparent", kTraceparent}, {"tracestate", "rojo=1"}})
                .status == 201);
    REQUIRE(s.publish({{"queue", "traced"}, {"payload", "plain"}}, {}).status == 201);
    REQUIRE(
        s.publish({{"queue", "traced"}, {"payload", "body"}, {"traceId", "req-7"}}, {}).status ==
        201);
    auto r = s.api.call_json("POST", "/api/v1/mq/subscriptions/" + sub + "/pull",
                             {{"max_messages", 10}}, s.token);
    INFO(r.body);
    REQUIRE(r.status == 200);
    auto messages = r.json()["messages"];
    REQUIRE(messages.size() == 3);
    std::map<std::string, json> by_payload;
    for (const auto& m : messages) by_payload[m["payload"].get<std::string>()] = m;

    const auto& traced = by_payload["traced"];
    CHECK(traced["trace_id"] == kTrace);
    auto tp = traced["traceparent"].get<std::string>();
    CHECK(tp.size() == 55);
    CHECK(tp.substr(0, 36) == "00-" + kTrace + "-");
    CHECK(tp.substr(36, 16) != kParent);  // a span of this delivery, not the publisher's
    CHECK(tp.substr(52) == "-01");
    CHECK(traced["tracestate"] == "rojo=1");

    CHECK(by_payload["plain"]["trace_id"].is_null());
    CHECK(by_payload["plain"]["traceparent"].is_null());
    CHECK(by_payload["plain"]["tracestate"].is_null());
    // A body trace id that is not a W3C trace id is handed on as it is, without traceparent.
    CHECK(by_payload["body"]["trace_id"] == "req-7");
    CHECK(by_payload["body"]["traceparent"].is_null());
}
