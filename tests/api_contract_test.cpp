// The contract check of the test support (tests/support/api_contract.hpp) catches answers that
// drifted from schemas/openapi.json: a new field, a wrong type, an undocumented status, media
// type or path, a 405 without the right Allow, an error code with another status than
// common's table. Fed by hand, so it is known to fail where it must.
#include "api_contract.hpp"

#include <catch2/catch.hpp>
#include <fstream>

using mqtest::ApiContract;
using mqtest::HttpResult;
using nlohmann::json;

namespace {

HttpResult answer(int status, const json& body,
                  std::map<std::string, std::string> headers = {
                      {"content-type", "application/json"}}) {
    HttpResult r;
    r.status = status;
    r.body = body.dump();
    r.headers = std::move(headers);
    return r;
}

json error_body(const std::string& code) {
    return {
        {"error",
         {{"code", code}, {"message", "m"}, {"details", json::object()}, {"retryAfter", nullptr}}}};
}

json a_queue() {
    return {{"id", "0190a0a0-0000-7000-8000-000000000001"},
            {"tenant", "acme"},
            {"name", "orders"},
            {"description", ""},
            {"partitions", 1},
            {"retention_ms", 604800000},
            {"max_length", nullptr},
            {"dedup_window_ms", 3600000},
            {"schema", nullptr},
            {"encryption", "none"},
            {"is_public", false},
            {"record_messages", false},
            {"durability", "leader"},
            {"allowed_producers", json::array()},
            {"allowed_consumers", json::array()},
            {"status", "active"},
            {"created_at", "2026-01-02T03:04:05Z"},
            {"updated_at", "2026-01-02T03:04:05Z"}};
}

bool says(const std::string& violation, const std::string& needle) {
    INFO(violation);
    return violation.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("the contract check passes answers as documented", "[openapi]") {
    const auto& contract = ApiContract::documented();
    CHECK(contract.violation("GET", "/api/v1/mq/queues/orders",
                             answer(404, error_body("MQ_QUEUE_NOT_FOUND"))) == "");
    CHECK(contract.violation("GET", "/api/v1/mq/nope?x=1",
                             answer(404, error_body("MQ_NOT_FOUND"))) == "");
    CHECK(contract.violation("POST", "/api/v1/mq/queues", answer(201, a_queue())) == "");
    CHECK(contract.violation("GET", "/api/v1/mq/queues/x", HttpResult{}) == "");  // no answer
    auto allowed = answer(405, error_body("MQ_METHOD_NOT_ALLOWED"),
                          {{"content-type", "application/json"}, {"allow", "POST, GET"}});
    CHECK(contract.violation("PATCH", "/api/v1/mq/queues", allowed) == "");
}

TEST_CASE("the contract check catches answers that drifted from the document", "[openapi]") {
    const auto& contract = ApiContract::documented();
    SECTION("a field the schema does not name") {
        auto queue = a_queue();
        queue["colour"] = "blue";
        CHECK(says(contract.violation("POST", "/api/v1/mq/queues", answer(201, queue)),
                   "does not name: /colour"));
    }
    SECTION("a field of the wrong type, and a missing required one") {
        auto queue = a_queue();
        queue["partitions"] = "four";
        CHECK(says(contract.violation("POST", "/api/v1/mq/queues", answer(201, queue)),
                   "breaks the documented schema"));
        auto error = error_body("MQ_QUEUE_NOT_FOUND");
        error["error"].erase("retryAfter");
        CHECK(says(contract.violation("GET", "/api/v1/mq/queues/orders", answer(404, error)),
                   "breaks the documented schema"));
    }
    SECTION("a null where the document has no null") {
        auto queue = a_queue();
        queue["name"] = nullptr;
        CHECK(says(contract.violation("POST", "/api/v1/mq/queues", answer(201, queue)),
                   "breaks the documented schema"));
    }
    SECTION("a status the operation does not document") {
        CHECK(says(
            contract.violation("GET", "/api/v1/mq/queues", answer(418, error_body("MQ_CONFLICT"))),
            "the status is not documented"));
    }
    SECTION("an error code common's table does not have, or with another status") {
        CHECK(says(contract.violation("GET", "/api/v1/mq/queues/orders",
                                      answer(404, error_body("MQ_GONE"))),
                   "breaks the documented schema"));
        CHECK(says(contract.violation("GET", "/api/v1/mq/queues/orders",
                                      answer(404, error_body("MQ_CONFLICT"))),
                   "common's error-code table says 409"));
    }
    SECTION("a media type the document does not list, and a body that is not JSON") {
        auto text = answer(200, a_queue(), {{"content-type", "text/html"}});
        CHECK(says(contract.violation("GET", "/api/v1/mq/queues/orders", text),
                   "Content-Type \"text/html\" is not documented"));
        HttpResult broken = answer(404, json::object());
        broken.body = "{not json";
        CHECK(says(contract.violation("GET", "/api/v1/mq/queues/orders", broken),
                   "the body is not JSON"));
    }
    SECTION("a body on a documented 204") {
        CHECK(says(contract.violation("DELETE", "/api/v1/mq/queues/orders", answer(204, a_queue())),
                   "documented without a body"));
    }
    SECTION("a success on a path or method the document does not have") {
        CHECK(says(contract.violation("GET", "/api/v1/mq/nope", answer(200, json::object())),
                   "the path is not documented"));
        CHECK(says(contract.violation("PATCH", "/api/v1/mq/queues", answer(200, a_queue())),
                   "expected 405 with Allow"));
    }
    SECTION("a 405 without Allow, or with the wrong methods") {
        CHECK(says(contract.violation("PATCH", "/api/v1/mq/queues",
                                      answer(405, error_body("MQ_METHOD_NOT_ALLOWED"))),
                   "the documented header Allow is missing"));
        auto wrong = answer(405, error_body("MQ_METHOD_NOT_ALLOWED"),
                            {{"content-type", "application/json"}, {"allow", "GET"}});
        CHECK(says(contract.violation("PATCH", "/api/v1/mq/queues", wrong),
                   "Allow lists GET, the document GET, POST"));
    }
    SECTION("a document that drifted from the server") {
        std::ifstream in(std::string(MQ_SOURCE_DIR) + "/schemas/openapi.json");
        json doc = json::parse(in);
        doc["paths"]["/api/v1/mq/queues"]["post"]["responses"].erase("201");
        doc["components"]["schemas"]["Queue"]["properties"].erase("tenant");
        ApiContract drifted(doc);
        CHECK(says(drifted.violation("POST", "/api/v1/mq/queues", answer(201, a_queue())),
                   "the status is not documented"));
        CHECK(says(drifted.violation("PUT", "/api/v1/mq/queues/orders", answer(200, a_queue())),
                   "/tenant"));
    }
}
