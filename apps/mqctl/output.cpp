#include "output.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <iostream>
#include <regex>

#include "mq/error.hpp"

namespace mqctl {

namespace {

const std::string* g_format = nullptr;

// Plain scalars a YAML 1.1 or 1.2 reader would not take as a string.
bool needs_quotes(const std::string& s) {
    if (s.empty()) return true;
    static const std::regex kTyped(
        "~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|"
        "Off|OFF|y|Y|n|N|[-+]?(\\.[0-9]+|[0-9][0-9_]*(\\.[0-9_]*)?)([eE][-+]?[0-9]+)?|"
        "[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)|0x[0-9a-fA-F_]+|0o?[0-7_]+|[0-9:]+(\\.[0-9]*)?");
    return std::regex_match(s, kTyped);
}

void emit(YAML::Emitter& e, const nlohmann::json& j) {
    switch (j.type()) {
        case nlohmann::json::value_t::object:
            e << YAML::BeginMap;
            for (const auto& [k, v] : j.items()) {
                e << YAML::Key;
                if (needs_quotes(k)) e << YAML::DoubleQuoted;
                e << k << YAML::Value;
                emit(e, v);
            }
            e << YAML::EndMap;
            break;
        case nlohmann::json::value_t::array:
            if (j.empty()) {
                e << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
                break;
            }
            e << YAML::BeginSeq;
            for (const auto& v : j) emit(e, v);
            e << YAML::EndSeq;
            break;
        case nlohmann::json::value_t::string: {
            const auto& s = j.get_ref<const std::string&>();
            if (needs_quotes(s)) e << YAML::DoubleQuoted;
            e << s;
            break;
        }
        case nlohmann::json::value_t::boolean:
            e << (j.get<bool>() ? "true" : "false");
            break;
        case nlohmann::json::value_t::null:
        case nlohmann::json::value_t::discarded:
            e << YAML::Null;
            break;
        default:  // numbers: their JSON text is valid YAML
            e << j.dump();
            break;
    }
}

}  // namespace

OutputFormat output_format(const std::string& name) {
    if (name == "json") return OutputFormat::kJson;
    if (name == "yaml") return OutputFormat::kYaml;
    return OutputFormat::kTable;
}

void bind_output_format(const std::string* name) { g_format = name; }

void Table::add(std::vector<std::string> row) {
    // Cells hold stored text (descriptions, keys, errors, audit changes): a control
    // character in one must not reach the operator's terminal.
    for (auto& cell : row) cell = mq::terminal_text(cell);
    rows_.push_back(std::move(row));
}

void Table::print() const {
    std::vector<std::size_t> width(header_.size(), 0);
    auto measure = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size() && i < width.size(); ++i)
            width[i] = std::max(width[i], row[i].size());
    };
    measure(header_);
    for (const auto& r : rows_) measure(r);
    auto emit_row = [&](const std::vector<std::string>& row) {
        std::string line;
        for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
        }
        std::cout << line << '\n';
    };
    emit_row(header_);
    for (const auto& r : rows_) emit_row(r);
}

std::string to_yaml(const nlohmann::json& j) {
    YAML::Emitter e;
    e.SetIndent(2);
    e.SetNullFormat(YAML::LowerNull);  // "null" rather than "~": what a JSON reader expects
    emit(e, j);
    return std::string(e.c_str()) + "\n";
}

void print_json(const nlohmann::json& j) {
    if (g_format != nullptr && output_format(*g_format) == OutputFormat::kYaml) {
        // Text that is not UTF-8 (a payload, a handler's output) is replaced, as in JSON.
        std::cout << to_yaml(nlohmann::json::parse(
            j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
        return;
    }
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

void print_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::size_t w = 0;
    for (const auto& [k, v] : fields) w = std::max(w, k.size());
    for (const auto& [k, v] : fields)
        std::cout << k << ':' << std::string(w - k.size() + 1, ' ') << v << '\n';
}

}  // namespace mqctl
