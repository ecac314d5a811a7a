#pragma once

// Parsing of one setting's value, shared by every group of settings (config.cpp,
// api_settings.cpp). Errors name the setting and where it came from.

#include <cstdint>
#include <string>

namespace mq {

/// A decimal integer in [min, max]; ValidationError "NAME=value (source) must be an integer
/// from min to max" with details {"field": name} otherwise.
std::int64_t setting_int(const std::string& name, const std::string& value,
                         const std::string& source, std::int64_t min, std::int64_t max);

/// 1/true/yes/on or 0/false/no/off (any case); ValidationError naming the setting otherwise.
bool setting_bool(const std::string& name, const std::string& value, const std::string& source);

}  // namespace mq
