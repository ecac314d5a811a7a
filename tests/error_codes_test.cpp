// One error-code table: common's mq::error_codes() is the source; the OpenAPI document's
// ErrorBody code enum and docs/api.md's "Errors" table must list exactly its codes, the
// docs with the same HTTP status.
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "mq/error.hpp"

namespace {

std::string read_source(const std::string& relative) {
    std::ifstream in(std::string(MQ_SOURCE_DIR) + "/" + relative);
    REQUIRE(in.good());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::map<std::string, int> common_codes() {
    std::map<std::string, int> out;
    for (const auto& row : mq::error_codes()) out.emplace(std::string(row.name), row.http_status);
    return out;
}

/// "| `MQ_X` | 404 | ..." rows of the "## Errors" section of docs/api.md.
std::map<std::string, int> documented_codes(const std::string& markdown) {
    std::map<std::string, int> out;
    auto start = markdown.find("\n## Errors");
    REQUIRE(start != std::string::npos);
    auto end = markdown.find("\n## ", start + 1);
    std::istringstream in(markdown.substr(start, end - start));
    static const std::regex kRow(R"(^\|\s*`(MQ_[A-Z_]+)`\s*\|\s*([0-9]{3})\s*\|.*)");
    std::string line;
    while (std::getline(in, line)) {
        std::smatch m;
        if (std::regex_match(line, m, kRow)) out.emplace(m[1], std::stoi(m[2]));
    }
    return out;
}

}  // namespace

TEST_CASE("every error code has one row: a name, an HTTP status and an exit status",
          "[error][openapi]") {
    std::set<std::string> names;
    for (const auto& row : mq::error_codes()) {
        INFO(row.name);
        CHECK(names.insert(std::string(row.name)).second);
        CHECK(row.name.rfind("MQ_", 0) == 0);
        CHECK(row.http_status >= 400);
        CHECK(row.http_status < 600);
        CHECK(mq::code_name(row.code) == row.name);
        CHECK(mq::http_status(row.code) == row.http_status);
        CHECK(mq::exit_status(row.code) == row.exit_status);
    }
    CHECK(names.count("MQ_INTERNAL_ERROR") == 1);
    CHECK(names.count("MQ_METHOD_NOT_ALLOWED") == 1);
}

TEST_CASE("openapi.json's error code enum is common's error-code table", "[error][openapi]") {
    const auto doc = nlohmann::json::parse(read_source("schemas/openapi.json"));
    std::set<std::string> documented;
    for (const auto& c :
         doc.at(nlohmann::json::json_pointer("/components/schemas/ErrorBody/properties/code/enum")))
        documented.insert(c.get<std::string>());
    std::set<std::string> common;
    for (const auto& [name, status] : common_codes()) common.insert(name);
    for (const auto& c : common) {
        INFO("in common, not in openapi.json: " << c);
        CHECK(documented.count(c));
    }
    for (const auto& c : documented) {
        INFO("in openapi.json, not in common: " << c);
        CHECK(common.count(c));
    }
}

TEST_CASE("docs/api.md's error table is common's error-code table", "[error][openapi]") {
    const auto documented = documented_codes(read_source("docs/api.md"));
    const auto common = common_codes();
    for (const auto& [code, status] : common) {
        INFO("docs/api.md, code " << code);
        REQUIRE(documented.count(code));
        CHECK(documented.at(code) == status);
    }
    for (const auto& [code, status] : documented) {
        INFO("in docs/api.md, not in common: " << code);
        CHECK(common.count(code));
    }
}

TEST_CASE("the error table checks name what drifted", "[error][openapi]") {
    const auto rows = documented_codes(
        "# API\n## Errors\n| code | HTTP | meaning |\n|---|---|---|\n"
        "| `MQ_A` | 404 | a |\n| `MQ_B` | 500 / 503 | b |\nnot a row\n## Queues\n"
        "| `MQ_C` | 400 | elsewhere |\n");
    CHECK(rows == std::map<std::string, int>{{"MQ_A", 404}});
}
