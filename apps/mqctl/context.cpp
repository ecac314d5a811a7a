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

const mq::Config& Context::config() {
    if (!config_) {
        auto env = mq::process_environment();
        std::string file = options.config_file;
        if (file.empty() && env.count("MQ_CONFIG")) file = env["MQ_CONFIG"];
        mq::Config c = mq::load_config(file, env);
        // The context sits between the YAML file and the environment: what the environment
        // sets was applied above and wins; the rest comes from the context.
        if (const auto& active = active_context()) {
            const auto& [name, context] = *active;
            for (const auto& [setting, value] : mq::context_settings(context)) {
                if (env.count(setting)) {
                    // An explicit --context that the environment overrides is surprising
                    // (prod named, dev used): say so. The current context stays quiet.
                    if (!options.context.empty())
                        std::cerr << "mqctl: warning: " << setting
                                  << " from the environment overrides context '" << name
                                  << "' (unset it to use the context's)\n";
                    continue;
                }
                mq::apply_setting(c, setting, value, "context '" + name + "'");
            }
        }
        if (!options.tenant.empty()) mq::apply_setting(c, "MQ_TENANT", options.tenant, "--tenant");
        if (!options.redis_url.empty()) c.redis_url = options.redis_url;
        if (!options.database_url.empty()) c.database_url = options.database_url;
        if (!options.key_prefix.empty())
            mq::apply_setting(c, "REDIS_KEY_PREFIX", options.key_prefix, "--key-prefix");
        config_ = std::move(c);
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
