#include "context.hpp"

namespace mqctl {

const mq::Config& Context::config() {
    if (!config_) {
        auto env = mq::process_environment();
        std::string file = options.config_file;
        if (file.empty() && env.count("MQ_CONFIG")) file = env["MQ_CONFIG"];
        mq::Config c = mq::load_config(file, env);
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
