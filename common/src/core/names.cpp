#include "mq/core/names.hpp"

#include "mq/error.hpp"

namespace mq {

namespace {
bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}
}  // namespace

bool is_valid_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxNameLength) return false;
    char first = name.front();
    if (first == '.' || first == '_' || first == '-') return false;
    for (char c : name)
        if (!name_char(c)) return false;
    return true;
}

void validate_name(std::string_view what, std::string_view name) {
    if (is_valid_name(name)) return;
    std::string shown = printable(name.substr(0, 100));
    std::string msg = "invalid " + std::string(what) + " '" + shown + "': ";
    if (name.empty())
        msg += "must not be empty";
    else if (name.size() > kMaxNameLength)
        msg += "longer than " + std::to_string(kMaxNameLength) + " characters";
    else
        msg += "use 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit";
    throw ValidationError(msg, {{"field", what}, {"value", shown}});
}

}  // namespace mq
