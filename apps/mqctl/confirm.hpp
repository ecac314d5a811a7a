#pragma once

#include <stdexcept>
#include <string>

namespace mqctl {

/// The operator answered no: nothing was changed. main() prints "aborted: nothing changed"
/// and exits 1 (not an internal error, not a usage error).
struct Aborted : std::runtime_error {
    Aborted() : std::runtime_error("aborted: nothing changed") {}
};

/// Asks "<question> [y/N]" on a terminal. Without a terminal (cron, CI) it refuses with
/// a usage error telling the caller to pass --yes; `yes` skips the question. Any answer
/// but y/yes (or end of input) throws Aborted.
void confirm(const std::string& question, bool yes);

}  // namespace mqctl
