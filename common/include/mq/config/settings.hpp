#pragma once

// One registry of every setting of mq-api, mq-worker and mqctl (docs/config.md is generated
// from it), and one loader that merges where values come from:
//   default < YAML file (MQ_CONFIG, -c/--config) < context < environment < flag.
// A setting is named by its environment variable (REDIS_URL); its YAML key is the name in
// lower case (redis_url), plus a few older spellings kept as aliases (tenant: for MQ_TENANT).

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "mq/config/config.hpp"

namespace mq {

/// The programs a setting applies to (a bit mask).
enum Binary : unsigned {
    kMqApi = 1u,
    kMqWorker = 2u,
    kMqctl = 4u,
    kEveryBinary = 7u,
};

/// The program's name as typed ("mq-api"); kEveryBinary: "mq".
std::string binary_name(Binary binary);

/// How print-config shows a value: as it is, "****" when set, or a URL without its password.
enum class Secrecy { kPlain, kSecret, kUrlPassword };

/// One setting: its names, type, default and who reads it.
struct SettingSpec {
    std::string name;                       ///< environment name, e.g. API_THREADS
    std::string type;                       ///< for people: "integer 1-64", "on|off", "URL"...
    std::string default_value;              ///< applied first; "" for an unset text
    std::string description;                ///< one sentence or two, for docs/config.md
    unsigned binaries = kEveryBinary;       ///< who reads it (Binary bits)
    std::string flag;                       ///< CLI11 names, e.g. "-p,--port"; "" for none
    unsigned flag_binaries = 0;             ///< who has the flag (0: every reader)
    std::vector<std::string> yaml_aliases;  ///< keys accepted besides lower-case name
    Secrecy secrecy = Secrecy::kPlain;
    bool is_bool = false;  ///< a switch: a flag without a value means "true"
    /// Parses `value` into `config`; throws ValidationError naming the setting and `source`.
    std::function<void(Config& config, const std::string& value, const std::string& source)> apply;

    std::string yaml_key() const;  ///< the name in lower case
    bool used_by(Binary binary) const { return (binaries & binary) != 0; }
    bool has_flag_in(Binary binary) const {
        return !flag.empty() && ((flag_binaries ? flag_binaries : binaries) & binary) != 0;
    }
    /// The long flag ("--port" of "-p,--port"), "" for none.
    std::string long_flag() const;
};

/// Every setting, in the order docs/config.md lists them.
const std::vector<SettingSpec>& setting_specs();

/// The setting of environment name `name` (exact), or nullptr.
const SettingSpec* find_setting(std::string_view name);

/// The setting whose YAML key (or alias) is `key` (exact), or nullptr.
const SettingSpec* find_setting_by_key(std::string_view key);

/// ValidationError "<where>: unknown setting 'key' (did you mean 'closest'?)".
[[noreturn]] void throw_unknown_setting(const std::string& key, const std::string& where);

/// Where a value came from. The numbers order the layers: a higher one wins.
enum class SettingSource : int {
    kDefault = 0,
    kFile = 10,     ///< YAML file: MQ_CONFIG, -c/--config, or mq-worker's file
    kContext = 15,  ///< a named group of values picked at run time (mqctl --context)
    kEnvironment = 20,
    kFlag = 30,
};

/// "default", "file", "context", "env", "flag".
std::string_view to_string(SettingSource source);

/// One value of one layer: the setting's environment name, the text, and where it was
/// written ("/etc/mq/mq.yaml:3", "environment", "flag --port") for messages.
struct SettingEntry {
    std::string name;
    std::string value;
    std::string where;
};

/// The values one source supplies.
struct SettingLayer {
    SettingSource source = SettingSource::kFile;
    std::vector<SettingEntry> entries;
};

/// A YAML mapping of settings (`redis_url: ...`) as a layer. Keys must be known settings
/// (one of another program is accepted: a file may serve all three); an unknown key throws
/// ValidationError "name:line: unknown setting 'k' (did you mean 'x'?)". A null value is
/// "" (unset); a list becomes a comma-separated text; a nested mapping is refused.
SettingLayer yaml_settings_layer(const YAML::Node& map, const std::string& name,
                                 SettingSource source = SettingSource::kFile);

/// The YAML file at `path` (MQ_CONFIG or --config) as a layer; an empty or null document is
/// an empty layer.
SettingLayer settings_file_layer(const std::string& path);

/// The values of `env` whose names are settings `binary` reads. Other variables are
/// ignored: the environment is shared with everything else on the host.
SettingLayer environment_layer(const std::map<std::string, std::string>& env, Binary binary);

/// What a setting ended up as, and where that came from.
struct SettingOrigin {
    std::string value;  ///< the text applied (the default's text when not set)
    SettingSource source = SettingSource::kDefault;
    std::string where;  ///< "" for defaults
};

/// A Config and, per setting the program reads, where its value came from.
struct LoadedConfig {
    Config config;
    std::map<std::string, SettingOrigin> origins;
};

/// Merges layers into a Config for one program. Layers are applied in the order of their
/// source (default, file, context, environment, flag), each entry checked as it is applied,
/// so a bad value is refused (ValidationError naming the setting and where) even when a
/// higher layer sets it again. Entries of settings the program does not read are skipped.
/// A further source (mqctl's context) is one more `add` with its SettingSource.
class ConfigLoader {
  public:
    explicit ConfigLoader(Binary binary) : binary_(binary) {}
    ConfigLoader& add(SettingLayer layer);
    LoadedConfig load() const;

  private:
    Binary binary_;
    std::vector<SettingLayer> layers_;
};

/// The effective settings as a table (SETTING, VALUE, SOURCE) or, with json, as
/// {"binary": ..., "settings": [{"name", "key", "value", "source", "where"}]}. Secrets are
/// "****" when set; URLs show "****" for their password.
std::string render_effective_config(const LoadedConfig& loaded, Binary binary, bool json);

/// `value` as print-config shows it under `secrecy`.
std::string mask_setting(const std::string& value, Secrecy secrecy);

/// docs/config.md, generated from the registry.
std::string settings_reference_markdown();

}  // namespace mq
