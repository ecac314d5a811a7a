// Hostile bodies on every route: for every documented body field of every operation in
// schemas/openapi.json, a wrong type, 1e400, -1e400, a huge integer, null, a deeply
// nested object and more. Bad input answers 400 (422 where a schema judges it), never a
// 5xx; numbers out of range name their field. Tampered pull receipts answer 400.
// Malformed requests (bad JSON, wrong Content-Type, invalid UTF-8 in bodies and paths,
// oversized bodies) answer 400/413 on every route.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "api_process.hpp"
#include "harness.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

const std::string kServiceToken = "sectest-service-token-0123456789";

json load_openapi() {
    std::ifstream in(std::string(MQ_SOURCE_DIR) + "/schemas/openapi.json");
    REQUIRE(in.good());
    return json::parse(in);
}

const json& resolve(const json& doc, const json& schema) {
    const json* s = &schema;
    for (int i = 0; i < 16 && s->contains("$ref"); ++i) {
        std::string ref = (*s)["$ref"];
        s = &doc["components"]["schemas"][ref.substr(ref.rfind('/') + 1)];
    }
    return *s;
}

/// Every property of a body schema, through $ref, allOf, oneOf and anyOf.
void collect_properties(const json& doc, const json& schema, std::map<std::string, json>& out,
                        int depth = 0) {
    if (depth > 8) return;
    const json& s = resolve(doc, schema);
    if (s.contains("properties"))
        for (const auto& [k, v] : s["properties"].items())
            if (!out.count(k)) out[k] = resolve(doc, v);
    for (const char* combo : {"allOf", "oneOf", "anyOf"})
        if (s.contains(combo))
            for (const auto& alt : s[combo]) collect_properties(doc, alt, out, depth + 1);
}

/// The JSON types a property schema accepts; empty: any.
std::set<std::string> accepted_types(const json& doc, const json& schema, int depth = 0) {
    std::set<std::string> out;
    const json& s = resolve(doc, schema);
    if (s.contains("type")) {
        if (s["type"].is_string())
            out.insert(s["type"].get<std::string>());
        else
            for (const auto& t : s["type"]) out.insert(t.get<std::string>());
    }
    if (s.value("nullable", false)) out.insert("null");
    bool any = !s.contains("type");
    for (const char* combo : {"oneOf", "anyOf", "allOf"})
        if (s.contains(combo) && depth < 8) {
            any = false;
            for (const auto& alt : s[combo]) {
                auto more = accepted_types(doc, alt, depth + 1);
                if (more.empty()) return {};
                out.insert(more.begin(), more.end());
            }
        }
    if (any && !s.contains("oneOf") && !s.contains("anyOf") && !s.contains("allOf")) return {};
    if (out.count("number")) out.insert("integer");
    return out;
}

/// A value of a JSON type the property does not accept, or nullopt when it takes any.
std::optional<std::string> wrong_type_literal(const std::set<std::string>& types) {
    if (types.empty()) return std::nullopt;
    if (!types.count("string")) return "\"text\"";
    if (!types.count("integer")) return "12345";
    if (!types.count("boolean")) return "true";
    if (!types.count("object")) return "{\"x\":1}";
    if (!types.count("array")) return "[1]";
    return std::nullopt;
}

std::string deep_object(int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += "{\"a\":";
    s += "1";
    for (int i = 0; i < depth; ++i) s += "}";
    return s;
}

struct Fixture {
    TenantScope tenant;
    ApiProcess api{[] {
        ApiOptions o;
        o.env["INTERNAL_SERVICE_TOKEN"] = kServiceToken;
        o.env["MAINTENANCE"] = "off";
        o.env["MAX_BATCH_BODY_SIZE"] = std::to_string(2 * 1024 * 1024);  // 413s stay cheap
        return o;
    }()};
    std::string token = create_token(tenant.tenant(), "tenant-admin", "ops");
    std::string sub_id;
    int counter = 0;

    Fixture() {
        REQUIRE(api.call_json("POST", "/api/v1/mq/queues", {{"name", "q"}}, token).status == 201);
        auto sub = api.call_json("POST", "/api/v1/mq/subscriptions",
                                 {{"queue", "q"}, {"name", "s"}}, token);
        REQUIRE(sub.status == 201);
        sub_id = sub.json()["id"];
        auto sch = api.call_json("POST", "/api/v1/mq/schedules",
                                 {{"name", "sch"},
                                  {"queue", "q"},
                                  {"cron", "0 3 * * *"},
                                  {"payload", 1},
                                  {"paused", true}},
                                 token);
        INFO(sch.body);
        REQUIRE(sch.status == 201);
    }

    std::string path(std::string p) {
        auto put = [&](const std::string& from, const std::string& to) {
            for (auto at = p.find(from); at != std::string::npos; at = p.find(from))
                p.replace(at, from.size(), to);
        };
        put("{name}", p.find("/schedules/") != std::string::npos ? "sch" : "q");
        put("{id}", p.find("/dead-letters/") != std::string::npos ? "0:1-0" : sub_id);
        return p;
    }

    /// A body the route accepts (or refuses for reasons other than its fields' types).
    json base_body(const std::string& method, const std::string& p) {
        auto n = std::to_string(++counter);
        if (p.rfind("/internal/mq/", 0) == 0) return {{"tenant", tenant.tenant()}, {"payload", 1}};
        if (p == "/api/v1/mq/queues") return {{"name", "fresh-" + n}};
        if (p == "/api/v1/mq/publish") return {{"queue", "q"}, {"payload", 1}};
        if (p == "/api/v1/mq/publish/delayed")
            return {{"queue", "q"}, {"payload", 1}, {"delay_ms", 1000}};
        if (p == "/api/v1/mq/publish/scheduled")
            return {{"queue", "q"}, {"payload", 1}, {"deliver_at", "2099-01-01T00:00:00Z"}};
        if (p == "/api/v1/mq/publish/batch")
            return {{"queue", "q"}, {"messages", {{{"payload", 1}}}}};
        if (p.find("/topics/") != std::string::npos) return {{"payload", 1}};
        if (p == "/api/v1/mq/subscriptions" && method == "post")
            return {{"queue", "q"}, {"name", "sub-" + n}};
        if (p.find("/ack") != std::string::npos || p.find("/nack") != std::string::npos ||
            p.find("/extend") != std::string::npos)
            return {{"receipt", "AAAA"}};
        if (p == "/api/v1/mq/schedules" && method == "post")
            return {{"name", "sch-" + n}, {"queue", "q"}, {"cron", "0 3 * * *"}, {"payload", 1}};
        if (p.find("/replay") != std::string::npos) return {{"ids", {"0:1-0"}}, {"dry_run", true}};
        if (p.find("/dead-letters/purge") != std::string::npos)
            return {{"before", "2000-01-01T00:00:00Z"}};
        return json::object();
    }

    HttpResult send(const std::string& method, const std::string& p, const std::string& body,
                    std::map<std::string, std::string> headers = {}) {
        std::string upper = method;
        for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (p.rfind("/internal/mq/", 0) == 0) {
            headers["X-Service-Token"] = kServiceToken;
            return api.call(upper, path(p), body, "", headers);
        }
        return api.call(upper, path(p), body, token, headers);
    }
};

}  // namespace

TEST_CASE(
    "every documented body field of every route refuses hostile values with 400 and never "
    "500",
    "[security][input]") {
    Fixture f;
    const json doc = load_openapi();
    int probes = 0;
    for (const auto& [p, item] : doc["paths"].items())
        for (const auto& [method, op] : item.items()) {
            if (!op.is_object() || !op.contains("requestBody")) continue;
            std::map<std::string, json> props;
            collect_properties(doc, op["requestBody"]["content"]["application/json"]["schema"],
                               props);
            REQUIRE_FALSE(props.empty());
            auto documented = op["responses"];
            for (const auto& [field, schema] : props) {
                auto types = accepted_types(doc, schema);
                std::vector<std::pair<std::string, std::string>> values{
                    {"1e400", "1e400"},
                    {"-1e400", "-1e400"},
                    {"huge integer", "123456789012345678901234567890"},
                    {"null", "null"},
                    {"deep object", deep_object(40)},
                    {"huge negative integer", "-99999999999999999999"},
                };
                if (auto wrong = wrong_type_literal(types))
                    values.push_back({"wrong type", *wrong});
                for (const auto& [what, literal] : values) {
                    json body = f.base_body(method, p);
                    body[field] = "__HOSTILE__";
                    std::string text = body.dump();
                    text.replace(text.find("\"__HOSTILE__\""), 13, literal);
                    auto r = f.send(method, p, text);
                    ++probes;
                    INFO(method << " " << p << " " << field << " = " << what << " -> " << r.status
                                << " " << r.body);
                    REQUIRE(r.status != 0);
                    CHECK(r.status < 500);
                    if (what == "1e400" || what == "-1e400") {
                        CHECK(r.status == 400);
                        CHECK(r.error_code() == "MQ_VALIDATION_ERROR");
                        CHECK(r.json()["error"]["details"]["field"] == field);
                    } else if (what == "wrong type") {
                        CHECK((r.status == 400 || r.status == 422));
                        if (r.status == 400 && r.json()["error"]["details"].contains("field"))
                            CHECK(r.json()["error"]["details"]["field"].is_string());
                    }
                    // Every answer is one the document lists for the operation.
                    CHECK((documented.contains(std::to_string(r.status)) ||
                           (r.status >= 400 && r.status < 500 && documented.contains("4XX"))));
                }
            }
        }
    CHECK(probes > 500);
    CHECK(f.api.running());
}

TEST_CASE("tampered receipts on ack and nack and extend answer 400 and never 500",
          "[security][input]") {
    Fixture f;
    REQUIRE(f.api.call_json("POST", "/api/v1/mq/publish", {{"queue", "q"}, {"payload", 1}}, f.token)
                .status == 201);
    auto pulled = f.api.call_json("POST", "/api/v1/mq/subscriptions/" + f.sub_id + "/pull",
                                  {{"max_messages", 1}}, f.token);
    REQUIRE(pulled.status == 200);
    REQUIRE(pulled.json()["messages"].size() == 1);
    const std::string receipt = pulled.json()["messages"][0]["receipt"];
    std::string flipped = receipt;
    flipped[flipped.size() / 2] = flipped[flipped.size() / 2] == 'A' ? 'B' : 'A';
    const std::vector<std::pair<std::string, std::string>> tampered{
        {"flipped", json(flipped).dump()},
        {"truncated", json(receipt.substr(0, receipt.size() / 2)).dump()},
        {"extended", json(receipt + "AAAA").dump()},
        {"empty", "\"\""},
        {"not base64", "\"!!!!****\""},
        {"long", json(std::string(5000, 'A')).dump()},
        {"unicode", "\"\\u00fc\\u00fc\\u00fc\""},
        {"escaped NUL", "\"\\u0000abc\""},
        {"number", "1"},
        {"1e400", "1e400"},
        {"-1e400", "-1e400"},
        {"object", "{\"receipt\":\"x\"}"},
        {"array", "[\"x\"]"},
        {"null", "null"},
    };
    for (const char* op : {"ack", "nack", "extend"})
        for (const auto& [what, literal] : tampered) {
            auto r = f.api.call("POST", "/api/v1/mq/subscriptions/" + f.sub_id + "/" + op,
                                "{\"receipt\":" + literal + "}", f.token);
            INFO(op << " receipt " << what << " -> " << r.status << " " << r.body);
            CHECK(r.status == 400);
            CHECK(r.error_code() == "MQ_VALIDATION_ERROR");
        }
    // The real receipt still works: nothing above touched the lease.
    auto ok = f.api.call_json("POST", "/api/v1/mq/subscriptions/" + f.sub_id + "/nack",
                              {{"receipt", receipt}}, f.token);
    INFO(ok.body);
    CHECK(ok.status == 200);
}

TEST_CASE(
    "malformed requests answer 400 on every route: bad JSON or wrong Content-Type or invalid "
    "UTF-8",
    "[security][input]") {
    Fixture f;
    const json doc = load_openapi();
    const std::vector<std::pair<std::string, std::string>> bad_bodies{
        {"truncated JSON", "{\"a\":"},
        {"not JSON", "hello"},
        {"trailing garbage", "{} x"},
        {"invalid UTF-8 in a string", "{\"name\":\"\xff\xfe\"}"},
        {"invalid UTF-8 in a key", "{\"\xc3\x28\":1}"},
        {"lone surrogate escape", "{\"name\":\"\\ud800\"}"},
        {"deep nesting", std::string(100000, '[')},
        {"NUL byte", std::string("{\"name\":\"a\0b\"}", 14)},
    };
    int probes = 0;
    for (const auto& [p, item] : doc["paths"].items())
        for (const auto& [method, op] : item.items()) {
            if (!op.is_object() || !op.contains("requestBody")) continue;
            for (const auto& [what, body] : bad_bodies) {
                auto r = f.send(method, p, body);
                ++probes;
                INFO(method << " " << p << " " << what << " -> " << r.status << " " << r.body);
                CHECK(r.status == 400);
                CHECK(r.error_code() == "MQ_VALIDATION_ERROR");
            }
            // A JSON body that says it is something else.
            auto valid = f.base_body(method, p).dump();
            for (const char* type : {"text/plain", "application/x-www-form-urlencoded",
                                     "multipart/form-data; boundary=x"}) {
                auto r = f.send(method, p, valid, {{"Content-Type", type}});
                INFO(method << " " << p << " as " << type << " -> " << r.status << " " << r.body);
                CHECK(r.status == 400);
                CHECK(r.json()["error"]["details"]["field"] == "Content-Type");
            }
        }
    CHECK(probes > 100);

    // Path segments that are not UTF-8 text, or hold control characters: 400, never echoed.
    for (const auto& [p, item] : doc["paths"].items()) {
        if (p.find('{') == std::string::npos) continue;
        for (const auto& [method, op] : item.items()) {
            if (!op.is_object()) continue;
            for (const char* segment :
                 {"%FF%FE", "%C3%28", "a%00b", "%0D%0AX-Injected:%201", "%ED%A0%80"}) {
                std::string target = p;
                auto open = target.find('{');
                target.replace(open, target.find('}', open) - open + 1, segment);
                std::string upper = method;
                for (auto& c : upper)
                    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                auto r = f.api.call(upper, target,
                                    op.contains("requestBody") ? f.base_body(method, p).dump() : "",
                                    f.token);
                INFO(upper << " " << target << " -> " << r.status << " " << r.body);
                CHECK(r.status == 400);
                CHECK(r.headers.count("x-injected") == 0);
            }
        }
    }
    CHECK(f.api.running());
}

TEST_CASE("oversized bodies answer 413 on every route that takes a body", "[security][input]") {
    Fixture f;
    const json doc = load_openapi();
    // Over the batch limit (2 MiB here), so over every route's limit.
    const std::string huge = "{\"payload\":\"" + std::string(3 * 1024 * 1024, 'x') + "\"}";
    for (const auto& [p, item] : doc["paths"].items())
        for (const auto& [method, op] : item.items()) {
            if (!op.is_object() || !op.contains("requestBody")) continue;
            auto r = f.send(method, p, huge);
            INFO(method << " " << p << " -> " << r.status << " " << r.body.substr(0, 300));
            CHECK(r.status == 413);
            CHECK(r.error_code() == "MQ_PAYLOAD_TOO_LARGE");
        }
    CHECK(f.api.running());
}
