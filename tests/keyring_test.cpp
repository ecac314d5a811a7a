// Payload encryption at rest: the keyring file, AES-256-GCM sealing with associated data,
// key rotation, and refusals for every way a keyring file can be wrong.

#include "mq/crypto/keyring.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "harness.hpp"
#include "mq/error.hpp"
#include "mq/publish/sealing.hpp"

using Catch::Matchers::Contains;

namespace {

const char* kKey1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";  // bytes 0..31
const char* kKey2 = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=";  // bytes 100..131
const char* kShortKey = "AAECAwQFBgcICQoLDA0ODw==";                  // 16 bytes

mq::Keyring ring(const std::string& current) {
    return mq::Keyring::from_json(
        {{"current", current},
         {"keys", {{{"id", "k1"}, {"key", kKey1}}, {{"id", "k2"}, {"key", kKey2}}}}});
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const mq::Error& e) {
        return e.what();
    }
    return "<no error>";
}

mq::Queue queue_named(const std::string& tenant, const std::string& name) {
    mq::Queue q;
    q.tenant = tenant;
    q.name = name;
    q.encryption = "aes-256-gcm";
    return q;
}

}  // namespace

TEST_CASE("sealed_payload_round_trips_and_hides_the_plaintext", "[keyring]") {
    auto k = ring("k1");
    const std::string plain = R"({"card":"4111-1111-1111-1111"})";
    std::string sealed = k.encrypt(plain, "t/orders");
    CHECK(sealed.size() == plain.size() + mq::kSealOverhead);
    CHECK(sealed.find("4111") == std::string::npos);
    CHECK(k.decrypt(sealed, "k1", "t/orders") == plain);
    // A fresh nonce per call: the same plaintext never seals to the same bytes.
    CHECK(k.encrypt(plain, "t/orders") != sealed);
    CHECK(k.decrypt(k.encrypt("", "t/orders"), "k1", "t/orders").empty());
}

TEST_CASE("a_sealed_payload_does_not_open_under_another_queue", "[keyring]") {
    auto k = ring("k1");
    std::string sealed = k.encrypt("secret", "t/orders");
    CHECK_THAT(error_of([&] { k.decrypt(sealed, "k1", "t/other"); }),
               Contains("authentication failed"));
    CHECK_THAT(error_of([&] { k.decrypt(sealed, "k1", "u/orders"); }),
               Contains("authentication failed"));
}

TEST_CASE("any_altered_byte_fails_authentication", "[keyring]") {
    auto k = ring("k1");
    std::string sealed = k.encrypt("hello world", "t/q");
    for (std::size_t i : {std::size_t{0}, std::size_t{11}, std::size_t{12}, sealed.size() - 1}) {
        std::string tampered = sealed;
        tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
        INFO("byte " << i);
        try {
            k.decrypt(tampered, "k1", "t/q");
            FAIL("tampered payload opened");
        } catch (const mq::Error& e) {
            CHECK(e.code() == mq::ErrorCode::kInternal);
            CHECK_THAT(e.what(), Contains("authentication failed"));
        }
    }
    CHECK_THAT(error_of([&] { k.decrypt(sealed.substr(0, 20), "k1", "t/q"); }),
               Contains("authentication failed"));
}

TEST_CASE("an_unknown_key_id_is_refused_by_name", "[keyring]") {
    auto k = ring("k1");
    std::string sealed = k.encrypt("x", "t/q");
    CHECK_THAT(error_of([&] { k.decrypt(sealed, "k9", "t/q"); }), Contains("unknown key id 'k9'"));
    // The right bytes under the wrong (but known) key do not open either.
    CHECK_THAT(error_of([&] { k.decrypt(sealed, "k2", "t/q"); }),
               Contains("authentication failed"));
}

TEST_CASE("after_rotation_new_messages_use_the_new_key_and_old_ones_still_open", "[keyring]") {
    auto before = ring("k1");
    std::string old_sealed = before.encrypt("old", "t/q");
    auto after = ring("k2");
    CHECK(after.current_id() == "k2");
    std::string new_sealed = after.encrypt("new", "t/q");
    CHECK(after.decrypt(old_sealed, "k1", "t/q") == "old");
    CHECK(after.decrypt(new_sealed, "k2", "t/q") == "new");
    CHECK_THROWS(after.decrypt(new_sealed, "k1", "t/q"));
}

TEST_CASE("seal_request_and_open_payload_follow_the_queue_setting", "[keyring]") {
    auto k = ring("k2");
    auto q = queue_named("acme", "payments");
    mq::PublishRequest r;
    r.payload = "pay 10";
    mq::seal_request(r, k, q);
    CHECK(r.encryption_key_id == "k2");
    CHECK(r.payload != "pay 10");
    mq::seal_request(r, k, q);  // sealing twice is a no-op, not a double encryption
    mq::Message m;
    m.payload = r.payload;
    m.encryption_key_id = r.encryption_key_id;
    CHECK(mq::open_payload(m, k, q) == "pay 10");
    CHECK_THROWS(mq::open_payload(m, k, queue_named("acme", "other")));

    mq::Queue plain = queue_named("acme", "plain");
    plain.encryption = "none";
    mq::PublishRequest p;
    p.payload = "visible";
    mq::seal_request(p, mq::Keyring{}, plain);
    CHECK(p.payload == "visible");
    CHECK(p.encryption_key_id.empty());
    mq::Message pm;
    pm.payload = "visible";
    CHECK(mq::open_payload(pm, mq::Keyring{}, plain) == "visible");

    mq::PublishRequest no_ring;
    no_ring.payload = "x";
    CHECK_THAT(error_of([&] { mq::seal_request(no_ring, mq::Keyring{}, q); }),
               Contains("MQ_KEYRING_FILE"));
    CHECK(no_ring.payload == "x");
}

TEST_CASE("keyring_files_load_from_yaml_and_json", "[keyring]") {
    std::string yaml = mqtest::temp_file(std::string("current: k2\nkeys:\n  - id: k1\n    key: ") +
                                         kKey1 + "\n  - id: k2\n    key: " + kKey2 + "\n");
    ::chmod(yaml.c_str(), 0600);
    auto y = mq::Keyring::load(yaml);
    CHECK(y.current_id() == "k2");
    CHECK(y.has_key("k1"));
    std::string json = mqtest::temp_file(
        nlohmann::json({{"current", "k1"}, {"keys", {{{"id", "k1"}, {"key", kKey1}}}}}).dump());
    auto j = mq::Keyring::load(json);
    CHECK(j.current_id() == "k1");
    // Same key bytes under the same id, whichever file format held them.
    CHECK(y.decrypt(j.encrypt("same keys", "a/b"), "k1", "a/b") == "same keys");
}

TEST_CASE("bad_keyring_files_are_refused_naming_the_file_and_the_problem", "[keyring]") {
    auto load_error = [](const std::string& content) {
        std::string path = mqtest::temp_file(content);
        try {
            mq::Keyring::load(path);
        } catch (const mq::ValidationError& e) {
            CHECK_THAT(e.what(), Contains(path));
            return std::string(e.what());
        }
        return std::string("<no error>");
    };
    CHECK_THAT(error_of([] { mq::Keyring::load("/nonexistent/keyring.yaml"); }),
               Contains("/nonexistent/keyring.yaml"));
    CHECK_THAT(
        load_error(std::string("current: k1\nkeys:\n  - id: k1\n    key: ") + kShortKey + "\n"),
        Contains("32 bytes"));
    CHECK_THAT(load_error(std::string("current: k3\nkeys:\n  - id: k1\n    key: ") + kKey1 + "\n"),
               Contains("not one of the listed keys"));
    CHECK_THAT(load_error(std::string("keys:\n  - id: k1\n    key: ") + kKey1 + "\n"),
               Contains("current"));
    CHECK_THAT(load_error("current: k1\nkeys: [\n  - broken"), Contains(":"));
    CHECK_THAT(load_error("current: k1\nkeys:\n  - id: k1\n    key: not*base64!\n"),
               Contains("base64"));
    CHECK_THAT(load_error("current: k1\nkeys: []\n"), Contains("keys"));
    CHECK_THAT(load_error(std::string("current: k1\nkeys:\n  - id: k1\n    key: ") + kKey1 +
                          "\n  - id: k1\n    key: " + kKey2 + "\n"),
               Contains("duplicate key id"));
    CHECK_THAT(load_error(std::string("current: k1\nsecret: x\nkeys:\n  - id: k1\n    key: ") +
                          kKey1 + "\n"),
               Contains("unknown field 'secret'"));
    CHECK_THAT(load_error("- just\n- a list\n"), Contains("mapping"));
}
