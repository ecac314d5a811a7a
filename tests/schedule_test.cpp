// Schedule bodies (API JSON) and checks without backends: payload typing, unknown and
// mistyped fields, reserved headers, updates that try to rename or set nothing.
#include "mq/schedule/schedule.hpp"

#include <catch2/catch.hpp>

#include "mq/error.hpp"

using nlohmann::json;

namespace {

json body() {
    return {{"name", "nightly"}, {"queue", "jobs"}, {"cron", "@daily"}, {"payload", "hello"}};
}

std::string field_of(const json& b, bool update = false) {
    try {
        if (update)
            mq::schedule_changes_from_json(b);
        else
            mq::validate(mq::schedule_spec_from_json(b), {});
    } catch (const mq::Error& e) {
        return e.details().value("field", std::string("?"));
    }
    return "accepted";
}

}  // namespace

TEST_CASE("schedule_body_types_json_payloads_and_keeps_strings_as_they_are", "[unit][schedule]") {
    auto plain = mq::schedule_spec_from_json(body());
    CHECK(plain.payload == "hello");
    CHECK(plain.content_type.empty());
    CHECK(plain.tz == "UTC");
    CHECK(plain.misfire == "once");
    CHECK_FALSE(plain.paused);

    auto b = body();
    b["payload"] = {{"n", 1}};
    auto typed = mq::schedule_spec_from_json(b);
    CHECK(typed.payload == "{\"n\":1}");
    CHECK(typed.content_type == "application/json");
    b["content_type"] = "application/vnd.acme+json";
    CHECK(mq::schedule_spec_from_json(b).content_type == "application/vnd.acme+json");

    mq::Schedule s;
    s.payload = typed.payload;
    s.content_type = "application/json";
    s.status = "paused";
    s.next_tick_ms = 1;
    auto j = mq::to_json(s);
    CHECK(j["payload"] == json{{"n", 1}});
    CHECK(j["next_tick_at"].is_null());  // paused: no next tick shown
}

TEST_CASE("schedule_body_refuses_unknown_missing_and_mistyped_fields", "[unit][schedule]") {
    auto with = [](const char* key, json v) {
        auto b = body();
        b[key] = std::move(v);
        return b;
    };
    CHECK(field_of(body()) == "accepted");
    CHECK(field_of(with("colour", "blue")) == "colour");
    CHECK(field_of(with("cron", 5)) == "cron");
    CHECK(field_of(with("paused", "yes")) == "paused");
    CHECK(field_of(with("headers", {{"a", 1}})) == "headers");
    CHECK(field_of(with("headers", {{"mq-schedule", "x"}})) == "headers");
    CHECK(field_of(with("misfire", "sometimes")) == "misfire");
    CHECK(field_of(with("tz", "Nowhere/City")) == "tz");
    CHECK(field_of(with("cron", "* * *")) == "cron");
    CHECK(field_of(with("name", "no/slash")) == "schedule name");
    CHECK(field_of(with("queue", "a b")) == "queue name");
    for (const char* required : {"name", "queue", "cron", "payload"}) {
        auto b = body();
        b.erase(required);
        CHECK(field_of(b) == required);
    }
    CHECK_THROWS_AS(mq::schedule_spec_from_json(json::array()), mq::ValidationError);
}

TEST_CASE("schedule_update_body_refuses_rename_paused_and_nothing", "[unit][schedule]") {
    CHECK(field_of({{"name", "x"}}, true) == "name");
    CHECK(field_of({{"paused", true}}, true) == "paused");
    CHECK(field_of(json::object(), true) == "?");
    auto c = mq::schedule_changes_from_json({{"payload", {1, 2}}, {"tz", "Europe/Berlin"}});
    CHECK(c.payload == "[1,2]");
    CHECK(c.content_type == "application/json");
    CHECK(c.tz == "Europe/Berlin");
    CHECK_FALSE(c.cron);
    mq::PublishLimits small;
    small.max_message_size = 3;
    try {
        mq::validate(c, small);
        FAIL("accepted a payload over the limit");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kPayloadTooLarge);
    }
}
