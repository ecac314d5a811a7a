#include "output.hpp"

#include <algorithm>
#include <iostream>

namespace mqctl {

void Table::print() const {
    std::vector<std::size_t> width(header_.size(), 0);
    auto measure = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size() && i < width.size(); ++i)
            width[i] = std::max(width[i], row[i].size());
    };
    measure(header_);
    for (const auto& r : rows_) measure(r);
    auto emit = [&](const std::vector<std::string>& row) {
        std::string line;
        for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
        }
        std::cout << line << '\n';
    };
    emit(header_);
    for (const auto& r : rows_) emit(r);
}

void print_json(const nlohmann::json& j) {
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

void print_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::size_t w = 0;
    for (const auto& [k, v] : fields) w = std::max(w, k.size());
    for (const auto& [k, v] : fields)
        std::cout << k << ':' << std::string(w - k.size() + 1, ' ') << v << '\n';
}

}  // namespace mqctl
