#pragma once

// The command-line side of the settings registry (mq/config/settings.hpp): every setting
// with a flag for this program becomes a CLI11 option whose value joins the "flag" layer,
// and -c/--config, --print-config, -o and --print-config-doc are added the same way in
// mq-api and mq-worker (mqctl has its own global options).

#include <CLI/CLI.hpp>
#include <string>

#include "mq/config/settings.hpp"

namespace mqcli {

/// Options every daemon shares about its configuration.
struct ConfigOptions {
    std::string file;              ///< -c/--config (default MQ_CONFIG where the program reads it)
    bool print = false;            ///< --print-config
    std::string output = "table";  ///< -o table|json (with --print-config)
    bool print_doc = false;        ///< --print-config-doc
    mq::SettingLayer flags{mq::SettingSource::kFlag, {}};
};

/// Adds an option for every setting `binary` has a flag for (its description and type from
/// the registry; the value is checked when the layer is applied, so a bad one exits 2 naming
/// the setting and the flag), plus --print-config, -o/--output and --print-config-doc.
/// -c/--config is the caller's (its help differs per program).
void add_setting_flags(CLI::App& app, mq::Binary binary, ConfigOptions& options);

/// What a parse error prints, plus "did you mean '--x'?" for an unknown option close to a
/// known one; returns the exit status (0 for --help/--version, 2 otherwise).
int exit_for_parse_error(CLI::App& app, const CLI::ParseError& error);

}  // namespace mqcli
