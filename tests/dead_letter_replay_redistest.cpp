// Dead-letter replay through the publish use case, against a real redis-server: the
// target's current schema, re-sealing across encrypted queues, dry runs, pacing, a crash
// between publish and removal, paging with a cursor, and Redis refusing the publish.
// (Redis down during a replay: api_dead_letters_apitest.cpp.)
#include <catch2/catch.hpp>
#include <chrono>
#include <set>

#include "harness.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/consume/dead_letters.hpp"
#include "mq/crypto/keyring.hpp"
#include "mq/publish/publish_use_case.hpp"

using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const char* kKey1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const char* kKey2 = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=";

std::shared_ptr<const mq::Keyring> keyring(const std::string& current = "k1") {
    return std::make_shared<const mq::Keyring>(mq::Keyring::from_json(
        {{"current", current},
         {"keys", {{{"id", "k1"}, {"key", kKey1}}, {{"id", "k2"}, {"key", kKey2}}}}}));
}

mq::Queue make_queue(const std::string& stem, int partitions = 1) {
    mq::Queue q;
    q.id = mqtest::unique_name("id");
    q.updated_at = "2026-01-01T00:00:00Z";
    q.tenant = "acme";
    q.name = mqtest::unique_name(stem);
    q.partition_count = partitions;
    return q;
}

struct Replay {
    mqtest::RedisScope rs;
    mq::ConsumerGroups groups{rs.redis(), rs.keys()};
    mq::Publisher pub{rs.redis(), rs.keys()};
    mq::DeadLetterStore dlq{rs.redis(), rs.keys()};
    mq::PublishUseCase use_case{{}, keyring(), nullptr};
    mq::Subscription sub;

    Replay() {
        sub.name = "billing";
        sub.start_from = "earliest";
    }
    // Publishes `payloads` through the use case (so an encrypted queue gets them sealed) and
    // dead-letters every one with `reason`.
    void kill(const mq::Queue& q, const std::vector<std::string>& payloads,
              const std::string& reason = "max_attempts") {
        groups.ensure(q, sub);
        for (std::size_t i = 0; i < payloads.size(); ++i) {
            mq::PublishRequest r;
            r.payload = payloads[i];
            r.key = "k" + std::to_string(i);
            use_case.admit(q, r);
            pub.publish(q, r);
        }
        for (int p = 0; p < q.partition_count; ++p)
            for (auto& f : groups.read_new(q, sub, "c", p, 1000, 0ms))
                REQUIRE(groups.dead_letter(q, sub.name, p, f.stream_id, reason, "HTTP 500", 5));
    }
    std::vector<mq::Message> stream(const mq::Queue& q) {
        std::vector<mq::Message> out;
        for (int p = 0; p < q.partition_count; ++p) {
            auto r =
                rs.redis().command({"XRANGE", rs.keys().stream(q.tenant, q.name, p), "-", "+"});
            for (const auto& e : r.elements) {
                mq::FieldList fields;
                const auto& kv = e.elements.at(1).elements;
                for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
                    fields.emplace_back(kv[i].str, kv[i + 1].str);
                out.push_back(mq::decode_fields(fields));
            }
        }
        return out;
    }
    std::vector<mq::DeadLetter> all(const mq::Queue& q) { return dlq.select(q, {}, 1000); }
};

}  // namespace

TEST_CASE("replay_refuses_a_payload_that_breaks_the_targets_current_schema_and_keeps_it",
          "[dlq][replay]") {
    Replay f;
    auto q = make_queue("orders");
    f.kill(q, {R"({"amount":5})", R"({"amount":"five"})"});
    // The schema arrives after the messages died: replay checks the queue as it is now.
    q.schema = json::parse(
        R"({"type":"object","required":["amount"],"properties":{"amount":{"type":"integer"}}})");
    q.updated_at = "2026-02-01T00:00:00Z";
    auto todo = f.all(q);
    REQUIRE(todo.size() == 2);
    auto report = f.dlq.replay_all(q, todo, {}, q, f.pub, f.use_case, {});
    CHECK(report.replayed == 1);
    REQUIRE(report.failed == 1);
    const auto& bad = report.results.at(1);
    CHECK(bad.status == mq::ReplayStatus::kFailed);
    REQUIRE(bad.error);
    CHECK(bad.error->code() == mq::ErrorCode::kSchemaValidation);
    CHECK_THAT(bad.error->what(), Catch::Contains("schema"));
    auto left = f.all(q);
    REQUIRE(left.size() == 1);
    CHECK(left[0].message.payload == R"({"amount":"five"})");
    CHECK(f.stream(q).size() == 3);  // two originals + the one good replay
}

TEST_CASE("replay_to_another_encrypted_queue_reseals_so_it_opens_there", "[dlq][replay]") {
    Replay f;
    auto from = make_queue("secret");
    from.encryption = "aes-256-gcm";
    auto to = make_queue("vault");
    to.encryption = "aes-256-gcm";
    f.kill(from, {"card 4111"});
    auto d = f.all(from).at(0);
    REQUIRE_FALSE(d.message.encryption_key_id.empty());
    REQUIRE(d.message.payload != "card 4111");  // sealed at rest

    // A rotation happened meanwhile: the replay is sealed with the current key (k2).
    mq::PublishUseCase rotated({}, keyring("k2"), nullptr);
    auto out = f.dlq.replay(from, d, to, f.pub, rotated);
    CHECK(out.status == mq::PublishStatus::kAccepted);
    auto moved = f.stream(to);
    REQUIRE(moved.size() == 1);
    CHECK(moved[0].encryption_key_id == "k2");
    CHECK(moved[0].payload != "card 4111");
    CHECK(mq::open_payload(moved[0], *keyring(), to) == "card 4111");
    CHECK_THROWS_AS(mq::open_payload(moved[0], *keyring(), from), mq::Error);  // bound to its queue
    CHECK(f.all(from).empty());

    // Replayed to a plain queue it arrives in plaintext, not as ciphertext.
    auto plain = make_queue("plain");
    f.kill(from, {"second"});
    f.dlq.replay(from, f.all(from).at(0), plain, f.pub, f.use_case);
    auto clear = f.stream(plain);
    REQUIRE(clear.size() == 1);
    CHECK(clear[0].payload == "second");
    CHECK(clear[0].encryption_key_id.empty());
}

TEST_CASE("replay_of_a_sealed_dead_letter_without_the_key_fails_and_keeps_it", "[dlq][replay]") {
    Replay f;
    auto q = make_queue("secret");
    q.encryption = "aes-256-gcm";
    f.kill(q, {"x"});
    mq::PublishUseCase no_keys({}, nullptr, nullptr);
    auto report = f.dlq.replay_all(q, f.all(q), {}, q, f.pub, no_keys, {});
    CHECK(report.failed == 1);
    CHECK(f.all(q).size() == 1);
}

TEST_CASE("replay_dry_run_reports_what_would_happen_and_changes_nothing", "[dlq][replay]") {
    Replay f;
    auto q = make_queue("orders", 2);
    f.kill(q, {"a", "b", "c"});
    auto full = make_queue("full");
    full.max_length = 1;
    auto before = f.stream(q).size();
    mq::ReplayOptions dry;
    dry.dry_run = true;
    std::size_t seen = 0;
    dry.on_result = [&](const mq::ReplayResult& r) {
        ++seen;
        CHECK(r.status ==
              (r.id == "0:1-1" ? mq::ReplayStatus::kNotFound : mq::ReplayStatus::kWouldReplay));
    };
    auto report = f.dlq.replay_all(q, f.all(q), {"0:1-1"}, q, f.pub, f.use_case, dry);
    CHECK(report.would_replay == 3);
    CHECK(report.replayed == 0);
    CHECK(report.not_found == 1);
    CHECK(seen == 4);
    CHECK(f.all(q).size() == 3);
    CHECK(f.stream(q).size() == before);
    CHECK(f.rs.redis()
              .command({"EXISTS", f.rs.keys().stream(full.tenant, full.name, 0)})
              .as_integer() == 0);
}

TEST_CASE("replay_rate_paces_messages_evenly", "[dlq][replay]") {
    Replay f;
    auto q = make_queue("orders");
    f.kill(q, {"1", "2", "3", "4", "5"});
    mq::ReplayOptions paced;
    paced.rate_per_s = 20;  // 5 messages: the last starts 200 ms after the first
    auto t0 = std::chrono::steady_clock::now();
    auto report = f.dlq.replay_all(q, f.all(q), {}, q, f.pub, f.use_case, paced);
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(report.replayed == 5);
    CHECK(took >= 190ms);
    CHECK(took < 3s);

    CHECK(mq::parse_replay_rate("50", "--rate") == 50);
    CHECK(mq::parse_replay_rate("50/s", "--rate") == 50);
    CHECK(mq::parse_replay_rate("120/m", "--rate") == 2);
    CHECK(mq::parse_replay_rate("0.5", "--rate") == 0.5);
    for (const char* bad : {"", "0", "-1", "x", "5/d", "1e9", "nan", "5/"})
        CHECK_THROWS_AS(mq::parse_replay_rate(bad, "--rate"), mq::ValidationError);
    paced.rate_per_s = 0;
    CHECK_THROWS_AS(f.dlq.replay_all(q, {}, {}, q, f.pub, f.use_case, paced), mq::ValidationError);
}

TEST_CASE("replay_interrupted_after_the_publish_publishes_nothing_new_when_run_again",
          "[dlq][replay]") {
    Replay f;
    auto q = make_queue("orders");
    f.kill(q, {"once"});
    auto d = f.all(q).at(0);
    // The first run published and died before XDEL: do its publish by hand.
    auto r = f.use_case.republish_request(q, d.message, q);
    r.idempotency_key = "mq-replay:" + q.tenant + "/" + q.name + ":" + d.handle();
    auto first = f.pub.publish(q, r);
    REQUIRE(f.all(q).size() == 1);  // the dead letter is still there

    auto again = f.dlq.replay(q, d, q, f.pub, f.use_case);
    CHECK(again.status == mq::PublishStatus::kDuplicate);
    CHECK(again.message_id == first.message_id);
    CHECK(f.all(q).empty());
    std::size_t replays = 0;
    for (const auto& m : f.stream(q))
        if (m.headers_json.find("mq-replayed-from") != std::string::npos) ++replays;
    CHECK(replays == 1);
}

TEST_CASE("replay_refused_by_redis_keeps_every_dead_letter", "[dlq][replay]") {
    Replay f;
    auto q = make_queue("orders");
    f.kill(q, {"a", "b"});
    auto full = make_queue("full");
    full.max_length = 1;
    mq::PublishRequest filler;
    filler.payload = "x";
    f.pub.publish(full, filler);
    auto report = f.dlq.replay_all(q, f.all(q), {}, full, f.pub, f.use_case, {});
    CHECK(report.failed == 2);
    REQUIRE(report.results.at(0).error);
    CHECK(report.results.at(0).error->code() == mq::ErrorCode::kQueueFull);
    CHECK(f.all(q).size() == 2);
}

TEST_CASE("dead_letter_pages_follow_the_cursor_across_partitions_and_filters", "[dlq]") {
    Replay f;
    auto q = make_queue("orders", 3);
    f.kill(q, {"a", "b", "c", "d", "e", "f", "g"});
    f.kill(q, {"x", "y"}, "expired");
    std::vector<std::string> seen;
    mq::DeadLetterFilter filter;
    filter.reason = "max_attempts";
    for (int guard = 0; guard < 20; ++guard) {
        auto page = f.dlq.page(q, filter, 2);
        CHECK(page.items.size() <= 2);
        for (const auto& d : page.items) {
            CHECK(d.reason == "max_attempts");
            seen.push_back(d.handle());
        }
        if (page.next_cursor.empty()) break;
        filter.after = page.next_cursor;
    }
    CHECK(seen.size() == 7);
    CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 7);
    // Newest first, as one page of everything lists them.
    filter.after.clear();
    auto whole = f.dlq.page(q, filter, 100);
    CHECK(whole.next_cursor.empty());
    REQUIRE(whole.items.size() == 7);
    for (std::size_t i = 0; i < 7; ++i) CHECK(whole.items[i].handle() == seen[i]);
    filter.reason = "expired";
    CHECK(f.dlq.page(q, filter, 100).items.size() == 2);
    filter.reason.clear();
    filter.before_ms = 1;
    CHECK(f.dlq.page(q, filter, 100).items.empty());

    for (const char* bad : {"nonsense", "9:1-0", "1-0", "0:x"}) {
        mq::DeadLetterFilter cursor;
        cursor.after = bad;
        INFO(bad);
        try {
            f.dlq.page(q, cursor, 10);
            FAIL("accepted");
        } catch (const mq::ValidationError& e) {
            CHECK(e.details()["field"] == "cursor");
        }
    }
}
