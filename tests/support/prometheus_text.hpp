#pragma once

// Reading a Prometheus text exposition in tests: `promtool check metrics` on a body, and the
// value of one series whatever order its labels are written in.

#include <sys/wait.h>

#include <cstdio>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "harness.hpp"

namespace mqtest {

struct PromtoolResult {
    int exit_code = -1;
    std::string output;  ///< stdout and stderr: lint complaints, parse errors
};

/// `promtool check metrics < body` (promtool from the Debian package prometheus, make deps).
inline PromtoolResult promtool_check_metrics(const std::string& body) {
    const std::string path = temp_file(body);
    PromtoolResult r;
    FILE* p = popen(("promtool check metrics < '" + path + "' 2>&1").c_str(), "r");
    if (!p) return r;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

/// The labels of a sample line `name{a="x",b="y"} value` (values unescaped).
inline std::map<std::string, std::string> parse_labels(const std::string& inside) {
    std::map<std::string, std::string> out;
    std::size_t i = 0;
    while (i < inside.size()) {
        auto eq = inside.find('=', i);
        if (eq == std::string::npos || eq + 1 >= inside.size() || inside[eq + 1] != '"') break;
        std::string name = inside.substr(i, eq - i);
        std::string value;
        std::size_t j = eq + 2;
        for (; j < inside.size() && inside[j] != '"'; ++j) {
            if (inside[j] == '\\' && j + 1 < inside.size()) {
                ++j;
                value.push_back(inside[j] == 'n' ? '\n' : inside[j]);
            } else {
                value.push_back(inside[j]);
            }
        }
        out[name] = value;
        i = j + 1;
        if (i < inside.size() && inside[i] == ',') ++i;
    }
    return out;
}

/// The value of the sample of `name` whose labels are exactly `labels`; nullopt when absent.
inline std::optional<double> sample(const std::string& text, const std::string& name,
                                    const std::map<std::string, std::string>& labels = {}) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.empty() || line[0] == '#' || line.rfind(name, 0) != 0) continue;
        std::size_t at = name.size();
        std::map<std::string, std::string> got;
        if (at < line.size() && line[at] == '{') {
            auto close = line.rfind('}');
            if (close == std::string::npos) continue;
            got = parse_labels(line.substr(at + 1, close - at - 1));
            at = close + 1;
        }
        if (at >= line.size() || line[at] != ' ' || got != labels) continue;
        return std::stod(line.substr(at + 1));
    }
    return std::nullopt;
}

/// Does the text declare the family `name` with `# TYPE name type`?
inline bool has_family(const std::string& text, const std::string& name, const std::string& type) {
    return text.find("# TYPE " + name + " " + type + "\n") != std::string::npos;
}

}  // namespace mqtest
