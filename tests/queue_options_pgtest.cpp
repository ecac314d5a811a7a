// Per-queue options (payload schema, encryption, access lists, is_public) stored in and
// read back from PostgreSQL, and the API bodies that set them.
#include <catch2/catch.hpp>

#include "harness.hpp"
#include "mq/error.hpp"

using Catch::Matchers::Contains;

namespace {

const nlohmann::json kSchema = nlohmann::json::parse(R"({"type":"object","required":["id"]})");

// The field a refusal names: a ValidationError (400) or a refused schema (422,
// MQ_SCHEMA_INVALID), both of which carry details.field.
std::string field_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const mq::Error& e) {
        if (e.code() != mq::ErrorCode::kValidation && e.code() != mq::ErrorCode::kSchemaInvalid)
            return "<code " + std::string(mq::code_name(e.code())) + ">";
        return e.details().value("field", std::string("<no field>"));
    }
    return "<no error>";
}

}  // namespace

TEST_CASE("catalog_stores_and_loads_schema_encryption_access_lists_and_is_public",
          "[catalog][queue-options]") {
    mqtest::TenantScope ts;
    mq::QueueSpec s;
    s.name = "payments";
    s.schema = kSchema;
    s.encryption = "aes-256-gcm";
    s.allowed_producers = std::vector<std::string>{"svc:billing", "alice@example.com"};
    s.allowed_consumers = std::vector<std::string>{"svc:ledger"};
    s.is_public = true;
    auto created = ts.catalog().create_queue(ts.tenant(), s, mq::Config{});
    CHECK(created.schema == kSchema);

    auto check = [&](const mq::Queue& q) {
        CHECK(q.schema == kSchema);
        CHECK(q.encryption == "aes-256-gcm");
        CHECK(q.allowed_producers == std::vector<std::string>{"svc:billing", "alice@example.com"});
        CHECK(q.allowed_consumers == std::vector<std::string>{"svc:ledger"});
        CHECK(q.is_public);
    };
    check(ts.catalog().get_queue(ts.tenant(), "payments"));
    check(ts.catalog().list_queues(ts.tenant()).at(0));
    check(*ts.catalog().find_queue(ts.tenant(), "payments"));
    check(ts.catalog().get_queue_by_id(ts.tenant(), created.id));
    bool in_all = false;
    for (const auto& q : ts.catalog().all_queues())
        if (q.id == created.id) {
            check(q);
            in_all = true;
        }
    CHECK(in_all);
    auto j = mq::to_json(created);
    CHECK(j.at("schema") == kSchema);
    CHECK(j.at("encryption") == "aes-256-gcm");
    CHECK(j.at("allowed_consumers") == nlohmann::json::array({"svc:ledger"}));
}

TEST_CASE("a_queue_without_options_has_no_schema_no_encryption_and_open_access",
          "[catalog][queue-options]") {
    mqtest::TenantScope ts;
    mq::QueueSpec s;
    s.name = "plain";
    auto q = ts.catalog().create_queue(ts.tenant(), s, mq::Config{});
    CHECK(q.schema.is_null());
    CHECK(q.encryption == "none");
    CHECK(q.allowed_producers.empty());
    CHECK(q.allowed_consumers.empty());
    CHECK_FALSE(q.is_public);
    CHECK(mq::to_json(q).at("schema").is_null());
}

TEST_CASE("update_changes_only_the_given_options_and_null_schema_removes_it",
          "[catalog][queue-options]") {
    mqtest::TenantScope ts;
    auto created = ts.catalog().create_queue(
        ts.tenant(),
        mq::queue_spec_from_json({{"name", "orders"}, {"allowed_producers", {"svc:a"}}}),
        mq::Config{});
    auto q = ts.catalog().update_queue(
        ts.tenant(), "orders",
        mq::queue_changes_from_json({{"schema", kSchema}, {"is_public", true}}));
    CHECK(q.schema == kSchema);
    CHECK(q.is_public);
    CHECK(q.allowed_producers == std::vector<std::string>{"svc:a"});  // untouched
    q = ts.catalog().update_queue(
        ts.tenant(), "orders",
        mq::queue_changes_from_json({{"schema", nullptr},
                                     {"allowed_producers", nlohmann::json::array()},
                                     {"encryption", "aes-256-gcm"}}));
    CHECK(q.schema.is_null());
    CHECK(q.allowed_producers.empty());
    CHECK(q.encryption == "aes-256-gcm");
    CHECK(q.updated_at >= created.updated_at);
    auto reread = ts.catalog().get_queue(ts.tenant(), "orders");
    CHECK(reread.schema.is_null());
    CHECK(reread.encryption == "aes-256-gcm");
}

TEST_CASE("max_length_null_in_the_body_means_unlimited_despite_the_configured_default",
          "[catalog][queue-options]") {
    mqtest::TenantScope ts;
    mq::Config config;
    config.max_queue_length = 100;
    auto limited =
        ts.catalog().create_queue(ts.tenant(), mq::queue_spec_from_json({{"name", "a"}}), config);
    CHECK(limited.max_length == 100);
    auto unlimited = ts.catalog().create_queue(
        ts.tenant(), mq::queue_spec_from_json({{"name", "b"}, {"max_length", nullptr}}), config);
    CHECK_FALSE(unlimited.max_length);
}

TEST_CASE("get_queue_by_id_is_scoped_by_tenant_and_refuses_malformed_ids",
          "[catalog][queue-options]") {
    mqtest::TenantScope a, b;
    auto q = a.catalog().create_queue(a.tenant(), mq::queue_spec_from_json({{"name", "x"}}),
                                      mq::Config{});
    CHECK(a.catalog().get_queue_by_id(a.tenant(), q.id).name == "x");
    CHECK_THROWS_AS(b.catalog().get_queue_by_id(b.tenant(), q.id), mq::Error);
    try {
        a.catalog().get_queue_by_id(a.tenant(), "not-a-uuid'; drop table x;--");
        FAIL("malformed id found a queue");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kQueueNotFound);
    }
}

TEST_CASE("queue_spec_from_json_reads_every_field", "[queue-options]") {
    auto spec = mq::queue_spec_from_json(nlohmann::json::parse(R"({
      "name": "orders", "description": "d", "partitions": 4, "retention_ms": 60000,
      "max_length": 10, "dedup_window_ms": 5000, "schema": {"type": "object"},
      "encryption": "aes-256-gcm", "allowed_producers": ["p1"], "allowed_consumers": ["c1", "c2"],
      "is_public": true})"));
    CHECK(spec.name == "orders");
    CHECK(spec.description == "d");
    CHECK(spec.partition_count == 4);
    CHECK(spec.retention == std::chrono::minutes(1));
    CHECK(spec.max_length == 10);
    CHECK(spec.dedup_window == std::chrono::seconds(5));
    CHECK(spec.schema == nlohmann::json({{"type", "object"}}));
    CHECK(spec.encryption == "aes-256-gcm");
    CHECK(spec.allowed_producers == std::vector<std::string>{"p1"});
    CHECK(spec.allowed_consumers == std::vector<std::string>{"c1", "c2"});
    CHECK(spec.is_public == true);
}

TEST_CASE("queue_bodies_refuse_unknown_fields_wrong_types_and_bad_values_naming_the_field",
          "[queue-options]") {
    using J = nlohmann::json;
    auto spec_field = [](const J& body) {
        return field_of([&] { mq::queue_spec_from_json(body); });
    };
    auto change_field = [](const J& body) {
        return field_of([&] { mq::queue_changes_from_json(body); });
    };
    CHECK(spec_field({{"name", "q"}, {"colour", "red"}}) == "colour");
    CHECK(spec_field({{"description", "no name"}}) == "name");
    CHECK(spec_field({{"name", 5}}) == "name");
    CHECK(spec_field({{"name", "q"}, {"partitions", "4"}}) == "partitions");
    CHECK(spec_field({{"name", "q"}, {"partitions", 1.5}}) == "partitions");
    CHECK(spec_field({{"name", "q"}, {"partitions", 999}}) == "partitions");
    CHECK(spec_field({{"name", "q"}, {"retention_ms", -1}}) == "retention");
    CHECK(spec_field({{"name", "q"}, {"max_length", "big"}}) == "max_length");
    CHECK(spec_field({{"name", "q"}, {"is_public", "yes"}}) == "is_public");
    CHECK(spec_field({{"name", "q"}, {"encryption", "rot13"}}) == "encryption");
    CHECK(spec_field({{"name", "q"}, {"allowed_producers", "svc"}}) == "allowed_producers");
    CHECK(spec_field({{"name", "q"}, {"allowed_consumers", {1}}}) == "allowed_consumers");
    CHECK(spec_field({{"name", "q"}, {"allowed_consumers", {"has space"}}}) == "allowed_consumers");
    CHECK(spec_field({{"name", "q"}, {"schema", "object"}}) == "schema");
    CHECK(spec_field({{"name", "q"}, {"schema", {{"type", 5}}}}) == "schema");
    CHECK(spec_field({{"name", "bad name"}}) != "<no error>");
    CHECK_THROWS_AS(mq::queue_spec_from_json(J::array()), mq::ValidationError);

    CHECK(change_field({{"colour", "red"}}) == "colour");
    CHECK(change_field({{"name", "renamed"}}) == "name");
    CHECK(change_field({{"is_public", 1}}) == "is_public");
    CHECK(change_field({{"schema", {{"minimum", "zero"}}}}) == "schema");
    CHECK_THROWS_AS(mq::queue_changes_from_json(J::object()), mq::ValidationError);
    auto c = mq::queue_changes_from_json({{"max_length", nullptr}});
    REQUIRE(c.max_length);
    CHECK_FALSE(*c.max_length);
}

TEST_CASE("catalog_refuses_an_invalid_schema_before_storing_it", "[catalog][queue-options]") {
    mqtest::TenantScope ts;
    mq::QueueSpec s;
    s.name = "strict";
    s.schema = nlohmann::json::parse(R"({"type": "nonsense"})");
    CHECK(field_of([&] { ts.catalog().create_queue(ts.tenant(), s, mq::Config{}); }) == "schema");
    CHECK_FALSE(ts.catalog().find_queue(ts.tenant(), "strict"));
}
