// Queue settings: range checks for create/update, back-pressure per partition, JSON view.

#include "mq/queue/queue.hpp"

#include <catch2/catch.hpp>
#include <string>

#include "mq/error.hpp"

using Catch::Matchers::Contains;
using std::chrono::milliseconds;

namespace {

std::string field_of_error(const mq::QueueSpec& spec) {
    try {
        mq::validate(spec);
    } catch (const mq::ValidationError& e) {
        return e.details().value("field", std::string("<no field>"));
    }
    return "<no error>";
}

std::string field_of_error(const mq::QueueChanges& changes) {
    try {
        mq::validate(changes);
    } catch (const mq::ValidationError& e) {
        return e.details().value("field", std::string("<no field>"));
    }
    return "<no error>";
}

mq::QueueSpec spec_named(std::string name) {
    mq::QueueSpec spec;
    spec.name = std::move(name);
    return spec;
}

}  // namespace

// ---- QueueSpec -------------------------------------------------------------------------

TEST_CASE("queue_spec_with_only_a_name_is_valid", "[queue]") {
    CHECK(field_of_error(spec_named("orders")) == "<no error>");
}

TEST_CASE("queue_spec_with_every_field_in_range_is_valid", "[queue]") {
    mq::QueueSpec spec = spec_named("orders");
    spec.description = std::string(1024, 'd');
    spec.partition_count = 256;
    spec.retention = milliseconds(1);
    spec.max_length = 1;
    spec.dedup_window = milliseconds(1);
    CHECK_NOTHROW(mq::validate(spec));
    spec.partition_count = 1;
    CHECK_NOTHROW(mq::validate(spec));
}

TEST_CASE("queue_spec_name_must_be_a_valid_name", "[queue]") {
    CHECK_THROWS_WITH(mq::validate(spec_named("")), Contains("queue name"));
    CHECK(field_of_error(spec_named("a:b")) == "queue name");
    CHECK(field_of_error(spec_named(std::string(65, 'q'))) == "queue name");
}

TEST_CASE("queue_spec_partitions_must_be_from_1_to_256", "[queue]") {
    for (int n : {0, 257, -1, 1000}) {
        mq::QueueSpec spec = spec_named("orders");
        spec.partition_count = n;
        INFO(n);
        CHECK(field_of_error(spec) == "partitions");
        CHECK_THROWS_WITH(mq::validate(spec), Contains("got " + std::to_string(n)));
    }
}

TEST_CASE("queue_spec_retention_must_be_positive", "[queue]") {
    mq::QueueSpec spec = spec_named("orders");
    spec.retention = milliseconds(0);
    CHECK(field_of_error(spec) == "retention");
    spec.retention = milliseconds(-5);
    CHECK(field_of_error(spec) == "retention");
}

TEST_CASE("queue_spec_dedup_window_must_be_positive", "[queue]") {
    mq::QueueSpec spec = spec_named("orders");
    spec.dedup_window = milliseconds(0);
    CHECK(field_of_error(spec) == "dedup_window");
}

TEST_CASE("queue_spec_max_length_must_be_positive", "[queue]") {
    mq::QueueSpec spec = spec_named("orders");
    spec.max_length = -1;
    CHECK(field_of_error(spec) == "max_length");
    spec.max_length = 0;
    CHECK(field_of_error(spec) == "max_length");
}

TEST_CASE("queue_spec_description_may_not_exceed_1024_characters", "[queue]") {
    mq::QueueSpec spec = spec_named("orders");
    spec.description = std::string(1025, 'd');
    CHECK(field_of_error(spec) == "description");
}

// ---- QueueChanges ----------------------------------------------------------------------

TEST_CASE("queue_changes_empty_only_when_nothing_is_set", "[queue]") {
    mq::QueueChanges c;
    CHECK(c.empty());
    CHECK(field_of_error(c) == "<no error>");
    c.max_length = std::optional<std::int64_t>{};  // "make unlimited" is a change
    CHECK_FALSE(c.empty());
    mq::QueueChanges d;
    d.description = "";
    CHECK_FALSE(d.empty());
}

TEST_CASE("queue_changes_are_checked_like_a_spec", "[queue]") {
    {
        mq::QueueChanges c;
        c.partition_count = 0;
        CHECK(field_of_error(c) == "partitions");
        c.partition_count = 257;
        CHECK(field_of_error(c) == "partitions");
        c.partition_count = 256;
        CHECK(field_of_error(c) == "<no error>");
    }
    {
        mq::QueueChanges c;
        c.retention = milliseconds(0);
        CHECK(field_of_error(c) == "retention");
    }
    {
        mq::QueueChanges c;
        c.dedup_window = milliseconds(-1);
        CHECK(field_of_error(c) == "dedup_window");
    }
    {
        mq::QueueChanges c;
        c.description = std::string(1025, 'd');
        CHECK(field_of_error(c) == "description");
        c.description = std::string(1024, 'd');
        CHECK(field_of_error(c) == "<no error>");
    }
}

TEST_CASE("queue_changes_max_length_may_be_made_unlimited_but_not_zero", "[queue]") {
    mq::QueueChanges c;
    c.max_length = std::optional<std::int64_t>{};
    CHECK(field_of_error(c) == "<no error>");
    c.max_length = std::optional<std::int64_t>{0};
    CHECK(field_of_error(c) == "max_length");
    c.max_length = std::optional<std::int64_t>{-10};
    CHECK(field_of_error(c) == "max_length");
    c.max_length = std::optional<std::int64_t>{10};
    CHECK(field_of_error(c) == "<no error>");
}

// ---- Queue -----------------------------------------------------------------------------

TEST_CASE("queue_max_length_per_partition_is_unset_when_unlimited", "[queue]") {
    mq::Queue q;
    q.partition_count = 4;
    CHECK_FALSE(q.max_length_per_partition().has_value());
}

TEST_CASE("queue_max_length_per_partition_rounds_up", "[queue]") {
    mq::Queue q;
    q.max_length = 10;
    q.partition_count = 3;
    CHECK(q.max_length_per_partition() == std::optional<std::int64_t>(4));
    q.partition_count = 5;
    CHECK(q.max_length_per_partition() == std::optional<std::int64_t>(2));
    q.partition_count = 1;
    CHECK(q.max_length_per_partition() == std::optional<std::int64_t>(10));
    q.max_length = 1;
    q.partition_count = 256;
    CHECK(q.max_length_per_partition() == std::optional<std::int64_t>(1));
}

TEST_CASE("queue_max_length_per_partition_times_partitions_covers_max_length", "[queue]") {
    mq::Queue q;
    for (std::int64_t max : {1, 7, 100, 1001}) {
        for (int n : {1, 2, 3, 16, 256}) {
            q.max_length = max;
            q.partition_count = n;
            const std::int64_t per = *q.max_length_per_partition();
            INFO(max << " over " << n);
            CHECK(per * n >= max);
            CHECK((per - 1) * n < max);
        }
    }
}

TEST_CASE("queue_to_json_shows_every_field_with_durations_in_ms", "[queue]") {
    mq::Queue q;
    q.id = "0190c0de-0000-7000-8000-000000000001";
    q.tenant = "acme";
    q.name = "orders";
    q.description = "all orders";
    q.partition_count = 4;
    q.retention = std::chrono::hours(1);
    q.max_length = 1000;
    q.dedup_window = std::chrono::minutes(5);
    q.encryption = "aes-256-gcm";
    q.is_public = true;
    q.allowed_producers = {"billing"};
    q.allowed_consumers = {"shipping", "audit"};
    q.status = "paused";
    q.created_at = "2026-11-21T10:00:00.000Z";
    q.updated_at = "2026-11-21T11:00:00.000Z";

    const nlohmann::json j = mq::to_json(q);
    CHECK(j["id"] == q.id);
    CHECK(j["tenant"] == "acme");
    CHECK(j["name"] == "orders");
    CHECK(j["description"] == "all orders");
    CHECK(j["partitions"] == 4);
    CHECK(j["retention_ms"] == 3'600'000);
    CHECK(j["max_length"] == 1000);
    CHECK(j["dedup_window_ms"] == 300'000);
    CHECK(j["encryption"] == "aes-256-gcm");
    CHECK(j["is_public"] == true);
    CHECK(j["allowed_producers"] == nlohmann::json::array({"billing"}));
    CHECK(j["allowed_consumers"] == nlohmann::json::array({"shipping", "audit"}));
    CHECK(j["status"] == "paused");
    CHECK(j["created_at"] == "2026-11-21T10:00:00.000Z");
    CHECK(j["updated_at"] == "2026-11-21T11:00:00.000Z");
    CHECK(j["schema"].is_null());  // no schema set
    CHECK(j["record_messages"] == false);
    CHECK(j["durability"] == "leader");
    CHECK(j.size() == 18);
}

TEST_CASE("queue_to_json_shows_unlimited_max_length_as_null", "[queue]") {
    mq::Queue q;
    const nlohmann::json j = mq::to_json(q);
    REQUIRE(j.contains("max_length"));
    CHECK(j["max_length"].is_null());
    CHECK(j["allowed_producers"].is_array());
    CHECK(j["allowed_producers"].empty());
}

TEST_CASE("queue_defaults_are_one_partition_a_week_of_retention_and_a_day_of_dedup", "[queue]") {
    mq::Queue q;
    const nlohmann::json j = mq::to_json(q);
    CHECK(j["partitions"] == 1);
    CHECK(j["retention_ms"] == 7LL * 24 * 3'600'000);
    CHECK(j["dedup_window_ms"] == 24LL * 3'600'000);
    CHECK(j["encryption"] == "none");
    CHECK(j["is_public"] == false);
    CHECK(j["status"] == "active");
}
