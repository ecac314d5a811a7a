#include "context.hpp"

namespace mqctl {

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
