// The publish use case every path admits messages through (mq-api, mqctl, replay): each
// check on its own, in the order a publish meets them. No I/O.
#include "mq/publish/publish_use_case.hpp"

#include <catch2/catch.hpp>

#include "mq/auth/quota.hpp"
#include "mq/crypto/keyring.hpp"

using nlohmann::json;

namespace {

const char* kKey1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

std::shared_ptr<const mq::Keyring> keyring() {
    return std::make_shared<const mq::Keyring>(
        mq::Keyring::from_json({{"current", "k1"}, {"keys", {{{"id", "k1"}, {"key", kKey1}}}}}));
}

mq::Queue queue(const std::string& name) {
    mq::Queue q;
    q.id = "id-" + name;
    q.updated_at = "2026-01-01T00:00:00Z";
    q.tenant = "acme";
    q.name = name;
    return q;
}

mq::PublishRequest request(const std::string& payload) {
    mq::PublishRequest r;
    r.payload = payload;
    return r;
}

mq::ErrorCode code_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const mq::Error& e) {
        return e.code();
    }
    FAIL("no error thrown");
    return mq::ErrorCode::kInternal;
}

}  // namespace

TEST_CASE("use_case_checks_limits_schema_and_seals_in_one_admission", "[publish]") {
    mq::PublishLimits limits;
    limits.max_message_size = 16;
    limits.max_headers = 1;
    mq::PublishUseCase uc(limits, keyring(), nullptr);
    auto q = queue("orders");

    auto big = request(std::string(17, 'x'));
    CHECK(code_of([&] { uc.admit(q, big); }) == mq::ErrorCode::kPayloadTooLarge);
    auto headers = request("{}");
    headers.headers = {{"a", "1"}, {"b", "2"}};
    CHECK(code_of([&] { uc.admit(q, headers); }) == mq::ErrorCode::kValidation);

    q.schema = json::parse(R"({"type":"object","required":["id"]})");
    auto wrong = request(R"({"x":1})");
    CHECK(code_of([&] { uc.admit(q, wrong); }) == mq::ErrorCode::kSchemaValidation);
    auto right = request(R"({"id":1})");
    CHECK_NOTHROW(uc.admit(q, right));
    CHECK(right.payload == R"({"id":1})");  // plain queue: untouched

    q.encryption = "aes-256-gcm";
    auto sealed = request(R"({"id":2})");
    uc.admit(q, sealed);  // schema checked on the plaintext, then sealed
    CHECK(sealed.encryption_key_id == "k1");
    CHECK(sealed.payload != R"({"id":2})");
    mq::Message m;
    m.payload = sealed.payload;
    m.encryption_key_id = sealed.encryption_key_id;
    CHECK(mq::open_payload(m, *keyring(), q) == R"({"id":2})");

    mq::PublishUseCase without_keys(limits, nullptr, nullptr);
    auto refused = request(R"({"id":3})");
    CHECK(code_of([&] { without_keys.admit(q, refused); }) == mq::ErrorCode::kInternal);
}

TEST_CASE("use_case_batch_refuses_bad_messages_alone_or_the_whole_single_publish", "[publish]") {
    mq::PublishUseCase uc({}, nullptr, nullptr);
    auto q = queue("orders");
    q.schema = json::parse(R"({"type":"integer"})");
    std::vector<mq::PublishRequest> reqs{request("1"), request("\"two\""), request("3"),
                                         request("4")};
    std::vector<std::optional<mq::Error>> parsed(4);
    parsed[3] = mq::ValidationError("message 3: bad field");  // refused by the parser already
    auto out = uc.admit_all(q, reqs, parsed, /*partial=*/true);
    REQUIRE(out.accepted.size() == 2);
    CHECK(out.index == std::vector<std::size_t>{0, 2});
    REQUIRE(out.refused.size() == 4);
    CHECK_FALSE(out.refused[0]);
    REQUIRE(out.refused[1]);
    CHECK(out.refused[1]->code() == mq::ErrorCode::kSchemaValidation);
    CHECK(out.refused[3]->code() == mq::ErrorCode::kValidation);

    CHECK(code_of([&] { uc.admit_all(q, {request("\"no\"")}, {}, /*partial=*/false); }) ==
          mq::ErrorCode::kSchemaValidation);
}

TEST_CASE("use_case_takes_the_tenant_quota_once_per_call_unless_told_not_to", "[publish]") {
    mq::PublishQuota quota(2.0);
    mq::PublishUseCase uc({}, nullptr, nullptr, &quota);
    auto q = queue("orders");
    CHECK_NOTHROW(uc.admit_all(q, {request("a"), request("b")}, {}, true));
    try {
        uc.admit_all(q, {request("c")}, {}, true);
        FAIL("quota not enforced");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kQuotaExceeded);
        CHECK(e.retry_after_s().value_or(0) >= 1);
        CHECK_THAT(e.what(), Catch::Contains("acme"));
    }
    // The platform's internal routes are not charged.
    CHECK_NOTHROW(uc.admit_all(q, {request("d")}, {}, true, /*charge_quota=*/false));
    // Without a quota (mqctl) nothing is counted.
    mq::PublishUseCase operator_uc({}, nullptr, nullptr);
    for (int i = 0; i < 10; ++i) CHECK_NOTHROW(operator_uc.take_quota(q, 100));
}

TEST_CASE("use_case_republish_opens_for_the_source_and_seals_for_the_target", "[publish]") {
    mq::PublishUseCase uc({}, keyring(), nullptr);
    auto from = queue("a");
    from.encryption = "aes-256-gcm";
    auto to = queue("b");
    to.encryption = "aes-256-gcm";
    auto r = request("secret");
    uc.admit(from, r);
    mq::Message m;
    m.id = "0190-old";
    m.payload = r.payload;
    m.encryption_key_id = r.encryption_key_id;
    m.key = "k";
    m.headers_json = R"({"h":"v"})";
    auto again = uc.republish_request(from, m, to);
    CHECK(again.key == "k");
    CHECK(again.headers.at("h") == "v");
    CHECK(again.headers.at("mq-replayed-from") == "0190-old");
    mq::Message moved;
    moved.payload = again.payload;
    moved.encryption_key_id = again.encryption_key_id;
    CHECK(mq::open_payload(moved, *keyring(), to) == "secret");

    // The target's schema is checked on the opened payload.
    to.schema = json::parse(R"({"type":"object"})");
    CHECK(code_of([&] { uc.republish_request(from, m, to); }) == mq::ErrorCode::kSchemaValidation);
    // A key the keyring lacks: a clear error, not garbage.
    m.encryption_key_id = "gone";
    CHECK(code_of([&] { uc.republish_request(from, m, queue("c")); }) == mq::ErrorCode::kInternal);
}

TEST_CASE("keyring_for_loads_the_file_only_when_a_queue_is_encrypted", "[publish]") {
    auto plain = queue("p");
    auto secret = queue("s");
    secret.encryption = "aes-256-gcm";
    CHECK(mq::keyring_for("/nonexistent/keys.yaml", {&plain})->empty());
    CHECK(mq::keyring_for("", {&secret})->empty());
    CHECK_THROWS_AS(mq::keyring_for("/nonexistent/keys.yaml", {&plain, &secret}),
                    mq::ValidationError);
}
