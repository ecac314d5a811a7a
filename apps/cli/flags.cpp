#include "flags.hpp"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "mq/core/json.hpp"
#include "mq/error.hpp"

namespace mqcli {

namespace {

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// Options whose empty value is meaningful: free text.
const std::set<std::string> kMayBeEmpty = {"--description", "payload", "--payload", "--name"};
// Options that carry bytes, not text: everything else must be UTF-8 (it ends up in
// PostgreSQL text, JSON or a Redis key that other tools print).
const std::set<std::string> kMayBeBinary = {"payload", "--payload"};

struct Range {
    bool integer;
    double min;
    double max;
};

// Numeric options by name. Where common/ checks the value (partitions, retry policy...)
// the range is the option's type, so the library's message (naming the field) is the one
// shown; options only mqctl reads get their real range here.
constexpr double kInt32Min = static_cast<double>(INT32_MIN);
constexpr double kInt32Max = static_cast<double>(INT32_MAX);
const std::map<std::string, Range> kNumeric = {
    {"--partitions", {true, kInt32Min, kInt32Max}},
    {"--max-length", {true, static_cast<double>(INT64_MIN), static_cast<double>(INT64_MAX)}},
    {"--limit", {true, 1, 100'000}},
    {"--count", {true, 1, 100'000}},
    {"--next", {true, 0, 1000}},
    {"--max-attempts", {true, kInt32Min, kInt32Max}},
    {"--concurrency", {true, kInt32Min, kInt32Max}},
    {"--batch-size", {true, kInt32Min, kInt32Max}},
    {"--rate-limit", {false, -1e300, 1e300}},
    {"--multiplier", {false, -1e300, 1e300}},
    {"--jitter", {false, -1e300, 1e300}},
    // mq-worker
    {"--metrics-port", {true, 0, 65535}},
    {"--reconcile-interval-ms", {true, kInt32Min, kInt32Max}},
};

std::int64_t to_int64(double v) {
    if (v >= static_cast<double>(INT64_MAX)) return INT64_MAX;
    if (v <= static_cast<double>(INT64_MIN)) return INT64_MIN;
    return static_cast<std::int64_t>(v);
}

}  // namespace

CLI::Validator decimal_integer(std::int64_t min, std::int64_t max) {
    return CLI::Validator(
        [min, max](std::string& text) -> std::string {
            std::string_view digits = text;
            bool negative = !digits.empty() && digits[0] == '-';
            if (negative) digits.remove_prefix(1);
            if (!all_digits(digits) || (digits.size() > 1 && digits[0] == '0'))
                return "'" + mq::printable(text) + "' is not a decimal integer";
            std::int64_t value = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
            if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
                return "'" + mq::printable(text) + "' is out of range (" + std::to_string(min) +
                       " to " + std::to_string(max) + ")";
            return {};
        },
        "INT in [" + std::to_string(min) + " - " + std::to_string(max) + "]", "decimal_integer");
}

CLI::Validator decimal_number(double min, double max) {
    return CLI::Validator(
        [min, max](std::string& text) -> std::string {
            // digits[.digits]: what an operator types for a rate or a factor.
            std::string_view s = text;
            if (!s.empty() && s[0] == '-') s.remove_prefix(1);
            auto dot = s.find('.');
            bool ok = all_digits(s.substr(0, dot)) &&
                      (dot == std::string_view::npos || all_digits(s.substr(dot + 1)));
            if (!ok) return "'" + mq::printable(text) + "' is not a decimal number";
            double value = std::strtod(text.c_str(), nullptr);
            if (!std::isfinite(value) || value < min || value > max)
                return "'" + mq::printable(text) + "' is out of range (" +
                       CLI::detail::to_string(min) + " to " + CLI::detail::to_string(max) + ")";
            return {};
        },
        "NUMBER", "decimal_number");
}

CLI::Validator regular_file(std::uintmax_t max_bytes) {
    return CLI::Validator(
        [max_bytes](std::string& path) -> std::string {
            std::error_code ec;
            auto status = std::filesystem::status(path, ec);
            if (ec || !std::filesystem::exists(status))
                return "'" + mq::printable(path) + "': no such file";
            if (!std::filesystem::is_regular_file(status))
                return "'" + mq::printable(path) + "' is not a regular file";
            auto size = std::filesystem::file_size(path, ec);
            if (ec || size > max_bytes)
                return "'" + mq::printable(path) + "' is over the limit of " +
                       std::to_string(max_bytes) + " bytes";
            return {};
        },
        "FILE", "regular_file");
}

void harden_options(CLI::App& app) {
    for (CLI::Option* opt : app.get_options()) {
        if (opt->get_type_size_max() == 0) continue;  // a flag
        const std::string name = !opt->get_lnames().empty()   ? "--" + opt->get_lnames().front()
                                 : !opt->get_snames().empty() ? "-" + opt->get_snames().front()
                                                              : opt->get_single_name();
        if (auto it = kNumeric.find(name); it != kNumeric.end()) {
            const Range& r = it->second;
            opt->check(r.integer ? decimal_integer(to_int64(r.min), to_int64(r.max))
                                 : decimal_number(r.min, r.max));
        }
        const bool may_be_empty = kMayBeEmpty.count(name) > 0;
        const bool may_be_binary = kMayBeBinary.count(name) > 0;
        if (may_be_empty && may_be_binary) continue;
        opt->check(CLI::Validator(
            [may_be_empty, may_be_binary](std::string& text) -> std::string {
                if (text.empty() && !may_be_empty) return "must not be empty";
                if (!may_be_binary && !mq::is_valid_utf8(text))
                    return "'" + mq::printable(text) + "' is not valid UTF-8";
                return {};
            },
            "", "text"));
    }
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) harden_options(*sub);
}

}  // namespace mqcli
