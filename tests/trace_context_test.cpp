// W3C Trace Context (docs/wire-format.md, "Trace context"): which traceparent and
// tracestate headers mq keeps, how they are stored with a message and what a delivery hands
// on; the seeds' "tenantId" in a publish body.

#include "mq/core/trace_context.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "mq/auth/access.hpp"
#include "mq/core/message.hpp"
#include "mq/publish/envelope.hpp"

namespace {

const std::string kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string kParent = "00f067aa0ba902b7";
const std::string kHeader = "00-" + kTrace + "-" + kParent + "-01";

std::string members(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += (i ? "," : "") + std::string("k") + std::to_string(i) + "=v";
    return s;
}

}  // namespace

TEST_CASE("traceparent_version_00_is_read_by_its_four_fields", "[trace]") {
    auto p = mq::trace::parse_traceparent(kHeader);
    REQUIRE(p);
    CHECK(p->trace_id == kTrace);
    CHECK(p->parent_id == kParent);
    CHECK(p->flags == "01");
    auto unsampled = mq::trace::parse_traceparent("00-" + kTrace + "-" + kParent + "-00");
    REQUIRE(unsampled);
    CHECK(unsampled->flags == "00");
    // Only the sampled bit is kept; unknown flag bits are not passed on.
    auto other_bits = mq::trace::parse_traceparent("00-" + kTrace + "-" + kParent + "-ff");
    REQUIRE(other_bits);
    CHECK(other_bits->flags == "01");
    CHECK(mq::trace::parse_traceparent("  " + kHeader + "\t"));  // optional white space
}

TEST_CASE("traceparent_malformed_in_any_way_is_not_read", "[trace]") {
    const std::vector<std::string> bad = {
        "",
        "garbage",
        kHeader.substr(0, 54),                                     // one character short
        kHeader + "-",                                             // version 00 is exactly 55
        kHeader + "0",                                             // likewise
        "00-" + std::string(32, '0') + "-" + kParent + "-01",      // all-zero trace id
        "00-" + kTrace + "-" + std::string(16, '0') + "-01",       // all-zero parent id
        "ff-" + kTrace + "-" + kParent + "-01",                    // version ff is invalid
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + kParent + "-01",  // uppercase
        "00-" + kTrace + "-00F067AA0BA902B7-01",
        "00-" + kTrace + "-" + kParent + "-0G",  // not hex
        "0g-" + kTrace + "-" + kParent + "-01",
        "00_" + kTrace + "_" + kParent + "_01",  // wrong separators
        "00-" + kTrace + kParent + "--01",
        "00-" + kTrace.substr(0, 31) + "-" + kParent + "0-01",  // fields of the wrong size
        "01-" + kTrace + "-" + kParent + "-01x",                // a future version's extra
                                                                // part must start with '-'
        std::string("00-") + kTrace + "-" + kParent + "-0\x01",
        std::string("00-4bf92f3577b34da6a3ce929d0e0e473\0-00f067aa0ba902b7-01", 55),
    };
    for (const auto& h : bad) {
        INFO("traceparent: " << h);
        CHECK_FALSE(mq::trace::parse_traceparent(h));
    }
}

TEST_CASE("traceparent_of_a_future_version_is_read_by_its_first_fields", "[trace]") {
    auto p = mq::trace::parse_traceparent("cc-" + kTrace + "-" + kParent + "-01-what-the-future");
    REQUIRE(p);
    CHECK(p->trace_id == kTrace);
    CHECK(p->parent_id == kParent);
    CHECK(mq::trace::parse_traceparent("01-" + kTrace + "-" + kParent + "-00"));
}

TEST_CASE("tracestate_is_cleaned_and_bounded_or_dropped_whole", "[trace]") {
    CHECK(mq::trace::parse_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE") ==
          "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    CHECK(mq::trace::parse_tracestate(" rojo=1 ,, \t congo=2 ,") == "rojo=1,congo=2");
    CHECK(mq::trace::parse_tracestate("a=trailing ") == "a=trailing");  // white space around
    CHECK(mq::trace::parse_tracestate("tenant1@vendor=x,a-b_c*d/e=va lue") ==
          "tenant1@vendor=x,a-b_c*d/e=va lue");
    CHECK(mq::trace::parse_tracestate(members(32)) == members(32));

    const std::vector<std::string> bad = {
        "", " , ", "novalue",
        "Upper=1",        // keys are lowercase
        "1abc=1",         // a simple key starts with a letter
        "a=1,a=2",        // duplicate key
        "a=b=c",          // '=' in a value
        "a=",             // empty value
        "a=\x01",         // control character
        "a=caf\xc3\xa9",  // not ASCII
        "t@Sys=1",        // system id lowercase
        "t@systemidtoolong1=1",
        members(33),                   // more than 32 members
        "k=" + std::string(600, 'v'),  // a value over 256 characters
        "y=" + std::string(250, 'v') + ",z=" + std::string(250, 'v') + ",x=" + std::string(20, 'v'),
        // (over 512 characters in all)
        std::string(40000, ','),  // absurdly long: not read at all
    };
    for (const auto& h : bad) {
        INFO("tracestate: " << h.substr(0, 80));
        CHECK_FALSE(mq::trace::parse_tracestate(h));
    }
}

TEST_CASE("stored_trace_ids_map_to_w3c_trace_ids_where_they_can", "[trace]") {
    CHECK(mq::trace::w3c_trace_id(kTrace) == kTrace);
    CHECK(mq::trace::w3c_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736") == kTrace);
    CHECK(mq::trace::w3c_trace_id("4bf92f35-77b3-4da6-a3ce-929d0e0e4736") == kTrace);
    CHECK_FALSE(mq::trace::w3c_trace_id("req-123"));
    CHECK_FALSE(mq::trace::w3c_trace_id(std::string(32, '0')));
    CHECK_FALSE(mq::trace::w3c_trace_id("4bf92f35_77b3_4da6_a3ce_929d0e0e4736"));
    CHECK_FALSE(mq::trace::w3c_trace_id(std::string(32, 'g')));
}

TEST_CASE("each_handoff_has_the_message_trace_and_a_new_span", "[trace]") {
    mq::Message m;
    m.id = "x";
    m.trace_id = kTrace;
    m.trace_parent_id = kParent;
    m.trace_flags = "00";
    m.trace_state = "rojo=1";
    std::set<std::string> spans;
    for (int i = 0; i < 50; ++i) {
        auto h = mq::trace::handoff(m);
        auto p = mq::trace::parse_traceparent(h.traceparent);
        REQUIRE(p);
        CHECK(p->trace_id == kTrace);
        CHECK(p->flags == "00");
        CHECK(p->parent_id != kParent);
        CHECK(h.tracestate == "rojo=1");
        spans.insert(p->parent_id);
    }
    CHECK(spans.size() == 50);
    // A body trace_id alone: sampled, no tracestate.
    mq::Message body_only;
    body_only.trace_id = "4bf92f35-77b3-4da6-a3ce-929d0e0e4736";
    auto h = mq::trace::handoff(body_only);
    CHECK(h.traceparent.substr(0, 36) == "00-" + kTrace + "-");
    CHECK(h.traceparent.substr(52) == "-01");
    CHECK(h.tracestate.empty());
    // No trace, or one that is not W3C: nothing to hand on.
    mq::Message none;
    CHECK(mq::trace::handoff(none).traceparent.empty());
    none.trace_id = "req-123";
    CHECK(mq::trace::handoff(none).traceparent.empty());
}

TEST_CASE("trace_fields_round_trip_through_the_stream_entry", "[trace]") {
    mq::Message m;
    m.id = "017f22e2-79b0-7cc3-98c4-dc0c0c07398f";
    m.payload = "p";
    m.published_ms = 1;
    m.trace_id = kTrace;
    m.trace_parent_id = kParent;
    m.trace_flags = "01";
    m.trace_state = "rojo=1,congo=2";
    std::vector<std::string> flat;
    mq::encode_fields(m, flat);
    mq::FieldList fields;
    for (std::size_t i = 0; i + 1 < flat.size(); i += 2) fields.emplace_back(flat[i], flat[i + 1]);
    auto has = [&](const std::string& f, const std::string& v) {
        for (const auto& [name, value] : fields)
            if (name == f) return value == v;
        return false;
    };
    CHECK(has("tr", kTrace));
    CHECK(has("sp", kParent));
    CHECK(has("tf", "01"));
    CHECK(has("tst", "rojo=1,congo=2"));
    auto back = mq::decode_fields(fields);
    CHECK(back.trace_id == kTrace);
    CHECK(back.trace_parent_id == kParent);
    CHECK(back.trace_flags == "01");
    CHECK(back.trace_state == "rojo=1,congo=2");
    // A message without trace writes none of the fields.
    mq::Message plain;
    plain.id = m.id;
    plain.payload = "p";
    flat.clear();
    mq::encode_fields(plain, flat);
    for (const char* f : {"tr", "sp", "tf", "tst"})
        CHECK(std::find(flat.begin(), flat.end(), f) == flat.end());
}

TEST_CASE("a_valid_traceparent_header_wins_over_the_body_trace_id", "[trace]") {
    mq::EnvelopeParser parser;
    auto r = parser.parse(R"({"payload":"x","traceId":"body-trace"})");
    mq::apply_trace_context(r, kHeader, "rojo=1, congo=2");
    CHECK(r.trace_id == kTrace);
    CHECK(r.trace_parent_id == kParent);
    CHECK(r.trace_flags == "01");
    CHECK(r.trace_state == "rojo=1,congo=2");

    // Malformed traceparent: nothing changes, the body's trace id stays.
    auto kept = parser.parse(R"({"payload":"x","trace_id":"body-trace"})");
    mq::apply_trace_context(kept, "00-" + std::string(32, '0') + "-" + kParent + "-01", "rojo=1");
    CHECK(kept.trace_id == "body-trace");
    CHECK(kept.trace_parent_id.empty());
    CHECK(kept.trace_state.empty());

    // Malformed tracestate beside a valid traceparent: the traceparent alone is kept.
    auto no_state = parser.parse(R"({"payload":"x"})");
    mq::apply_trace_context(no_state, kHeader, "a=1,a=2");
    CHECK(no_state.trace_id == kTrace);
    CHECK(no_state.trace_state.empty());

    // tracestate without traceparent means nothing.
    auto alone = parser.parse(R"({"payload":"x"})");
    mq::apply_trace_context(alone, "", "rojo=1");
    CHECK(alone.trace_id.empty());
    CHECK(alone.trace_state.empty());
}

TEST_CASE("body_tenant_id_must_name_the_callers_tenant", "[trace][seed]") {
    mq::EnvelopeParser parser;
    auto r = parser.parse(R"({"payload":"x","tenantId":"acme"})");
    CHECK(r.claimed_tenant == "acme");
    CHECK(parser.parse(R"({"payload":"x","tenant_id":"acme"})").claimed_tenant == "acme");
    CHECK_THROWS_AS(parser.parse(R"({"payload":"x","tenantId":7})"), mq::ValidationError);

    mq::Principal p;
    p.tenant = "acme";
    p.role = mq::Role::kProducer;
    CHECK_THROWS_AS(mq::check_claimed_tenant(p, ""), mq::Error);  // a claim, and wrong
    CHECK_NOTHROW(mq::check_claimed_tenant(p, "acme"));
    CHECK_FALSE(parser.parse(R"({"payload":"x"})").claimed_tenant.has_value());
    CHECK(parser.parse(R"({"payload":"x","tenantId":""})").claimed_tenant == "");
    std::string existing, missing;
    try {
        mq::check_claimed_tenant(p, "globex");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kForbidden);
        existing = std::string(e.what()) + e.details().dump();
    }
    try {
        mq::check_claimed_tenant(p, "no-such-tenant-anywhere");
    } catch (const mq::Error& e) {
        missing = std::string(e.what()) + e.details().dump();
    }
    CHECK_FALSE(existing.empty());
    CHECK(existing == missing);  // the answer says nothing about the named tenant
    CHECK(existing.find("globex") == std::string::npos);
}
