#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>

namespace mqcli {

/// A decimal integer in [min, max]: "0x10", "010" (octal to strtoll), "+5", "1e3", spaces
/// and overflowing values are refused, so what runs is what the operator read.
CLI::Validator decimal_integer(std::int64_t min, std::int64_t max);

/// A finite decimal number in [min, max]: no "inf", "nan" or hex floats.
CLI::Validator decimal_number(double min, double max);

/// An existing regular file of at most `max_bytes`: not a directory, device or FIFO (a
/// config at /dev/zero must be refused, not read forever).
CLI::Validator regular_file(std::uintmax_t max_bytes);

/// Hardens every option of `app` and its subcommands, once all are set up: an option that
/// takes a value refuses an empty one (`--delay ''` must not read as "no delay"), except
/// free text where empty means something (--description, payloads, display names); the
/// numeric options (by name: --partitions, --limit, --rate ...) get decimal_integer or
/// decimal_number unless they already have a check of their own.
void harden_options(CLI::App& app);

}  // namespace mqcli
