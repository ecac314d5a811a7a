// What a reload (SIGHUP) compares: every setting of mq::Config that differs is named, and
// the worker's plan sorts the file's subscriptions into added, changed, removed and
// unchanged, applies LOG_LEVEL and keeps everything else at its running value.
#include <catch2/catch.hpp>

#include "mq/config/changed_settings.hpp"
#include "mq/config/settings.hpp"
#include "mq/worker/worker_reload.hpp"

namespace {

mq::Subscription sub(const std::string& name, int concurrency = 1) {
    mq::Subscription s;
    s.tenant = "acme";
    s.queue = "jobs";
    s.name = name;
    s.type = "exec";
    s.concurrency = concurrency;
    s.managed_by = "worker";
    return s;
}

}  // namespace

TEST_CASE("changed_settings_names_each_setting_that_differs", "[config][lifecycle]") {
    const mq::Config base;
    CHECK(mq::changed_settings(base, base).empty());
    // Every setting by its environment name, one at a time.
    const std::vector<std::pair<std::string, std::string>> one_each = {
        {"PORT", "3011"},
        {"DATABASE_URL", "postgresql://elsewhere/mq"},
        {"REDIS_URL", "redis://elsewhere:6379/0"},
        {"REDIS_TLS_CA_FILE", "/ca"},
        {"REDIS_TLS_CA_DIR", "/cas"},
        {"REDIS_TLS_CERT_FILE", "/c"},
        {"REDIS_TLS_KEY_FILE", "/k"},
        {"REDIS_TLS_SERVER_NAME", "redis.example"},
        {"REDIS_KEY_PREFIX", "other:"},
        {"MAX_MESSAGE_SIZE", "2048"},
        {"DEFAULT_TTL", "60"},
        {"MAX_QUEUE_LENGTH", "10"},
        {"CONSUMER_TIMEOUT", "1000"},
        {"METRICS_ENABLED", "false"},
        {"INTERNAL_SERVICE_TOKEN", "secret"},
        {"LOG_FORMAT", "json"},
        {"LOG_LEVEL", "debug"},
        {"MQ_TENANT", "acme"},
        {"MQ_KEYRING_FILE", "/keys"},
        {"DEAD_LETTER_MAX_LENGTH", "5"},
        {"DEAD_LETTER_MAX_AGE", "5"},
        {"DEAD_LETTER_RETENTION", "5"},
        {"MAINTENANCE", "off"},
        {"RETENTION_TRIM", "off"},
        {"WEBHOOK_ALLOWED_CIDRS", "10.0.0.0/8"},
        {"MQ_ALLOW_OPERATOR_HANDLERS", "true"},
        {"TLS_CERT_FILE", "/tls.crt"},
        {"TLS_MIN_VERSION", "1.3"},
        {"AUTH_FAILURE_DELAY_MS", "5"},
    };
    for (const auto& [name, value] : one_each) {
        mq::Config changed = base;
        mq::apply_setting(changed, name, value, "test");
        INFO(name);
        CHECK(mq::changed_settings(base, changed) == std::vector<std::string>{name});
    }
    // Every setting of the registry is compared: a new one cannot be missed on reload.
    for (const auto& spec : mq::setting_specs()) {
        bool tried = false;
        for (const char* value : {"7", "/x", "1.3", "on", "off", "json", "debug", "127.0.0.2",
                                  "x-1", "5s", "100000", "acme=postgresql://db/orders"}) {
            mq::Config changed = base;
            try {
                spec.apply(changed, value, "test");
            } catch (const std::exception&) {
                continue;
            }
            auto diff = mq::changed_settings(base, changed);
            if (diff.empty()) continue;  // the value was the default
            INFO(spec.name << "=" << value);
            CHECK(diff == std::vector<std::string>{spec.name});
            tried = true;
            break;
        }
        INFO(spec.name << ": no value changed it, or changed_settings does not compare it");
        CHECK(tried);
    }
}

TEST_CASE("worker_reload_plan_sorts_subscriptions_and_keeps_restart_only_settings",
          "[worker][lifecycle]") {
    mq::WorkerConfig running;
    running.base.tenant = "acme";
    running.base.worker.consumer_name = "w1";
    running.subscriptions = {sub("steady"), sub("tuned"), sub("gone")};

    mq::WorkerConfig next = running;
    next.base.tenant = "other";  // needs a restart: the subscriptions stay acme's
    next.base.redis_url = "redis://elsewhere:6379/0";
    next.base.log_level = "debug";
    next.base.worker.metrics_port = 9999;
    next.subscriptions = {sub("steady"), sub("tuned", 4), sub("fresh")};
    for (auto& s : next.subscriptions) s.tenant = "other";

    auto r = mq::plan_worker_reload(running, next);
    CHECK(r.added == std::vector<std::string>{"jobs/fresh"});
    CHECK(r.changed == std::vector<std::string>{"jobs/tuned"});
    CHECK(r.removed == std::vector<std::string>{"jobs/gone"});
    CHECK(r.unchanged == 1);
    CHECK(r.log_level == std::optional<std::string>("debug"));
    CHECK(r.needs_restart == std::vector<std::string>{"REDIS_URL", "MQ_TENANT", "METRICS_PORT"});
    // The running values of what needs a restart stay in the new configuration.
    CHECK(r.config.base.redis_url == running.base.redis_url);
    CHECK(r.config.base.tenant == "acme");
    CHECK(r.config.base.worker.metrics_port == running.base.worker.metrics_port);
    CHECK(r.config.base.log_level == "debug");
    REQUIRE(r.config.subscriptions.size() == 3);
    for (const auto& s : r.config.subscriptions) CHECK(s.tenant == "acme");
    CHECK(r.config.subscriptions[1].concurrency == 4);

    // Nothing changed: nothing to do.
    auto same = mq::plan_worker_reload(running, running);
    CHECK(same.added.empty());
    CHECK(same.changed.empty());
    CHECK(same.removed.empty());
    CHECK(same.unchanged == 3);
    CHECK(same.needs_restart.empty());
    CHECK_FALSE(same.log_level);
}
