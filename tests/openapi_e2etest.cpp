// schemas/openapi.json and mq-api agree: every route the server has is documented and
// every documented route exists (`mq-api --print-routes`), and the document has the shape
// clients and generators rely on (operationIds, tags, shared Error responses, resolvable
// $refs, declared path parameters).
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "harness.hpp"
#include "mq/core/version.hpp"

namespace {

using nlohmann::json;

const std::vector<std::string> kMethods{"get",   "put",  "post",    "delete",
                                        "patch", "head", "options", "trace"};

json load_document() {
    std::ifstream in(std::string(MQ_SOURCE_DIR) + "/schemas/openapi.json");
    REQUIRE(in.good());
    return json::parse(in);
}

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return s;
}

/// "METHOD /path/{param}" for every operation of the document.
std::set<std::string> document_routes(const json& doc) {
    std::set<std::string> routes;
    for (const auto& [path, item] : doc.at("paths").items()) {
        for (const auto& m : kMethods) {
            if (item.contains(m)) routes.insert(upper(m) + " " + path);
        }
    }
    return routes;
}

/// Routes from `--print-routes` output: one "METHOD /path" per line, blank lines ignored.
std::set<std::string> parse_routes(const std::string& text, std::vector<std::string>& bad_lines) {
    static const std::regex kLine(R"(^\s*([A-Za-z]+)\s+(/\S*)\s*$)");
    std::set<std::string> routes;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        std::smatch m;
        if (std::regex_match(line, m, kLine)) {
            routes.insert(upper(m[1]) + " " + m[2].str());
        } else {
            bad_lines.push_back(line);
        }
    }
    return routes;
}

/// What differs between the server's routes and the document's, one line each.
std::vector<std::string> route_differences(const std::set<std::string>& server,
                                           const std::set<std::string>& doc) {
    std::vector<std::string> diff;
    for (const auto& r : server) {
        if (!doc.count(r)) diff.push_back("in the server, not in the document: " + r);
    }
    for (const auto& r : doc) {
        if (!server.count(r)) diff.push_back("in the document, not in the server: " + r);
    }
    return diff;
}

/// The value a local "$ref" ("#/components/...") points at, or nullptr when it does not resolve.
const json* resolve(const json& doc, const std::string& ref) {
    if (ref.rfind("#/", 0) != 0) return nullptr;
    try {
        json::json_pointer ptr(ref.substr(1));
        if (!doc.contains(ptr)) return nullptr;
        return &doc.at(ptr);
    } catch (const json::exception&) {
        return nullptr;
    }
}

/// Follows $ref chains (at most a few) to the object they name; nullptr when broken.
const json* deref(const json& doc, const json& node) {
    const json* cur = &node;
    for (int i = 0; i < 8 && cur && cur->is_object() && cur->contains("$ref"); ++i) {
        const auto& r = cur->at("$ref");
        cur = r.is_string() ? resolve(doc, r.get<std::string>()) : nullptr;
    }
    return cur;
}

void collect_refs(const json& node, const std::string& where,
                  std::vector<std::pair<std::string, std::string>>& out) {
    if (node.is_object()) {
        for (const auto& [k, v] : node.items()) {
            if (k == "$ref" && v.is_string()) {
                out.emplace_back(where, v.get<std::string>());
            } else if (k == "example" || k == "examples") {
                continue;  // example values are data, not references
            } else {
                collect_refs(v, where + "/" + k, out);
            }
        }
    } else if (node.is_array()) {
        for (std::size_t i = 0; i < node.size(); ++i)
            collect_refs(node[i], where + "/" + std::to_string(i), out);
    }
}

/// Does this response (after $refs) carry the shared Error schema?
bool is_error_response(const json& doc, const json& response) {
    if (!response.is_object() || !response.contains("$ref")) return false;
    const auto& ref = response.at("$ref");
    if (!ref.is_string() || ref.get<std::string>().rfind("#/components/responses/", 0) != 0)
        return false;
    const json* r = deref(doc, response);
    if (!r) return false;
    const json::json_pointer schema("/content/application~1json/schema/$ref");
    return r->contains(schema) && r->at(schema) == "#/components/schemas/Error";
}

/// Everything wrong with the document's shape, one line each (empty when fine).
std::vector<std::string> shape_problems(const json& doc) {
    std::vector<std::string> problems;
    auto problem = [&](const std::string& s) { problems.push_back(s); };

    if (!doc.contains("openapi") || !doc["openapi"].is_string() ||
        doc["openapi"].get<std::string>().rfind("3.0.", 0) != 0) {
        problem("openapi must be \"3.0.x\"");
    }
    if (!doc.contains("paths") || !doc["paths"].is_object() || doc["paths"].empty()) {
        problem("no paths");
        return problems;
    }
    if (!resolve(doc, "#/components/responses/Error"))
        problem("no shared response #/components/responses/Error");
    if (!resolve(doc, "#/components/schemas/Error"))
        problem("no shared schema #/components/schemas/Error");

    std::vector<std::pair<std::string, std::string>> refs;
    collect_refs(doc, "#", refs);
    for (const auto& [where, ref] : refs) {
        if (!resolve(doc, ref))
            problem(where + ": $ref " + ref + " does not resolve inside the document");
    }

    static const std::regex kTemplateParam(R"(\{([^}/]+)\})");
    std::set<std::string> operation_ids;
    for (const auto& [path, item] : doc["paths"].items()) {
        std::set<std::string> in_template;
        for (auto it = std::sregex_iterator(path.begin(), path.end(), kTemplateParam);
             it != std::sregex_iterator(); ++it) {
            in_template.insert((*it)[1]);
        }
        for (const auto& m : kMethods) {
            if (!item.contains(m)) continue;
            const json& op = item[m];
            const std::string name = upper(m) + " " + path;

            if (!op.contains("operationId") || !op["operationId"].is_string() ||
                op["operationId"] == "") {
                problem(name + ": no operationId");
            } else if (!operation_ids.insert(op["operationId"].get<std::string>()).second) {
                problem(name + ": operationId " + op["operationId"].get<std::string>() +
                        " is not unique");
            }
            if (!op.contains("tags") || !op["tags"].is_array() || op["tags"].empty())
                problem(name + ": no tags");

            if (!op.contains("responses") || !op["responses"].is_object() ||
                op["responses"].empty()) {
                problem(name + ": no responses");
            } else {
                bool has_4xx = false;
                // Every 4xx is a shared error response. A 5xx may carry its own body (health
                // answers 503 with the health object), so only 4xx are held to it.
                for (const auto& [status, response] : op["responses"].items()) {
                    if (status.empty() || status[0] != '4') continue;
                    if (!is_error_response(doc, response)) {
                        problem(name + ": response " + status +
                                " does not $ref a shared response with schema "
                                "#/components/schemas/Error");
                    } else {
                        has_4xx = true;
                    }
                }
                if (!has_4xx)
                    problem(name + ": no 4xx response that $refs the shared Error response");
            }

            // Path parameters: declared on the path item or the operation, after $refs.
            std::set<std::string> declared;
            for (const json* level : {&item, &op}) {
                if (!level->contains("parameters")) continue;
                for (const auto& p : level->at("parameters")) {
                    const json* param = deref(doc, p);
                    if (!param || !param->is_object()) continue;  // the $ref check reports it
                    if (param->value("in", "") != "path") continue;
                    const std::string pname = param->value("name", "");
                    if (!param->value("required", false))
                        problem(name + ": path parameter " + pname + " is not required");
                    if (!in_template.count(pname))
                        problem(name + ": path parameter " + pname + " is not in the path");
                    declared.insert(pname);
                }
            }
            for (const auto& p : in_template) {
                if (!declared.count(p))
                    problem(name + ": path parameter {" + p + "} is not declared");
            }
        }
    }
    return problems;
}

/// The routes the contract (DESIGN.md and the API issue) lists.
const std::set<std::string> kContractRoutes{
    "POST /api/v1/mq/queues",
    "GET /api/v1/mq/queues",
    "GET /api/v1/mq/queues/{name}",
    "PUT /api/v1/mq/queues/{name}",
    "DELETE /api/v1/mq/queues/{name}",
    "POST /api/v1/mq/queues/{name}/purge",
    "GET /api/v1/mq/queues/{name}/dead-letters",
    "GET /api/v1/mq/queues/{name}/dead-letters/{id}",
    "POST /api/v1/mq/queues/{name}/dead-letters/replay",
    "POST /api/v1/mq/queues/{name}/dead-letters/purge",
    "GET /api/v1/mq/audit",
    "GET /api/v1/mq/queues/{name}/messages",
    "GET /api/v1/mq/messages",
    "GET /api/v1/mq/messages/{id}",
    "POST /api/v1/mq/publish",
    "POST /api/v1/mq/publish/batch",
    "POST /api/v1/mq/publish/delayed",
    "POST /api/v1/mq/publish/scheduled",
    "POST /api/v1/mq/topics/{name}/publish",
    "POST /api/v1/mq/subscriptions",
    "GET /api/v1/mq/subscriptions",
    "GET /api/v1/mq/subscriptions/{id}",
    "PUT /api/v1/mq/subscriptions/{id}",
    "DELETE /api/v1/mq/subscriptions/{id}",
    "POST /api/v1/mq/subscriptions/{id}/pause",
    "POST /api/v1/mq/subscriptions/{id}/resume",
    "POST /api/v1/mq/subscriptions/{id}/pull",
    "POST /api/v1/mq/subscriptions/{id}/ack",
    "POST /api/v1/mq/subscriptions/{id}/nack",
    "POST /api/v1/mq/subscriptions/{id}/extend",
    "GET /api/v1/mq/metrics",
    "GET /api/v1/mq/metrics/topics",
    "GET /api/v1/mq/metrics/consumers",
    "GET /api/v1/mq/health",
    "GET /api/v1/mq/status",
    "GET /api/v1/mq/openapi.json",
    "GET /metrics",
    "GET /livez",  // issue 12, item 8: probes
    "GET /readyz",
    "GET /health",  // issue 13, item 5: the seeds' probes
    "GET /health/ping",
    "GET /health/status",
    "POST /internal/mq/user-events",
    "POST /internal/mq/user-notifications",
    "POST /internal/mq/audit-logs",
    "POST /internal/mq/notifications",
    "GET /internal/mq/audit-queue-status",
    "GET /internal/mq/notification-queue",
    "GET /internal/mq/metrics",
    "GET /internal/mq/health-detailed",
    "POST /api/v1/mq/schedules",
    "GET /api/v1/mq/schedules",
    "GET /api/v1/mq/schedules/{name}",
    "PUT /api/v1/mq/schedules/{name}",
    "DELETE /api/v1/mq/schedules/{name}",
    "POST /api/v1/mq/schedules/{name}/pause",
    "POST /api/v1/mq/schedules/{name}/resume",
};

std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += "  " + l + "\n";
    return out;
}

struct ProcessOutput {
    int status = -1;
    std::string out;
    std::string err;
};

/// Runs `command` through the shell, standard input from /dev/null.
ProcessOutput run_command(const std::string& command) {
    const std::string err_file = mqtest::temp_file("");
    ProcessOutput r;
    FILE* p = ::popen((command + " < /dev/null 2> " + err_file).c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    const int raw = ::pclose(p);
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    std::ifstream in(err_file);
    std::stringstream ss;
    ss << in.rdbuf();
    r.err = ss.str();
    return r;
}

bool security_is(const json& op, const json& expected) {
    return op.contains("security") && op["security"] == expected;
}

}  // namespace

TEST_CASE(
    "openapi.json is an OpenAPI 3.0 document with ids, tags, shared errors, resolvable refs and "
    "declared path parameters",
    "[openapi]") {
    const json doc = load_document();
    const auto problems = shape_problems(doc);
    INFO("problems:\n" << joined(problems));
    CHECK(problems.empty());
    CHECK(document_routes(doc).size() >= kContractRoutes.size());
}

TEST_CASE("openapi.json documents exactly the contract's routes", "[openapi]") {
    const auto diff = route_differences(kContractRoutes, document_routes(load_document()));
    INFO("contract routes vs document:\n" << joined(diff));
    CHECK(diff.empty());
}

TEST_CASE(
    "openapi.json declares bearer auth by default, X-Service-Token on /internal and none on "
    "health, openapi.json and /metrics",
    "[openapi]") {
    const json doc = load_document();
    CHECK(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer");
    CHECK(doc["components"]["securitySchemes"]["serviceToken"]["name"] == "X-Service-Token");
    CHECK(doc["security"] == json::parse(R"([{"bearerAuth": []}])"));
    const json none = json::array();
    const json service = json::parse(R"([{"serviceToken": []}])");
    for (const auto& [path, item] : doc["paths"].items()) {
        for (const auto& [method, op] : item.items()) {
            INFO(upper(method) << " " << path);
            if (path.rfind("/internal/mq/", 0) == 0) {
                CHECK(security_is(op, service));
            } else if (path == "/api/v1/mq/health" || path == "/api/v1/mq/openapi.json" ||
                       path == "/livez" || path == "/readyz" || path == "/health" ||
                       path.rfind("/health/", 0) == 0) {
                CHECK(security_is(op, none));
            } else if (path == "/metrics") {
                CHECK(
                    security_is(op, json::parse(R"([{"metricsToken": []}, {"bearerAuth": []}])")));
            } else {
                CHECK_FALSE(op.contains("security"));  // the document-wide bearerAuth
            }
        }
    }
}

TEST_CASE("the openapi checks name what is wrong with a broken document or route list",
          "[openapi]") {
    const json good = load_document();
    REQUIRE(shape_problems(good).empty());
    auto has = [](const std::vector<std::string>& problems, const std::string& needle) {
        for (const auto& p : problems) {
            if (p.find(needle) != std::string::npos) return true;
        }
        return false;
    };
    const std::string queue_path = "/api/v1/mq/queues/{name}";

    SECTION("a route only the server has, and one only the document has") {
        auto server = kContractRoutes;
        server.erase("POST /api/v1/mq/queues/{name}/purge");
        server.insert("PATCH /api/v1/mq/queues/{name}");
        const auto diff = route_differences(server, document_routes(good));
        CHECK(diff ==
              std::vector<std::string>{
                  "in the server, not in the document: PATCH /api/v1/mq/queues/{name}",
                  "in the document, not in the server: POST /api/v1/mq/queues/{name}/purge"});
    }
    SECTION("print-routes lines are parsed, blank lines skipped, anything else reported") {
        std::vector<std::string> bad;
        const auto routes =
            parse_routes("GET /api/v1/mq/queues/{name}\n\npost  /metrics \nnonsense\n", bad);
        CHECK(routes == std::set<std::string>{"GET /api/v1/mq/queues/{name}", "POST /metrics"});
        CHECK(bad == std::vector<std::string>{"nonsense"});
    }
    SECTION("a wrong version") {
        json doc = good;
        doc["openapi"] = "3.1.0";
        CHECK(has(shape_problems(doc), "openapi must be"));
    }
    SECTION("a missing and a duplicate operationId") {
        json doc = good;
        doc["paths"][queue_path]["get"].erase("operationId");
        doc["paths"][queue_path]["put"]["operationId"] = "createQueue";
        const auto problems = shape_problems(doc);
        CHECK(has(problems, "GET " + queue_path + ": no operationId"));
        CHECK(has(problems, "operationId createQueue is not unique"));
    }
    SECTION("no tags") {
        json doc = good;
        doc["paths"][queue_path]["get"]["tags"] = json::array();
        CHECK(has(shape_problems(doc), "GET " + queue_path + ": no tags"));
    }
    SECTION("no 4xx, or an error response with its own schema") {
        json doc = good;
        auto& responses = doc["paths"][queue_path]["delete"]["responses"];
        std::vector<std::string> client_errors;
        for (const auto& [code, response] : responses.items())
            if (code.front() == '4') client_errors.push_back(code);
        for (const auto& code : client_errors) responses.erase(code);
        json& get_responses = doc["paths"][queue_path]["get"]["responses"];
        get_responses["404"] = json::parse(
            R"({"description": "gone", "content": {"application/json": {"schema": {"type": "object"}}}})");
        const auto problems = shape_problems(doc);
        CHECK(has(problems, "DELETE " + queue_path + ": no 4xx response"));
        CHECK(has(problems, "GET " + queue_path + ": response 404 does not $ref"));
    }
    SECTION("a dangling $ref") {
        json doc = good;
        doc["components"]["schemas"]["Queue"]["properties"]["stats"] = {
            {"$ref", "#/components/schemas/Nope"}};
        CHECK(has(shape_problems(doc), "$ref #/components/schemas/Nope does not resolve"));
    }
    SECTION("an undeclared path parameter and one that is not in the path") {
        json doc = good;
        doc["paths"][queue_path]["get"]["parameters"] = json::array();
        doc["paths"][queue_path]["put"]["parameters"].push_back({{"name", "queue"},
                                                                 {"in", "path"},
                                                                 {"required", true},
                                                                 {"schema", {{"type", "string"}}}});
        const auto problems = shape_problems(doc);
        CHECK(has(problems, "GET " + queue_path + ": path parameter {name} is not declared"));
        CHECK(has(problems, "PUT " + queue_path + ": path parameter queue is not in the path"));
    }
}

TEST_CASE("mq-api --print-routes and openapi.json list the same routes", "[openapi]") {
    const auto run = run_command(std::string(MQ_API_PATH) + " --print-routes");
    INFO("mq-api --print-routes exited " << run.status << "\n--- stdout:\n"
                                         << run.out << "--- stderr:\n"
                                         << run.err);
    REQUIRE(run.status == 0);
    std::vector<std::string> bad_lines;
    const auto server = parse_routes(run.out, bad_lines);
    INFO("lines that are not \"METHOD /path\":\n" << joined(bad_lines));
    CHECK(bad_lines.empty());
    REQUIRE_FALSE(server.empty());
    const auto diff = route_differences(server, document_routes(load_document()));
    INFO("server routes vs document:\n" << joined(diff));
    CHECK(diff.empty());
}

TEST_CASE("every binary and the document carry the one version from CMake", "[openapi][version]") {
    const std::string version = mq::kVersion;
    REQUIRE(std::count(version.begin(), version.end(), '.') == 2);
    CHECK(load_document()["info"]["version"] == version);
    for (const std::string bin : {MQ_API_PATH, MQCTL_PATH, MQ_WORKER_PATH}) {
        const auto run = run_command(bin + " --version");
        INFO(bin << " --version exited " << run.status << ": " << run.out << run.err);
        CHECK(run.status == 0);
        CHECK(run.out.find(" " + version) != std::string::npos);
    }
}
