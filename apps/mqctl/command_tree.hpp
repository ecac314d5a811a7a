#pragma once

// What mqctl knows about its own command tree (CLI11): the global options every
// subcommand's help lists, "did you mean" for a mistyped command at any level, and the
// walk that `mqctl completion` generates shell scripts from.

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace mqctl {

/// CLI11's formatter plus, under every subcommand's help, the root's options ("Global
/// options") that the subcommand accepts too (app.fallthrough()).
class GlobalOptionsFormatter : public CLI::Formatter {
  public:
    std::string make_footer(const CLI::App* app) const override;
};

/// The root's visible options that `app` inherits: all of them but those it defines itself
/// under the same name (config set-context --tenant) and --version.
std::vector<const CLI::Option*> global_options(const CLI::App* app);

/// Every name an option answers to ("-t", "--tenant").
std::vector<std::string> option_names(const CLI::Option* opt);

/// Visible subcommands of `app` (hidden ones have an empty group).
std::vector<const CLI::App*> visible_subcommands(const CLI::App* app);

/// Finds a mistyped command in argv before CLI11 parses it (CLI11 would only say that the
/// argument was not expected): walks the words, skipping options and their values, and
/// at a level that needs a subcommand, a word that is not one is a typo. Returns the
/// message ("unknown command 'queu' for 'mqctl'; did you mean 'queue'?") or nothing.
std::optional<std::string> unknown_command(const CLI::App& root, int argc, const char* const* argv);

}  // namespace mqctl
