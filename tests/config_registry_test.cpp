// The settings registry and its loader (mq/config/settings.hpp): one precedence for every
// layer, unknown keys named with the closest known one, secrets masked, docs/config.md
// generated from the code.

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "harness.hpp"
#include "mq/config/settings.hpp"
#include "mq/core/suggest.hpp"
#include "mq/error.hpp"
#include "mq/worker/worker_config.hpp"

using Catch::Matchers::Contains;

namespace {

mq::SettingLayer layer(mq::SettingSource source, const std::string& name, const std::string& value,
                       const std::string& where) {
    return {source, {{name, value, where}}};
}

std::string load_error(mq::ConfigLoader& loader) {
    try {
        loader.load();
    } catch (const mq::ValidationError& e) {
        return e.what();
    }
    return "<no error>";
}

std::string worker_error(const std::string& path, const std::map<std::string, std::string>& env,
                         std::vector<mq::SettingLayer> layers = {}) {
    try {
        mq::load_worker_config(path, env, std::move(layers));
    } catch (const mq::ValidationError& e) {
        return e.what();
    }
    return "<no error>";
}

}  // namespace

TEST_CASE("settings_each_layer_overrides_the_one_below", "[config][settings]") {
    const std::string file = mqtest::temp_file("api_threads: 3\nport: 4000\nlog_level: warn\n");
    auto loaded = [&](bool context, bool env, bool flag) {
        mq::ConfigLoader loader(mq::kMqApi);
        loader.add(mq::settings_file_layer(file));
        if (context)
            loader.add(layer(mq::SettingSource::kContext, "API_THREADS", "4", "context prod"));
        if (env)
            loader.add(
                mq::environment_layer({{"API_THREADS", "5"}, {"HOME", "/root"}}, mq::kMqApi));
        if (flag) loader.add(layer(mq::SettingSource::kFlag, "API_THREADS", "6", "flag --threads"));
        return loader.load();
    };
    auto defaults = mq::ConfigLoader(mq::kMqApi).load();
    CHECK(defaults.config.api.threads == 2);
    CHECK(defaults.origins.at("API_THREADS").source == mq::SettingSource::kDefault);

    auto f = loaded(false, false, false);
    CHECK(f.config.api.threads == 3);
    CHECK(f.origins.at("API_THREADS").source == mq::SettingSource::kFile);
    CHECK(f.origins.at("API_THREADS").where == file + ":1");
    CHECK(f.config.port == 4000);

    auto c = loaded(true, false, false);
    CHECK(c.config.api.threads == 4);
    CHECK(c.origins.at("API_THREADS").source == mq::SettingSource::kContext);

    auto e = loaded(true, true, false);
    CHECK(e.config.api.threads == 5);
    CHECK(e.origins.at("API_THREADS").source == mq::SettingSource::kEnvironment);
    CHECK(e.config.log_level == "warn");  // only the file set it

    auto all = loaded(true, true, true);
    CHECK(all.config.api.threads == 6);
    CHECK(all.origins.at("API_THREADS").source == mq::SettingSource::kFlag);
    CHECK(all.origins.at("API_THREADS").where == "flag --threads");
    CHECK(all.origins.at("PORT").source == mq::SettingSource::kFile);
}

TEST_CASE("settings_layers_merge_by_source_not_by_the_order_they_were_added",
          "[config][settings]") {
    mq::ConfigLoader loader(mq::kMqApi);
    loader.add(layer(mq::SettingSource::kFlag, "PORT", "7000", "flag --port"));
    loader.add(mq::environment_layer({{"PORT", "8000"}}, mq::kMqApi));
    loader.add(layer(mq::SettingSource::kContext, "PORT", "9000", "context x"));
    CHECK(loader.load().config.port == 7000);
}

TEST_CASE("settings_yaml_key_of_a_variable_read_only_from_the_environment_before_is_accepted",
          "[config][settings]") {
    // api_threads, access_log, receipt_secret... were environment-only: a file refused them.
    const std::string file = mqtest::temp_file(
        "api_threads: 3\naccess_log: off\nreceipt_secret: s3cret\ntenant_publish_rate: 50\n"
        "max_batch_body_size: 2048\ninternal_queue_audit_logs: my-audit\n"
        "metrics_refresh_s: 0\nlisten_address: 127.0.0.1\n");
    auto c = mq::ConfigLoader(mq::kMqApi).add(mq::settings_file_layer(file)).load().config;
    CHECK(c.api.threads == 3);
    CHECK_FALSE(c.api.access_log);
    CHECK(c.api.receipt_secret == "s3cret");
    CHECK(c.api.tenant_publish_rate == 50);
    CHECK(c.api.max_batch_body_size == 2048);
    CHECK(c.api.internal_queues.at("audit-logs") == "my-audit");
    CHECK(c.api.metrics_refresh.count() == 0);
    CHECK(c.api.listen_address == "127.0.0.1");
    // The old entry point reads the same keys.
    CHECK(mq::load_config(file, {}).api.threads == 3);
}

TEST_CASE("settings_unknown_yaml_key_names_the_closest_known_one", "[config][settings]") {
    const std::string file = mqtest::temp_file("port: 1\napi_thread: 3\n");
    mq::ConfigLoader loader(mq::kMqApi);
    std::string msg;
    try {
        loader.add(mq::settings_file_layer(file));
    } catch (const mq::ValidationError& e) {
        msg = e.what();
    }
    CHECK_THAT(msg, Contains(file + ":2: unknown setting 'api_thread' (did you mean "
                                    "'api_threads'?)"));
    // Nothing close: no guess, a pointer to the list.
    const std::string far = mqtest::temp_file("zzzzzzzz: 1\n");
    CHECK_THROWS_WITH(mq::settings_file_layer(far), Contains("unknown setting 'zzzzzzzz'") &&
                                                        Contains("docs/config.md") &&
                                                        !Contains("did you mean"));
    // An environment name is answered with environment names.
    mq::Config c;
    CHECK_THROWS_WITH(mq::apply_setting(c, "METRICS_PROT", "1", "flag --x"),
                      Contains("did you mean 'METRICS_PORT'?"));
}

TEST_CASE("settings_closest_match_is_a_typo_distance_at_most", "[config][settings]") {
    CHECK(mq::closest_match("redis_ulr", {"redis_url", "port"}) == "redis_url");
    CHECK(mq::closest_match("--metrics-prot", {"--metrics-port", "--check"}) == "--metrics-port");
    CHECK(mq::closest_match("PORT", {"port"}) == "port");  // case does not count
    CHECK_FALSE(mq::closest_match("tls", {"port"}));
    CHECK_FALSE(mq::closest_match("", {"port"}));
}

TEST_CASE("settings_bad_value_names_the_setting_and_its_source", "[config][settings]") {
    const std::string file = mqtest::temp_file("log_level: info\napi_threads: 0\n");
    mq::ConfigLoader from_file(mq::kMqApi);
    from_file.add(mq::settings_file_layer(file));
    CHECK_THAT(load_error(from_file),
               Contains("API_THREADS=0") && Contains(file + ":2") && Contains("from 1 to 64"));

    mq::ConfigLoader from_env(mq::kMqApi);
    from_env.add(mq::environment_layer({{"ACCESS_LOG", "maybe"}}, mq::kMqApi));
    CHECK_THAT(load_error(from_env), Contains("ACCESS_LOG=maybe (environment)"));

    mq::ConfigLoader from_flag(mq::kMqWorker);
    from_flag.add(
        layer(mq::SettingSource::kFlag, "METRICS_ADDRESS", "localhost", "flag --metrics-address"));
    CHECK_THAT(
        load_error(from_flag),
        Contains("METRICS_ADDRESS=localhost (flag --metrics-address)") && Contains("IP address"));

    mq::ConfigLoader hostile(mq::kMqApi);
    hostile.add(mq::environment_layer({{"INTERNAL_QUEUE_USER_EVENTS", "a b\x01"}}, mq::kMqApi));
    CHECK_THAT(load_error(hostile), Contains("INTERNAL_QUEUE_USER_EVENTS=") && Contains("\\x01") &&
                                        Contains("(environment)"));
}

TEST_CASE("settings_outbox_sources_errors_never_echo_a_url_and_one_database_has_one_tenant",
          "[config][settings][outbox]") {
    auto error_for = [](const std::string& value) {
        mq::ConfigLoader loader(mq::kMqWorker);
        loader.add(mq::environment_layer({{"OUTBOX_SOURCES", value}}, mq::kMqWorker));
        return load_error(loader);
    };
    // "tenant=" forgotten: the first '=' is in the URL's query string.
    auto forgotten = error_for("postgresql://relay:s3cret@db/orders?sslmode=require");
    CHECK_THAT(forgotten, Contains("OUTBOX_SOURCES") && Contains("entry 1") &&
                              !Contains("s3cret") && !Contains("relay"));
    auto shared = error_for("acme=postgresql://r:s3cret@db/o globex=postgresql://r:s3cret@db/o");
    CHECK_THAT(shared, Contains("same database") && Contains("acme") && Contains("globex") &&
                           !Contains("s3cret"));
    mq::ConfigLoader ok(mq::kMqWorker);
    ok.add(mq::environment_layer(
        {{"OUTBOX_SOURCES", "acme=postgresql://r@db/a,globex=postgresql://r@db/b"}},
        mq::kMqWorker));
    CHECK(ok.load().config.outbox.sources.size() == 2);
}

TEST_CASE("settings_retention_past_100_years_is_refused", "[config][settings]") {
    for (const char* name : {"HISTORY_RETENTION", "DEAD_LETTER_RETENTION"}) {
        INFO(name);
        mq::ConfigLoader loader(mq::kMqApi);
        loader.add(mq::environment_layer({{name, "999999999999"}}, mq::kMqApi));
        CHECK_THAT(load_error(loader), Contains(name));
        mq::ConfigLoader century(mq::kMqApi);
        century.add(mq::environment_layer({{name, "3153600000"}}, mq::kMqApi));  // 100 years
        CHECK_NOTHROW(century.load());
    }
}

TEST_CASE("settings_environment_of_another_program_is_ignored", "[config][settings]") {
    // mqctl shares a host (and an environment file) with mq-api: API_THREADS=abc is not its
    // business, and a file key of another program is accepted but not applied.
    mq::ConfigLoader loader(mq::kMqctl);
    loader.add(mq::environment_layer({{"API_THREADS", "abc"}, {"MQ_TENANT", "t1"}}, mq::kMqctl));
    auto loaded = loader.load();
    CHECK(loaded.config.tenant == "t1");
    CHECK(loaded.origins.count("API_THREADS") == 0);
    CHECK(loaded.origins.count("REDIS_URL") == 1);
}

TEST_CASE("settings_print_config_masks_secrets_and_url_passwords", "[config][settings]") {
    mq::ConfigLoader loader(mq::kMqApi);
    loader.add(mq::environment_layer(
        {{"REDIS_URL", "redis://app:hunter2@cache:6379/0"},
         {"DATABASE_URL", "postgresql://mq:pgpass@db/mq?sslmode=require&password=other"},
         {"RECEIPT_SECRET", "receipt-key"},
         {"METRICS_TOKEN", "scrape-token"},
         {"INTERNAL_SERVICE_TOKEN", "svc-token"}},
        mq::kMqApi));
    auto loaded = loader.load();
    for (bool json : {false, true}) {
        const std::string out = mq::render_effective_config(loaded, mq::kMqApi, json);
        INFO(out);
        for (const char* secret :
             {"hunter2", "pgpass", "other", "receipt-key", "scrape-token", "svc-token"})
            CHECK(out.find(secret) == std::string::npos);
        CHECK_THAT(out, Contains("redis://app:****@cache:6379/0"));
        CHECK_THAT(out, Contains("postgresql://mq:****@db/mq?sslmode=require&password=****"));
        CHECK_THAT(out, Contains("API_THREADS"));
    }
    auto doc = nlohmann::json::parse(mq::render_effective_config(loaded, mq::kMqApi, true));
    CHECK(doc["binary"] == "mq-api");
    bool found = false;
    for (const auto& s : doc["settings"])
        if (s["name"] == "RECEIPT_SECRET") {
            found = true;
            CHECK(s["value"] == "****");
            CHECK(s["source"] == "env");
        }
    CHECK(found);
    // Unset secrets show as unset, not as a mask that suggests a value.
    CHECK(mq::mask_setting("", mq::Secrecy::kSecret).empty());
    CHECK(mq::mask_setting("redis://cache:6379/0", mq::Secrecy::kUrlPassword) ==
          "redis://cache:6379/0");
    CHECK(mq::mask_setting("redis://:pw@cache", mq::Secrecy::kUrlPassword) ==
          "redis://:****@cache");
}

TEST_CASE("settings_print_config_lists_only_the_program_s_settings_with_sources",
          "[config][settings]") {
    const std::string file = mqtest::temp_file("metrics_port: 9500\n");
    auto wc = mq::load_worker_config(
        file, {{"METRICS_ADDRESS", "0.0.0.0"}},
        {layer(mq::SettingSource::kFlag, "CONSUMER_NAME", "w1", "flag --consumer-name")});
    const std::string out =
        mq::render_effective_config({wc.base, wc.origins}, mq::kMqWorker, false);
    INFO(out);
    CHECK_THAT(out, Contains("METRICS_PORT") && Contains("file (" + file + ":1)"));
    CHECK_THAT(out, Contains("METRICS_ADDRESS") && Contains("0.0.0.0"));
    CHECK_THAT(out, Contains("flag --consumer-name"));
    CHECK(out.find("API_THREADS") == std::string::npos);  // mq-api's
    const auto at = out.find("RECONCILE_INTERVAL_MS ");
    REQUIRE(at != std::string::npos);
    const std::string line = out.substr(at, out.find('\n', at) - at);
    CHECK_THAT(line, Contains(" 15000 ") && Contains("default"));
}

TEST_CASE("settings_every_default_is_valid_and_matches_the_config_struct", "[config][settings]") {
    for (mq::Binary b : {mq::kMqApi, mq::kMqWorker, mq::kMqctl}) {
        auto loaded = mq::ConfigLoader(b).load();
        for (const auto& spec : mq::setting_specs())
            CHECK(loaded.origins.count(spec.name) == (spec.used_by(b) ? 1u : 0u));
    }
    const mq::Config plain;
    const mq::Config registry = mq::ConfigLoader(mq::kEveryBinary).load().config;
    CHECK(registry.port == plain.port);
    CHECK(registry.redis_url == plain.redis_url);
    CHECK(registry.database_url == plain.database_url);
    CHECK(registry.key_prefix == plain.key_prefix);
    CHECK(registry.tenant == plain.tenant);
    CHECK(registry.default_ttl == plain.default_ttl);
    CHECK(registry.consumer_timeout == plain.consumer_timeout);
    CHECK(registry.dead_letter_max_length == plain.dead_letter_max_length);
    CHECK(registry.api.threads == plain.api.threads);
    CHECK(registry.api.blocking_threads == plain.api.blocking_threads);
    CHECK(registry.api.max_batch_body_size == plain.api.max_batch_body_size);
    CHECK(registry.api.idle_timeout == plain.api.idle_timeout);
    CHECK(registry.api.auth_failure_delay == plain.api.auth_failure_delay);
    CHECK(registry.api.internal_queues == plain.api.internal_queues);
    CHECK(registry.worker.metrics_port == plain.worker.metrics_port);
    CHECK(registry.worker.metrics_address == plain.worker.metrics_address);
    CHECK(registry.worker.shutdown_timeout == plain.worker.shutdown_timeout);
    CHECK(registry.worker.reconcile_interval == plain.worker.reconcile_interval);
}

TEST_CASE("settings_every_setting_is_documented_and_docs_config_md_is_generated",
          "[config][settings]") {
    std::set<std::string> names, keys;
    for (const auto& spec : mq::setting_specs()) {
        INFO(spec.name);
        CHECK(names.insert(spec.name).second);  // one entry per name
        CHECK(keys.insert(spec.yaml_key()).second);
        CHECK_FALSE(spec.description.empty());
        CHECK_FALSE(spec.type.empty());
        CHECK((spec.binaries & mq::kEveryBinary) != 0);
        CHECK(spec.apply);
    }
    for (const auto& spec : mq::setting_specs())
        for (const auto& alias : spec.yaml_aliases) CHECK(keys.insert(alias).second);
    const std::string generated = mq::settings_reference_markdown();
    for (const auto& spec : mq::setting_specs())
        CHECK_THAT(generated, Contains("| `" + spec.name + "` |"));
    std::ifstream in(std::string(MQ_SOURCE_DIR) + "/docs/config.md");
    std::stringstream committed;
    committed << in.rdbuf();
    INFO("docs/config.md is generated: run `make config-doc` and commit it");
    CHECK(committed.str() == generated);
}

TEST_CASE("settings_worker_file_keys_go_through_the_registry", "[config][settings][worker]") {
    const std::string typo = mqtest::temp_file("tenant: t1\nmetrics_adress: 0.0.0.0\n");
    CHECK_THAT(worker_error(typo, {}),
               Contains(typo + ":2: unknown setting 'metrics_adress' (did you mean "
                               "'metrics_address'?)"));
    const std::string file = mqtest::temp_file(
        "tenant: t1\nmetrics_port: 9500\nmetrics_address: 0.0.0.0\nshutdown_timeout: 5s\n"
        "allow_operator_handlers: true\nwebhook_allowed_cidrs: [10.0.0.0/8, fd00::/8]\n"
        "api_threads: 3\nsubscriptions: []\n");
    auto wc = mq::load_worker_config(
        file, {{"METRICS_PORT", "9600"}},
        {layer(mq::SettingSource::kFlag, "METRICS_PORT", "9700", "flag --metrics-port")});
    CHECK(wc.base.tenant == "t1");
    CHECK(wc.base.worker.metrics_port == 9700);  // flag > env > file
    CHECK(wc.base.worker.metrics_address == "0.0.0.0");
    CHECK(wc.base.worker.shutdown_timeout.count() == 5000);
    CHECK(wc.base.allow_operator_handlers);
    CHECK(wc.base.webhook_allowed_cidrs.size() == 2);
    CHECK(wc.origins.count("API_THREADS") == 0);  // mq-api's: accepted, not applied
    CHECK(mq::load_worker_config(file, {{"METRICS_PORT", "9600"}}).base.worker.metrics_port ==
          9600);
    // A bad value keeps naming file:line.
    const std::string bad = mqtest::temp_file("metrics_address: somewhere\n");
    CHECK_THAT(worker_error(bad, {}),
               Contains("METRICS_ADDRESS=somewhere") && Contains(bad + ":1"));
    const std::string nested = mqtest::temp_file("api_threads: {a: 1}\n");
    CHECK_THAT(worker_error(nested, {}), Contains("must be a scalar value"));
}
