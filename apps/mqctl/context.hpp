#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mq/config/config.hpp"
#include "mq/config/contexts.hpp"
#include "mq/config/settings.hpp"
#include "mq/core/keys.hpp"
#include "mq/pg/database.hpp"
#include "mq/redis/client.hpp"

namespace mqctl {

/// Options every subcommand shares. Precedence: flags > environment > context (--context
/// or the contexts file's current-context) > YAML config file (--config) > defaults.
struct GlobalOptions {
    std::string config_file;
    std::string tenant;
    std::string output = "table";
    std::string redis_url;
    std::string database_url;
    std::string key_prefix;
    std::string context;        ///< --context NAME: this command only
    std::string mqconfig;       ///< --mqconfig FILE: the contexts file (else MQCONFIG, XDG...)
    bool print_config = false;  ///< --print-config
};

/// What a subcommand runs against: the resolved configuration and connections opened on
/// first use, so a command that needs only PostgreSQL never touches Redis.
class Context {
  public:
    GlobalOptions options;
    /// Further sources of settings, merged by their SettingSource between the file and the
    /// environment (a context picked with --context is SettingSource::kContext). Set before
    /// the first config().
    std::vector<mq::SettingLayer> layers;

    /// Resolves the configuration once (after flags are parsed): default < file (--config,
    /// MQ_CONFIG) < layers < environment < flags (docs/config.md).
    const mq::Config& config() { return loaded().config; }
    /// The same with where each setting came from (--print-config).
    const mq::LoadedConfig& loaded();
    mq::redis::Connection& redis();
    mq::pg::Database& db();
    mq::KeyLayout keys() { return mq::KeyLayout(config().key_prefix); }
    const std::string& tenant() { return config().tenant; }
    /// Output for scripts (-o json or -o yaml): print_json() writes the chosen format.
    bool json() const { return options.output == "json" || options.output == "yaml"; }

    /// Where the contexts file is (--mqconfig, MQCONFIG, XDG_CONFIG_HOME, HOME).
    std::string contexts_path() const;
    /// The context this command uses (--context or current-context), if any.
    const std::optional<std::pair<std::string, mq::ClientContext>>& active_context();

  private:
    std::optional<std::optional<std::pair<std::string, mq::ClientContext>>> context_;
    std::optional<mq::LoadedConfig> config_;
    std::unique_ptr<mq::redis::Connection> redis_;
    std::unique_ptr<mq::pg::Database> db_;
};

}  // namespace mqctl
