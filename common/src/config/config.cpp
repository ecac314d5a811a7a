#include "mq/config/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <limits>

#include "mq/config/setting_values.hpp"
#include "mq/config/settings.hpp"
#include "mq/error.hpp"

namespace mq {

std::int64_t setting_int(const std::string& name, const std::string& value,
                         const std::string& source, std::int64_t min, std::int64_t max) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || p != value.data() + value.size() || v < min || v > max)
        throw ValidationError(name + "=" + printable(value) + " (" + source +
                                  ") must be an integer from " + std::to_string(min) + " to " +
                                  std::to_string(max),
                              {{"field", name}});
    return v;
}

bool setting_bool(const std::string& name, const std::string& value, const std::string& source) {
    std::string v = value;
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
    if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
    if (v == "0" || v == "false" || v == "no" || v == "off") return false;
    throw ValidationError(name + "=" + printable(value) + " (" + source + ") must be true or false",
                          {{"field", name}});
}

std::string setting_choice(const std::string& name, const std::string& value,
                           const std::string& source, const std::vector<std::string>& choices) {
    if (std::find(choices.begin(), choices.end(), value) != choices.end()) return value;
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    throw ValidationError(
        name + "=" + printable(value) + " (" + source + ") must be one of " + list,
        {{"field", name}});
}

std::string setting_address(const std::string& name, const std::string& value,
                            const std::string& source) {
    if (!parse_ip(value))
        throw ValidationError(name + "=" + printable(value) + " (" + source +
                                  ") must be an IP address, e.g. 0.0.0.0, 127.0.0.1 or ::",
                              {{"field", name}});
    return value;
}

SettingApply integer_setting(const std::string& name, std::int64_t min, std::int64_t max,
                             std::function<void(Config&, std::int64_t)> set) {
    return [name, min, max, set = std::move(set)](Config& c, const std::string& v,
                                                  const std::string& src) {
        set(c, setting_int(name, v, src, min, max));
    };
}

SettingApply bool_setting(const std::string& name, std::function<void(Config&, bool)> set) {
    return [name, set = std::move(set)](Config& c, const std::string& v, const std::string& src) {
        set(c, setting_bool(name, v, src));
    };
}

SettingApply text_setting(std::function<void(Config&, const std::string&)> set) {
    return
        [set = std::move(set)](Config& c, const std::string& v, const std::string&) { set(c, v); };
}

void apply_setting(Config& c, const std::string& name, const std::string& value,
                   const std::string& source) {
    const SettingSpec* spec = find_setting(name);
    if (!spec) throw_unknown_setting(name, source);
    spec->apply(c, value, source);
}

Config load_config(const std::string& yaml_file, const std::map<std::string, std::string>& env) {
    ConfigLoader loader(kEveryBinary);
    if (!yaml_file.empty()) loader.add(settings_file_layer(yaml_file));
    loader.add(environment_layer(env, kEveryBinary));
    return loader.load().config;
}

std::map<std::string, std::string> process_environment() {
    std::map<std::string, std::string> env;
    for (const auto& spec : setting_specs())
        if (const char* v = std::getenv(spec.name.c_str())) env[spec.name] = v;
    if (const char* v = std::getenv("MQ_CONFIG")) env["MQ_CONFIG"] = v;
    // mq-worker's metrics listener (WorkerConfig::metrics_address), not a Config setting.
    if (const char* v = std::getenv("METRICS_ADDRESS")) env["METRICS_ADDRESS"] = v;
    return env;
}

}  // namespace mq
