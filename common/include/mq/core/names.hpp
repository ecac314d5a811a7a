#pragma once

#include <string>
#include <string_view>

namespace mq {

/// Tenant, queue and subscription names: 1-64 characters of [A-Za-z0-9._-], starting
/// with a letter or digit. They appear inside Redis hash tags, so ':', '{' and '}' are
/// never allowed.
constexpr std::size_t kMaxNameLength = 64;

/// Throws ValidationError naming `what` ("queue name", ...) when `name` breaks the rule.
void validate_name(std::string_view what, std::string_view name);
bool is_valid_name(std::string_view name);

}  // namespace mq
