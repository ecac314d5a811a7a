#include "context.hpp"

#include <cstdlib>
#include <iostream>

namespace mqctl {

std::string Context::contexts_path() const {
    std::map<std::string, std::string> env;
    for (const char* name : {"MQCONFIG", "XDG_CONFIG_HOME", "HOME"})
        if (const char* v = std::getenv(name)) env[name] = v;
    return mq::client_contexts_path(options.mqconfig, env);
}

const std::optional<std::pair<std::string, mq::ClientContext>>& Context::active_context() {
    if (!context_) {
        std::string path;
        try {
            path = contexts_path();
        } catch (const mq::ValidationError&) {
            if (!options.context.empty()) throw;  // --context needs the file
            context_.emplace();                   // no HOME (a unit, a container): no contexts
            return *context_;
        }
        context_ = mq::select_client_context(mq::load_client_contexts(path), options.context, path);
    }
    return *context_;
}

const mq::LoadedConfig& Context::loaded() {
    if (!config_) {
        // default < file (--config, MQ_CONFIG) < further layers (e.g. a context) <
        // environment < flags; ConfigLoader orders the layers by their source.
        auto env = mq::process_environment();
        std::string file = options.config_file;
        if (file.empty() && env.count("MQ_CONFIG")) file = env["MQ_CONFIG"];
        mq::ConfigLoader loader(mq::kMqctl);
        if (!file.empty()) loader.add(mq::settings_file_layer(file));
        for (const auto& layer : layers) loader.add(layer);
        // The context sits between the YAML file and the environment (docs/mqctl.md).
        if (const auto& active = active_context()) {
            const auto& [name, context] = *active;
            mq::SettingLayer from_context{mq::SettingSource::kContext, {}};
            for (const auto& [setting, value] : mq::context_settings(context)) {
                // An explicit --context that the environment overrides is surprising (prod
                // named, dev used): say so. The current context stays quiet.
                if (env.count(setting) && !options.context.empty())
                    std::cerr << "mqctl: warning: " << setting
                              << " from the environment overrides context '" << name
                              << "' (unset it to use the context's)\n";
                from_context.entries.push_back({setting, value, "context '" + name + "'"});
            }
            loader.add(std::move(from_context));
        }
        loader.add(mq::environment_layer(env, mq::kMqctl));
        mq::SettingLayer flags{mq::SettingSource::kFlag, {}};
        auto flag = [&](const char* name, const std::string& value, const char* where) {
            if (!value.empty()) flags.entries.push_back({name, value, where});
        };
        flag("MQ_TENANT", options.tenant, "flag --tenant");
        flag("REDIS_URL", options.redis_url, "flag --redis-url");
        flag("DATABASE_URL", options.database_url, "flag --database-url");
        flag("REDIS_KEY_PREFIX", options.key_prefix, "flag --key-prefix");
        loader.add(std::move(flags));
        config_ = loader.load();
    }
    return *config_;
}

mq::redis::Connection& Context::redis() {
    if (!redis_) {
        redis_ = std::make_unique<mq::redis::Connection>(mq::redis::endpoint_from_config(config()));
        redis_->check_server_policy();
    }
    return *redis_;
}

mq::pg::Database& Context::db() {
    if (!db_) db_ = std::make_unique<mq::pg::Database>(config().database_url);
    return *db_;
}

}  // namespace mqctl
