#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mqctl {

/// -o: table for people (the default), json or yaml for scripts. Every command that prints
/// JSON prints the same document as YAML with -o yaml.
enum class OutputFormat { kTable, kJson, kYaml };
inline const std::vector<std::string> kOutputFormats = {"table", "json", "yaml"};
OutputFormat output_format(const std::string& name);
/// Where print_json() reads the format: the -o option's value, which CLI11 fills while it
/// parses (it may come after the subcommand).
void bind_output_format(const std::string* name);

/// A plain text table: a header row, then rows; columns padded to their widest cell.
class Table {
  public:
    explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
    void add(std::vector<std::string> row);
    void print() const;

  private:
    std::vector<std::string> header_;
    std::vector<std::vector<std::string>> rows_;
};

/// Prints a document for scripts on standard output: JSON, or YAML with -o yaml.
void print_json(const nlohmann::json& j);
/// The document as YAML (block style; strings that YAML would read as another type, such
/// as "true", "1.0" or "null", are quoted so the YAML means the same as the JSON).
std::string to_yaml(const nlohmann::json& j);
/// "key: value" lines for one object, in the given order.
void print_fields(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace mqctl
