#include "mq/config/yaml_json.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "mq/config/yaml_loader.hpp"
#include "mq/core/input_file.hpp"
#include "mq/core/json.hpp"
#include "mq/error.hpp"

namespace mq {

namespace {

constexpr std::size_t kMaxYamlString = 8192;

nlohmann::json scalar(const YAML::Node& n) {
    const std::string& s = n.Scalar();
    if (n.Tag() == "!") return s;  // quoted: always a string
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
    // Integers and decimals as YAML 1.2 core reads them.
    std::size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    bool digits = i < s.size(), dot = false;
    for (std::size_t j = i; j < s.size(); ++j) {
        if (s[j] == '.' && !dot)
            dot = true;
        else if (s[j] < '0' || s[j] > '9')
            digits = false;
    }
    if (digits) {
        try {
            if (!dot) return std::stoll(s);
            return std::stod(s);
        } catch (...) {
        }
    }
    return s;
}

nlohmann::json convert(const YAML::Node& n, const std::string& pointer, YamlDocument& doc) {
    doc.lines[pointer] = n.Mark().line + 1;
    switch (n.Type()) {
        case YAML::NodeType::Map: {
            nlohmann::json obj = nlohmann::json::object();
            for (const auto& kv : n) {
                if (!kv.first.IsScalar())
                    throw ValidationError(doc.file + ":" +
                                          std::to_string(kv.first.Mark().line + 1) +
                                          ": keys must be plain words");
                std::string key = kv.first.Scalar();
                if (obj.contains(key))
                    throw ValidationError(doc.file + ":" +
                                          std::to_string(kv.first.Mark().line + 1) +
                                          ": duplicate key '" + key + "'");
                obj[key] = convert(kv.second, pointer + "/" + mq::json_pointer_token(key), doc);
                if (kv.second.Mark().line < 0)
                    doc.lines[pointer + "/" + mq::json_pointer_token(key)] =
                        kv.first.Mark().line + 1;
            }
            return obj;
        }
        case YAML::NodeType::Sequence: {
            nlohmann::json arr = nlohmann::json::array();
            std::size_t i = 0;
            for (const auto& item : n)
                arr.push_back(convert(item, pointer + "/" + std::to_string(i++), doc));
            return arr;
        }
        case YAML::NodeType::Scalar:
            return scalar(n);
        default:
            return nullptr;
    }
}

}  // namespace

std::string YamlDocument::where(const std::string& pointer) const {
    std::string p = pointer;
    for (;;) {
        if (auto it = lines.find(p); it != lines.end())
            return file + ":" + std::to_string(it->second);
        if (p.empty()) return file;
        p = p.substr(0, p.rfind('/'));
    }
}

YamlDocument parse_yaml(const std::string& text, const std::string& name) {
    YamlDocument doc;
    doc.file = name;
    // One document, no recursive aliases, bounded expansion: convert() below is then bounded.
    YAML::Node root = load_yaml_text(text, name);
    doc.json = convert(root, "", doc);
    return doc;
}

YamlDocument load_yaml(const std::string& path) {
    return parse_yaml(read_input_file(path, "YAML file", YamlLimits{}.max_bytes), path);
}

void validate_schema(const YamlDocument& doc, const nlohmann::json& schema_json) {
    // valijson runs "pattern" on std::regex, which recurses once per character (it crashed
    // at ~30k characters): our schemas' patterns only ever see values under this bound.
    std::vector<std::pair<const nlohmann::json*, std::string>> stack{{&doc.json, ""}};
    while (!stack.empty()) {
        auto [v, pointer] = stack.back();
        stack.pop_back();
        if (v->is_string() && v->get_ref<const std::string&>().size() > kMaxYamlString)
            throw ValidationError(doc.where(pointer) + ": " + (pointer.empty() ? "/" : pointer) +
                                      ": value longer than " + std::to_string(kMaxYamlString) +
                                      " characters",
                                  {{"field", pointer.empty() ? "/" : pointer}});
        if (v->is_object())
            for (const auto& [k, child] : v->items())
                stack.emplace_back(&child, pointer + "/" + mq::json_pointer_token(k));
        if (v->is_array())
            for (std::size_t i = 0; i < v->size(); ++i)
                stack.emplace_back(&(*v)[i], pointer + "/" + std::to_string(i));
    }
    valijson::Schema schema;
    valijson::SchemaParser parser;
    valijson::adapters::NlohmannJsonAdapter schema_adapter(schema_json);
    parser.populateSchema(schema_adapter, schema);
    valijson::Validator validator;
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter target(doc.json);
    if (validator.validate(schema, target, &results)) return;

    // valijson reports every failing rule, outermost first; the innermost (deepest
    // path) is the one that says what to fix, so report the deepest errors.
    struct Found {
        std::string pointer;
        std::string message;
    };
    std::vector<Found> found;
    valijson::ValidationResults::Error err;
    while (results.popError(err)) {
        std::string pointer;
        for (const auto& part : err.context) {
            if (part == "<root>") continue;
            // "[name]" or "[0]"
            std::string inner =
                part.size() >= 2 && part.front() == '[' ? part.substr(1, part.size() - 2) : part;
            if (inner.size() >= 2 && inner.front() == '"')
                inner = inner.substr(1, inner.size() - 2);
            pointer += "/" + mq::json_pointer_token(inner);
        }
        found.push_back({pointer, err.description});
    }
    std::stable_sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
        return std::count(a.pointer.begin(), a.pointer.end(), '/') >
               std::count(b.pointer.begin(), b.pointer.end(), '/');
    });
    nlohmann::json errors = nlohmann::json::array();
    for (std::size_t i = 0; i < found.size() && i < 10; ++i)
        errors.push_back({{"where", doc.where(found[i].pointer)},
                          {"field", found[i].pointer.empty() ? "/" : found[i].pointer},
                          {"error", found[i].message}});
    const auto& first = found.front();
    throw ValidationError(doc.where(first.pointer) + ": " +
                              (first.pointer.empty() ? "/" : first.pointer) + ": " + first.message,
                          {{"errors", errors}});
}

}  // namespace mq
