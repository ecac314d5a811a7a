#include "api_contract.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>
#include <vector>

#include "mq/core/json.hpp"
#include "mq/error.hpp"

namespace mqtest {

namespace {

using nlohmann::json;

const std::vector<std::string> kMethods{"get",   "put",  "post",    "delete",
                                        "patch", "head", "options", "trace"};

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::vector<std::string> split_path(std::string_view path) {
    std::vector<std::string> out;
    std::size_t start = 1;
    while (start <= path.size()) {
        auto slash = path.find('/', start);
        if (slash == std::string_view::npos) slash = path.size();
        out.emplace_back(path.substr(start, slash - start));
        start = slash + 1;
    }
    return out;
}

/// OpenAPI 3.0 schema objects as JSON Schema (draft 4): `nullable: true` adds "null" to
/// `type` (and to `enum`), example values are dropped so nothing in them reads as a keyword.
json to_json_schema(const json& node) {
    if (node.is_array()) {
        json out = json::array();
        for (const auto& v : node) out.push_back(to_json_schema(v));
        return out;
    }
    if (!node.is_object()) return node;
    json out = json::object();
    for (const auto& [key, value] : node.items()) {
        if (key == "example" || key == "examples" || key == "nullable") continue;
        out[key] = to_json_schema(value);
    }
    if (node.value("nullable", false)) {
        if (out.contains("type") && out["type"].is_string())
            out["type"] = json::array({out["type"], "null"});
        if (out.contains("enum") && out["enum"].is_array() &&
            std::find(out["enum"].begin(), out["enum"].end(), nullptr) == out["enum"].end())
            out["enum"].push_back(nullptr);
        // valijson checks `format` on null too: null is its own branch.
        if (out.contains("format")) return json{{"anyOf", json::array({{{"type", "null"}}, out})}};
    }
    return out;
}

std::string media_type_of(const HttpResult& response) {
    auto it = response.headers.find("content-type");
    if (it == response.headers.end()) return "";
    std::string media = lower(it->second.substr(0, it->second.find(';')));
    media.erase(std::remove_if(media.begin(), media.end(), [](char c) { return c == ' '; }),
                media.end());
    return media;
}

bool is_json_media(const std::string& media) {
    return media == "application/json" ||
           (media.size() > 5 && media.compare(media.size() - 5, 5, "+json") == 0);
}

std::string shortened(const std::string& text, std::size_t limit = 2000) {
    return text.size() <= limit ? text : text.substr(0, limit) + "...";
}

/// "GET, PUT" -> {"GET", "PUT"}.
std::set<std::string> method_list(const std::string& header) {
    std::set<std::string> out;
    std::stringstream in(header);
    std::string item;
    while (std::getline(in, item, ',')) {
        item.erase(std::remove_if(item.begin(), item.end(), [](char c) { return c == ' '; }),
                   item.end());
        if (!item.empty()) out.insert(upper(item));
    }
    return out;
}

std::string joined(const std::set<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
}

/// `schema` after $refs, with the branches of allOf/anyOf/oneOf flattened into `out`.
void branches_of(const json& doc, const json& schema, std::vector<const json*>& out,
                 int depth = 0) {
    if (depth > 16 || !schema.is_object()) return;
    const json* s = &schema;
    for (int i = 0; i < 8 && s->contains("$ref"); ++i) {
        const json::json_pointer ref(s->at("$ref").get<std::string>().substr(1));
        if (!doc.contains(ref)) return;
        s = &doc.at(ref);
    }
    out.push_back(s);
    for (const char* k : {"allOf", "anyOf", "oneOf"})
        if (s->contains(k))
            for (const auto& b : s->at(k)) branches_of(doc, b, out, depth + 1);
}

/// Fields of `value` that no schema branch names while none of them admits extra fields:
/// the documented response schemas stay open for clients, the server is held to them.
void undocumented_fields(const json& doc, const json& value, const json& schema,
                         const std::string& at, std::vector<std::string>& out, int depth = 0) {
    if (depth > 32 || out.size() >= 6) return;
    std::vector<const json*> branches;
    branches_of(doc, schema, branches);
    if (value.is_object()) {
        std::map<std::string, const json*> properties;
        bool named = false;
        const json* extra = nullptr;  // additionalProperties: true or a schema
        for (const json* b : branches) {
            if (b->contains("properties")) {
                named = true;
                for (const auto& [k, v] : b->at("properties").items()) properties.emplace(k, &v);
            }
            if (b->contains("additionalProperties") && b->at("additionalProperties") != false)
                extra = &b->at("additionalProperties");
        }
        if (!named && !extra) return;  // a free-form object
        for (const auto& [k, v] : value.items()) {
            const std::string here = at + "/" + mq::json_pointer_token(k);
            if (auto it = properties.find(k); it != properties.end())
                undocumented_fields(doc, v, *it->second, here, out, depth + 1);
            else if (extra && extra->is_object())
                undocumented_fields(doc, v, *extra, here, out, depth + 1);
            else if (!extra)
                out.push_back(here);
        }
    } else if (value.is_array()) {
        for (const json* b : branches) {
            if (!b->contains("items")) continue;
            for (std::size_t i = 0; i < value.size(); ++i)
                undocumented_fields(doc, value[i], b->at("items"), at + "/" + std::to_string(i),
                                    out, depth + 1);
            break;
        }
    }
}

}  // namespace

ApiContract::ApiContract(json document) : document_(std::move(document)) {
    json_schema_components_ = to_json_schema(document_.value("components", json::object()));
}

ApiContract::~ApiContract() = default;

const ApiContract& ApiContract::documented() {
    static const ApiContract contract([] {
        std::ifstream in(std::string(MQ_SOURCE_DIR) + "/schemas/openapi.json");
        return json::parse(in);
    }());
    return contract;
}

const valijson::Schema& ApiContract::schema_at(const std::string& pointer) const {
    std::lock_guard lock(mutex_);
    auto& slot = schemas_[pointer];
    if (!slot) {
        // The schema with the document's components beside it, so its "#/components/..."
        // references resolve inside one JSON document.
        json root = to_json_schema(document_.at(json::json_pointer(pointer)));
        root["components"] = json_schema_components_;
        auto schema = std::make_unique<valijson::Schema>();
        valijson::SchemaParser parser(valijson::SchemaParser::kDraft4);
        valijson::adapters::NlohmannJsonAdapter adapter(root);
        parser.populateSchema(adapter, *schema);
        slot = std::move(schema);
    }
    return *slot;
}

std::string ApiContract::check_response(const std::string& where,
                                        const std::string& response_pointer,
                                        const HttpResult& response) const {
    std::string pointer = response_pointer;
    const json* documented = &document_.at(json::json_pointer(pointer));
    for (int i = 0; i < 8 && documented->contains("$ref"); ++i) {
        pointer = documented->at("$ref").get<std::string>().substr(1);
        documented = &document_.at(json::json_pointer(pointer));
    }
    if (documented->contains("headers")) {
        for (const auto& [name, header] : documented->at("headers").items()) {
            const json* h = &header;
            if (h->contains("$ref"))
                h = &document_.at(json::json_pointer(h->at("$ref").get<std::string>().substr(1)));
            if (h->value("required", false) && !response.headers.count(lower(name)))
                return where + ": the documented header " + name + " is missing";
        }
    }
    if (!documented->contains("content")) {
        if (!response.body.empty())
            return where + ": documented without a body, but the answer has one";
        return "";
    }
    const std::string media = media_type_of(response);
    const json& content = documented->at("content");
    std::string key = media;
    if (!content.contains(key)) key = media.substr(0, media.find('/')) + "/*";
    if (!content.contains(key)) key = "*/*";
    if (!content.contains(key)) {
        std::set<std::string> types;
        for (const auto& [k, v] : content.items()) types.insert(k);
        return where + ": Content-Type \"" + media +
               "\" is not documented (documented: " + joined(types) + ")";
    }
    if (!is_json_media(media)) return "";
    const json body = json::parse(response.body, nullptr, false);
    if (body.is_discarded()) return where + ": the body is not JSON";
    if (content.at(key).contains("schema")) {
        const std::string schema_pointer =
            pointer + "/content/" + mq::json_pointer_token(key) + "/schema";
        valijson::Validator validator;
        valijson::ValidationResults results;
        valijson::adapters::NlohmannJsonAdapter target(body);
        if (!validator.validate(schema_at(schema_pointer), target, &results)) {
            std::string why =
                where + ": the body breaks the documented schema (#" + schema_pointer + "):";
            valijson::ValidationResults::Error error;
            for (int shown = 0; shown < 6 && results.popError(error); ++shown) {
                std::string at;
                for (const auto& c : error.context) at += c;
                why += "\n    at " + at + ": " + error.description;
            }
            return why;
        }
        std::vector<std::string> extra;
        undocumented_fields(document_, body, document_.at(json::json_pointer(schema_pointer)), "",
                            extra);
        if (!extra.empty()) {
            std::string why =
                where + ": fields the documented schema (#" + schema_pointer + ") does not name:";
            for (const auto& e : extra) why += " " + e;
            return why;
        }
    }
    // The status of an error code is common's table's (mq::error_codes()).
    if (body.is_object() && body.contains("error") && body["error"].is_object() &&
        body["error"].contains("code") && body["error"]["code"].is_string()) {
        const auto code = body["error"]["code"].get<std::string>();
        for (const auto& row : mq::error_codes()) {
            if (row.name == code && row.http_status != response.status)
                return where + ": " + code + " is answered with " +
                       std::to_string(response.status) + ", but common's error-code table says " +
                       std::to_string(row.http_status);
        }
    }
    return "";
}

std::string ApiContract::violation(const std::string& method, const std::string& target,
                                   const HttpResult& response) const {
    if (response.status == 0) return "";  // no answer: nothing to hold to the document
    const std::string path = target.substr(0, target.find('?'));
    const std::string status = std::to_string(response.status);
    const std::string where = upper(method) + " " + path + " answered " + status;

    // The documented path this request is for: the template with the most literal segments.
    const auto parts = split_path(path);
    const json* item = nullptr;
    std::string item_path;
    int best = -1;
    for (const auto& [templ, candidate] : document_.at("paths").items()) {
        const auto segments = split_path(templ);
        if (segments.size() != parts.size()) continue;
        int literal = 0;
        bool ok = true;
        for (std::size_t i = 0; i < parts.size() && ok; ++i) {
            const auto& seg = segments[i];
            if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
                ok = !parts[i].empty();
            } else {
                ok = seg == parts[i];
                ++literal;
            }
        }
        if (ok && literal > best) {
            best = literal;
            item = &candidate;
            item_path = templ;
        }
    }
    if (!item) {
        // A path the document does not have: only an error in the documented shape.
        if (response.status < 400) return where + ": the path is not documented";
        return check_response(where + " (undocumented path)", "/components/responses/Error",
                              response);
    }
    const std::string item_pointer = "/paths/" + mq::json_pointer_token(item_path);
    const std::string m = lower(method);
    if (!item->contains(m)) {
        std::set<std::string> documented_methods;
        for (const auto& k : kMethods)
            if (item->contains(k)) documented_methods.insert(upper(k));
        const std::string what =
            where + " (" + upper(method) + " is not documented on " + item_path + ")";
        if (response.status != 405) return what + ": expected 405 with Allow";
        if (!document_.contains(json::json_pointer("/components/responses/MethodNotAllowed")))
            return what + ": 405 is not documented (#/components/responses/MethodNotAllowed)";
        if (auto why = check_response(what, "/components/responses/MethodNotAllowed", response);
            !why.empty())
            return why;
        auto allow = response.headers.find("allow");
        const auto allowed = method_list(allow == response.headers.end() ? "" : allow->second);
        if (allowed != documented_methods)
            return what + ": Allow lists " + joined(allowed) + ", the document " +
                   joined(documented_methods);
        return "";
    }
    const json& responses = item->at(m).at("responses");
    std::string key = status;
    if (!responses.contains(key)) key = status.substr(0, 1) + "XX";
    if (!responses.contains(key)) key = "default";
    if (!responses.contains(key)) {
        std::set<std::string> documented;
        for (const auto& [k, v] : responses.items()) documented.insert(k);
        return where + " (operation " + upper(m) + " " + item_path +
               "): the status is not documented (documented: " + joined(documented) + ")";
    }
    return check_response(where + " (operation " + upper(m) + " " + item_path + ")",
                          item_pointer + "/" + m + "/responses/" + mq::json_pointer_token(key),
                          response);
}

void check_contract(const std::string& method, const std::string& target,
                    const HttpResult& response) {
    const std::string why = ApiContract::documented().violation(method, target, response);
    if (why.empty()) return;
    // Catch2 v2 is not thread-safe; tests that call the API from several threads rarely
    // fail here, and then one at a time.
    static std::mutex catch_mutex;
    std::lock_guard lock(catch_mutex);
    FAIL_CHECK("the answer breaks schemas/openapi.json (tests/support/api_contract.hpp):\n  "
               << why << "\n  status " << response.status
               << ", body: " << shortened(response.body));
}

}  // namespace mqtest
