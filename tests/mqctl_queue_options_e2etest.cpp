// Queue options as an operator uses them: a payload schema that mqctl publish enforces,
// an encrypted queue whose stream never holds plaintext, and mq-worker handing the
// plaintext to the handler.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "child_process.hpp"
#include "eventually.hpp"
#include "mqctl_shell.hpp"

using Catch::Matchers::Contains;
using namespace std::chrono_literals;

namespace {

const char* kKey1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const char* kKey2 = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=";

std::string keyring_file(const std::string& current) {
    std::string path = mqtest::temp_file(std::string("current: ") + current +
                                         "\nkeys:\n  - id: k1\n    key: " + kKey1 +
                                         "\n  - id: k2\n    key: " + kKey2 + "\n");
    ::chmod(path.c_str(), 0600);
    return path;
}

class Shell : public mqtest::MqctlShell {
  public:
    // Every field/value of every entry of partition 0, flat, as XRANGE returns them.
    std::vector<std::string> raw_fields(const std::string& queue) {
        std::vector<std::string> out;
        auto r = redis().redis().command({"XRANGE", stream(queue, 0), "-", "+"});
        for (const auto& entry : r.elements)
            for (const auto& f : entry.elements.at(1).elements) out.push_back(f.str);
        return out;
    }
    std::string field(const std::string& queue, const std::string& name) {
        auto f = raw_fields(queue);
        for (std::size_t i = 0; i + 1 < f.size(); i += 2)
            if (f[i] == name) return f[i + 1];
        return {};
    }
};

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

TEST_CASE("queue_create_with_schema_file_and_options_shows_them", "[mqctl][queue-options]") {
    Shell sh;
    std::string schema = mqtest::temp_file(R"({"type":"object","required":["id"]})");
    sh.create_queue({"orders", "--schema-file", schema, "--encryption", "aes-256-gcm",
                     "--allow-producer", "svc:billing", "--allow-producer", "svc:shop",
                     "--allow-consumer", "svc:ledger", "--public"});
    auto j = sh.json_of({"queue", "show", "orders"});
    CHECK(j.at("schema") == nlohmann::json::parse(R"({"type":"object","required":["id"]})"));
    CHECK(j.at("encryption") == "aes-256-gcm");
    CHECK(j.at("allowed_producers") == nlohmann::json::array({"svc:billing", "svc:shop"}));
    CHECK(j.at("allowed_consumers") == nlohmann::json::array({"svc:ledger"}));
    CHECK(j.at("is_public") == true);
    auto table = sh.run({"queue", "show", "orders"});
    REQUIRE_EXIT(table, 0);
    CHECK_THAT(table.out, Contains("svc:billing, svc:shop"));
    CHECK_THAT(table.out, Contains("aes-256-gcm"));

    auto u =
        sh.json_of({"queue", "update", "orders", "--no-schema", "--no-public", "--any-producer"});
    CHECK(u.at("schema").is_null());
    CHECK(u.at("is_public") == false);
    CHECK(u.at("allowed_producers").empty());
    CHECK(u.at("allowed_consumers") == nlohmann::json::array({"svc:ledger"}));
}

TEST_CASE("queue_create_refuses_a_bad_schema_file_or_encryption_with_exit_2",
          "[mqctl][queue-options]") {
    Shell sh;
    auto not_schema =
        sh.run({"queue", "create", "a", "--schema-file", mqtest::temp_file(R"({"type": 12})")});
    REQUIRE_EXIT(not_schema, 2);
    CHECK_THAT(not_schema.err, Contains("schema"));
    REQUIRE_EXIT(sh.run({"queue", "create", "b", "--schema-file", mqtest::temp_file("{not json")}),
                 2);
    REQUIRE_EXIT(sh.run({"queue", "create", "c", "--schema-file", "/nonexistent.json"}), 2);
    REQUIRE_EXIT(sh.run({"queue", "create", "d", "--encryption", "rot13"}), 2);
    REQUIRE_EXIT(sh.run({"queue", "create", "e", "--allow-producer", "bad name"}), 2);
    CHECK(sh.db().catalog().list_queues(sh.tenant()).empty());
}

TEST_CASE("publish_to_a_queue_with_a_schema_refuses_a_bad_payload_with_exit_2_and_stores_nothing",
          "[mqctl][queue-options][schema]") {
    Shell sh;
    sh.create_queue(
        {"orders", "--schema-file",
         mqtest::temp_file(
             R"({"type":"object","required":["id"],"properties":{"id":{"type":"string"}}})")});
    auto bad = sh.run({"publish", "orders", R"({"id": 7})"});
    REQUIRE_EXIT(bad, 2);
    CHECK_THAT(bad.err, Contains("does not match the queue's schema"));
    CHECK_THAT(bad.err, Contains("/id"));
    auto bad_json = sh.run({"-o", "json", "publish", "orders", "not json"});
    REQUIRE_EXIT(bad_json, 2);
    CHECK(nlohmann::json::parse(bad_json.err).at("error").at("code") ==
          "MQ_SCHEMA_VALIDATION_ERROR");
    CHECK(sh.xlen("orders", 0) == 0);

    sh.ok({"publish", "orders", R"({"id": "o-1"})"});
    CHECK(sh.xlen("orders", 0) == 1);
    // A batch checks every line before publishing any: one bad line refuses it all...
    const std::string lines = "{\"payload\":{\"id\":\"o-2\"}}\n{\"payload\":{\"id\":1}}\n";
    auto refused = sh.run({"publish", "orders", "--batch", "-"}, {}, lines);
    REQUIRE_EXIT(refused, 2);
    CHECK_THAT(refused.err, Contains("line 2") && Contains("schema"));
    CHECK(sh.xlen("orders", 0) == 1);
    // ...or, with --skip-invalid, publishes the lines that match.
    auto skipped =
        sh.run({"-o", "json", "publish", "orders", "--batch", "-", "--skip-invalid"}, {}, lines);
    REQUIRE_EXIT(skipped, 0);
    auto report = nlohmann::json::parse(skipped.out);
    CHECK(report.at("published") == 1);
    CHECK(report.at("skipped") == 1);
    CHECK(sh.xlen("orders", 0) == 2);
}

TEST_CASE("publish_batch_to_an_encrypted_queue_seals_every_line",
          "[mqctl][queue-options][encryption]") {
    Shell sh;
    sh.create_queue({"vault", "--encryption", "aes-256-gcm"});
    const std::string lines = "{\"payload\":\"pin=1234\"}\n{\"payload\":\"pin=5678\"}\n";
    auto no_ring = sh.run({"publish", "vault", "--batch", "-"}, {}, lines);
    REQUIRE_EXIT(no_ring, 1);
    CHECK_THAT(no_ring.err, Contains("MQ_KEYRING_FILE"));
    CHECK(sh.xlen("vault", 0) == 0);

    REQUIRE_EXIT(sh.run({"publish", "vault", "--batch", "-"},
                        {{"MQ_KEYRING_FILE", keyring_file("k1")}}, lines),
                 0);
    REQUIRE(sh.xlen("vault", 0) == 2);
    auto fields = sh.raw_fields("vault");
    int key_ids = 0;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        CHECK(fields[i + 1].find("pin=") == std::string::npos);
        if (fields[i] == "ek") {
            CHECK(fields[i + 1] == "k1");
            ++key_ids;
        }
    }
    CHECK(key_ids == 2);
}

TEST_CASE("publish_to_an_encrypted_queue_stores_only_ciphertext_with_the_key_id",
          "[mqctl][queue-options][encryption]") {
    Shell sh;
    sh.create_queue({"secrets", "--encryption", "aes-256-gcm"});
    const std::string plain = "card=4111-1111-1111-1111";

    auto no_ring = sh.run({"publish", "secrets", plain});
    REQUIRE_EXIT(no_ring, 1);
    CHECK_THAT(no_ring.err, Contains("MQ_KEYRING_FILE"));
    CHECK(sh.xlen("secrets", 0) == 0);

    std::string ring = keyring_file("k2");
    REQUIRE_EXIT(sh.run({"publish", "secrets", plain}, {{"MQ_KEYRING_FILE", ring}}), 0);
    REQUIRE(sh.xlen("secrets", 0) == 1);
    for (const auto& f : sh.raw_fields("secrets")) CHECK(f.find("4111") == std::string::npos);
    CHECK(sh.field("secrets", "ek") == "k2");
    CHECK(sh.field("secrets", "p").size() == plain.size() + 28);

    // A plain queue next to it keeps plaintext and no key id.
    sh.create_queue({"open"});
    REQUIRE_EXIT(sh.run({"publish", "open", plain}, {{"MQ_KEYRING_FILE", ring}}), 0);
    CHECK(sh.field("open", "p") == plain);
    CHECK(sh.field("open", "ek").empty());
}

TEST_CASE("mq_worker_hands_the_plaintext_of_an_encrypted_queue_to_the_handler",
          "[mqctl][queue-options][encryption][worker]") {
    Shell sh;
    sh.create_queue({"secrets", "--encryption", "aes-256-gcm"});
    std::string ring = keyring_file("k1");
    REQUIRE_EXIT(sh.run({"publish", "secrets", "first secret"}, {{"MQ_KEYRING_FILE", ring}}), 0);
    // Rotate: the next message uses k2; the worker's keyring opens both.
    std::string rotated = keyring_file("k2");
    REQUIRE_EXIT(sh.run({"publish", "secrets", "second secret"}, {{"MQ_KEYRING_FILE", rotated}}),
                 0);

    std::string dir = "/tmp/" + mqtest::unique_name("mqenc");
    std::filesystem::create_directories(dir);
    std::string out = dir + "/delivered";
    std::string config = dir + "/worker.yaml";
    std::ofstream(config)
        << "tenant: " << sh.tenant() << "\nredis_key_prefix: \"" << sh.redis().prefix()
        << "\"\nshutdown_timeout: 5s\nsubscriptions:\n"
        << "  - queue: secrets\n    name: reader\n    start_from: earliest\n"
        << "    handler:\n      type: exec\n      command: [\"/bin/sh\", \"-c\", \"cat >> " << out
        << "; echo >> " << out << "\"]\n      timeout: 10s\n";
    mqtest::ChildProcess worker(MQ_WORKER_PATH, {"--config", config, "--metrics-port", "0"},
                                mqtest::service_env({{"MQ_KEYRING_FILE", rotated}}), dir + "/log");

    std::string delivered;
    mqtest::eventually(
        [&] {
            delivered = read_file(out);
            return delivered.find("first secret") != std::string::npos &&
                   delivered.find("second secret") != std::string::npos;
        },
        15s, 50ms);
    worker.terminate(20s);
    INFO("worker log:\n" << worker.log());
    CHECK_THAT(delivered, Contains("first secret"));
    CHECK_THAT(delivered, Contains("second secret"));
    std::filesystem::remove_all(dir);
}
