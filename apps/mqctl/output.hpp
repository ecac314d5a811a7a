#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mqctl {

/// A plain text table: a header row, then rows; columns padded to their widest cell.
class Table {
  public:
    explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    void print() const;

  private:
    std::vector<std::string> header_;
    std::vector<std::vector<std::string>> rows_;
};

void print_json(const nlohmann::json& j);
/// "key: value" lines for one object, in the given order.
void print_fields(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace mqctl
