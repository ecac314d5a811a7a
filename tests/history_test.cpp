// Pure parts of the message history: the buffer's wire fields and the queue setting.
#include <catch2/catch.hpp>

#include "mq/core/history_event.hpp"
#include "mq/core/keys.hpp"
#include "mq/error.hpp"
#include "mq/queue/queue.hpp"

TEST_CASE("a history event survives its wire fields, unset fields left out", "[history]") {
    mq::HistoryEvent e;
    e.kind = mq::history::kAttempt;
    e.message_id = "0190a5c4-3333-7abc-8def-0123456789ab";
    e.subscription = "billing";
    e.attempt = 3;
    e.outcome = "failed";
    e.duration_ms = 0;
    e.error = std::string(5000, 'x');
    std::vector<std::string> flat;
    mq::encode_history_fields(e, flat);
    mq::FieldList fields;
    for (std::size_t i = 0; i + 1 < flat.size(); i += 2) fields.emplace_back(flat[i], flat[i + 1]);
    CHECK(fields.size() == 7);  // e m s a o d er
    auto back = mq::decode_history_fields(fields);
    CHECK(back.kind == "attempt");
    CHECK(back.attempt == 3);
    CHECK(back.duration_ms == 0);
    CHECK(back.error.size() == mq::HistoryEvent::kMaxError);
    CHECK(back.size == -1);
    CHECK(back.producer.empty());
    auto bad = mq::decode_history_fields({{"a", "3x"}, {"d", "-"}, {"sz", "99999999999999999999"}});
    CHECK(bad.attempt == 0);
    CHECK(bad.duration_ms == -1);
    CHECK(bad.size == -1);
    auto argv = mq::history_xadd("k", e);
    CHECK(argv.at(0) == "XADD");
    CHECK(argv.at(2) == "*");
}

TEST_CASE("one buffer entry may hold several events, each starting at its e field", "[history]") {
    std::vector<mq::HistoryEvent> events(3);
    for (int i = 0; i < 3; ++i) {
        events[i].kind = mq::history::kAttempt;
        events[i].subscription = i < 2 ? "billing" : "audit";
        events[i].consumer = "w1";
        events[i].message_id = "0190a5c4-3333-7abc-8def-01234567890" + std::to_string(i);
        events[i].attempt = i + 1;
        events[i].outcome = "acked";
    }
    auto argv = mq::history_xadd("h", events);
    // XADD h * + (e m s c a o) + (e m a o): the second shares s and c + (e m s c a o)
    REQUIRE(argv.size() == 3 + 12 + 8 + 12);
    mq::FieldList fields;
    for (std::size_t i = 3; i + 1 < argv.size(); i += 2) fields.emplace_back(argv[i], argv[i + 1]);
    auto back = mq::decode_history_entry(fields);
    REQUIRE(back.size() == 3);
    for (int i = 0; i < 3; ++i) {
        CHECK(back[i].message_id == events[i].message_id);
        CHECK(back[i].attempt == i + 1);
        CHECK(back[i].subscription == events[i].subscription);
        CHECK(back[i].consumer == "w1");
    }
    // A single event reads as one; fields before any "e" form an event without a kind (the
    // writer refuses it); an empty entry is one empty event, not none.
    CHECK(mq::decode_history_entry({{"e", "published"}, {"m", "x"}}).size() == 1);
    auto stray = mq::decode_history_entry({{"m", "x"}, {"e", "attempt"}, {"m", "y"}});
    REQUIRE(stray.size() == 2);
    CHECK(stray[0].kind.empty());
    CHECK(stray[1].message_id == "y");
    CHECK(mq::decode_history_entry({}).size() == 1);
}

TEST_CASE("the history buffer shares the partition's hash tag", "[history][keys]") {
    mq::KeyLayout keys("mq:");
    CHECK(keys.history("acme", "orders", 3) == "mq:{acme:orders:3}:h");
    CHECK(keys.history_cursor("acme", "orders", 3) == "mq:{acme:orders:3}:hc");
    CHECK(keys.history("acme", "orders", 3).substr(0, 19) ==
          keys.stream("acme", "orders", 3).substr(0, 19));
}

TEST_CASE("record_messages is a queue setting of both bodies and of the answer",
          "[history][queue]") {
    auto spec = mq::queue_spec_from_json({{"name", "orders"}, {"record_messages", true}});
    CHECK(spec.record_messages == true);
    auto changes = mq::queue_changes_from_json({{"record_messages", false}});
    CHECK(changes.record_messages == false);
    CHECK_FALSE(changes.empty());
    CHECK_THROWS_AS(mq::queue_spec_from_json({{"name", "o"}, {"record_messages", "yes"}}),
                    mq::ValidationError);
    mq::Queue q;
    CHECK(mq::to_json(q).at("record_messages") == false);
    q.record_messages = true;
    CHECK(mq::to_json(q).at("record_messages") == true);
}
