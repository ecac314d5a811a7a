#pragma once

#include <string>

namespace mqctl {

/// Asks "<question> [y/N]" on a terminal. Without a terminal (cron, CI) it refuses with
/// a usage error telling the caller to pass --yes; `yes` skips the question.
void confirm(const std::string& question, bool yes);

}  // namespace mqctl
