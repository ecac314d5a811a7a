#pragma once

// Parsing of one setting's value, shared by every group of settings (config.cpp,
// api_settings.cpp, settings.cpp). Errors name the setting and where it came from.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mq {

struct Config;

/// A decimal integer in [min, max]; ValidationError "NAME=value (source) must be an integer
/// from min to max" with details {"field": name} otherwise.
std::int64_t setting_int(const std::string& name, const std::string& value,
                         const std::string& source, std::int64_t min, std::int64_t max);

/// 1/true/yes/on or 0/false/no/off (any case); ValidationError naming the setting otherwise.
bool setting_bool(const std::string& name, const std::string& value, const std::string& source);

/// One of `choices`; ValidationError "NAME=value (source) must be one of a, b" otherwise.
std::string setting_choice(const std::string& name, const std::string& value,
                           const std::string& source, const std::vector<std::string>& choices);

/// An IPv4 or IPv6 address to listen on ("0.0.0.0", "::", "127.0.0.1").
std::string setting_address(const std::string& name, const std::string& value,
                            const std::string& source);

/// How a registry entry stores its value (mq/config/settings.hpp).
using SettingApply =
    std::function<void(Config& config, const std::string& value, const std::string& source)>;

/// An integer setting in [min, max] stored by `set`.
SettingApply integer_setting(const std::string& name, std::int64_t min, std::int64_t max,
                             std::function<void(Config&, std::int64_t)> set);

/// An on/off setting stored by `set`.
SettingApply bool_setting(const std::string& name, std::function<void(Config&, bool)> set);

/// A text setting stored as it is.
SettingApply text_setting(std::function<void(Config&, const std::string&)> set);

}  // namespace mq
