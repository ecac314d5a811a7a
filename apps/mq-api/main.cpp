// mq-api: the REST API on port 3010. Reads its settings (mq::ConfigLoader: file,
// environment, flags), wires common/ into the
// routes, serves until SIGTERM/SIGINT, then drains: stops accepting, lets requests in
// flight finish, exits 0. SIGHUP reloads what can change while serving (TLS certificate,
// log level, webhook ranges) and logs what needs a restart.
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "app.hpp"
#include "mq/config/changed_settings.hpp"
#include "mq/config/logging.hpp"
#include "mq/config/settings.hpp"
#include "mq/core/version.hpp"
#include "settings_flags.hpp"
#include "tls.hpp"

namespace {

// glibc gives every thread that allocates a large body its own arena (up to 8 per core)
// and, after the first large free, raises its mmap threshold so later large bodies stay
// in those arenas: resident memory then grows with the number of threads that ever held
// a large request, though nothing leaks. Few arenas and a fixed threshold keep it flat
// (MALLOC_ARENA_MAX, when set, still wins).
void tune_malloc() {
    if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 4);
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
}

// SIGHUP: reads the configuration again (file and environment, as at start) and applies
// what can change while serving. mq-api logs to stderr (journald, docker): there is no
// log file of its own to reopen. A configuration or certificate that does not load is
// logged and the running one stays.
// default < file (--config, MQ_CONFIG) < environment < flags (docs/config.md): what start
// and every reload read.
mq::LoadedConfig load(mqcli::ConfigOptions& config_options) {
    auto env = mq::process_environment();
    if (config_options.file.empty() && env.count("MQ_CONFIG"))
        config_options.file = env["MQ_CONFIG"];
    mq::ConfigLoader loader(mq::kMqApi);
    if (!config_options.file.empty()) loader.add(mq::settings_file_layer(config_options.file));
    loader.add(mq::environment_layer(env, mq::kMqApi));
    loader.add(config_options.flags);
    return loader.load();
}

void reload(mqcli::ConfigOptions& config_options, mq::Config& running, mqapi::App& app,
            mqapi::Server& server) {
    mq::Config next;
    std::shared_ptr<boost::asio::ssl::context> tls;
    try {
        next = load(config_options).config;
        // The files are read again even when their names did not change: a renewed
        // certificate is usually written over the old one.
        if (next.api.tls() && running.api.tls()) tls = mqapi::make_tls_context(next.api);
    } catch (const std::exception& e) {
        spdlog::error("SIGHUP: reload failed, the running configuration stays: {}", e.what());
        return;
    }
    std::vector<std::string> applied;
    for (const auto& name : mq::changed_settings(running, next)) {
        if (name == "LOG_LEVEL") {
            spdlog::set_level(spdlog::level::from_str(next.log_level));
            running.log_level = next.log_level;
            applied.push_back("LOG_LEVEL=" + next.log_level);
        } else if (name == "WEBHOOK_ALLOWED_CIDRS") {
            app.set_webhook_allowed_cidrs(next.webhook_allowed_cidrs);
            running.webhook_allowed_cidrs = next.webhook_allowed_cidrs;
            applied.push_back("WEBHOOK_ALLOWED_CIDRS");
        } else if (tls && (name == "TLS_CERT_FILE" || name == "TLS_KEY_FILE" ||
                           name == "TLS_CA_FILE" || name == "TLS_MIN_VERSION")) {
            continue;  // in the new TLS context below
        } else {
            spdlog::warn("SIGHUP: {} changed: needs a restart (the running value stays)", name);
        }
    }
    if (tls) {
        server.replace_tls(std::move(tls));
        running.api.tls_cert_file = next.api.tls_cert_file;
        running.api.tls_key_file = next.api.tls_key_file;
        running.api.tls_ca_file = next.api.tls_ca_file;
        running.api.tls_min_version = next.api.tls_min_version;
        applied.push_back("TLS certificate " + next.api.tls_cert_file + " and key " +
                          next.api.tls_key_file + " (new connections)");
    }
    std::string list;
    for (const auto& a : applied) list += (list.empty() ? "" : ", ") + a;
    spdlog::info("SIGHUP: reloaded {}", list.empty() ? "nothing (no change)" : list);
}

}  // namespace

int main(int argc, char** argv) {
    tune_malloc();
    CLI::App cli{"mq-api: the mq REST API (port 3010)"};
    cli.set_version_flag("--version", std::string("mq-api ") + mq::kVersion);
    mqcli::ConfigOptions config_options;
    bool print_routes = false;
    bool check = false;
    cli.add_option("-c,--config", config_options.file,
                   "YAML file with settings, keys as in docs/config.md (default MQ_CONFIG)");
    mqcli::add_setting_flags(cli, mq::kMqApi, config_options);
    cli.add_flag("--print-routes", print_routes, "Print every route as 'METHOD /path' and exit");
    cli.add_flag(
        "--check", check,
        "Validate the configuration (file, environment, keyring) and exit: 0 valid, 2 not");
    try {
        cli.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return mqcli::exit_for_parse_error(cli, e);
    }
    if (config_options.print_doc) {
        std::cout << mq::settings_reference_markdown();
        return 0;
    }

    // SIGTERM/SIGINT/SIGHUP are taken by sigwait below; every thread started later inherits
    // the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    try {
        mq::LoadedConfig loaded = load(config_options);
        if (config_options.print) {
            std::cout << mq::render_effective_config(loaded, mq::kMqApi,
                                                     config_options.output == "json");
            return 0;
        }
        mq::Config config = loaded.config;  // SIGHUP changes what can change while serving
        const mq::ApiSettings& api = config.api;
        mqapi::ApiOptions options;
        options.batch_body_limit = static_cast<std::size_t>(api.max_batch_body_size);
        if (api.tenant_publish_rate > 0)
            options.default_publish_rate = static_cast<double>(api.tenant_publish_rate);
        options.receipt_key = api.receipt_secret;
        options.metrics_token = api.metrics_token;
        options.metrics_refresh = api.metrics_refresh;
        options.internal_queues = api.internal_queues;

        mqapi::ServerOptions server_options;
        server_options.address = api.listen_address;
        server_options.port = config.port;
        server_options.threads = api.threads;
        server_options.blocking_threads = api.blocking_threads;
        server_options.body_limit = static_cast<std::size_t>(config.max_message_size);
        server_options.access_log = api.access_log;
        server_options.max_connections = static_cast<std::size_t>(api.max_connections);
        server_options.blocking_queue_limit = static_cast<std::size_t>(api.blocking_queue_limit);
        server_options.header_timeout = api.header_timeout;
        server_options.body_timeout = api.body_timeout;
        server_options.idle_timeout = api.idle_timeout;
        server_options.handshake_timeout = api.tls_handshake_timeout;
        server_options.auth_failure_limit = static_cast<std::size_t>(api.auth_failure_limit);
        server_options.auth_failure_window = api.auth_failure_window;
        server_options.auth_failure_delay = api.auth_failure_delay;
        // Before any backend is touched: a bad certificate is a configuration error (exit 2).
        server_options.tls = mqapi::make_tls_context(api);

        mqapi::App app(config, options);  // loads the keyring; connects only in start()
        if (check) {
            std::cout << "configuration OK\n";
            return 0;
        }
        mqapi::Router router;
        mqapi::add_queue_routes(router, app);
        mqapi::add_publish_routes(router, app);
        mqapi::add_subscription_routes(router, app);
        mqapi::add_pull_routes(router, app);
        mqapi::add_monitor_routes(router, app);
        mqapi::add_internal_routes(router, app);
        mqapi::add_schedule_routes(router, app);
        mqapi::add_dead_letter_routes(router, app);
        mqapi::add_audit_routes(router, app);
        if (print_routes) {
            for (const auto& r : router.routes())
                std::cout << mqapi::http::to_string(r->method) << ' ' << r->pattern << '\n';
            return 0;
        }

        mq::setup_logging("mq-api", config);
        app.start();
        mqapi::Server server(router, server_options, app.authenticator(),
                             config.internal_service_token);
        app.server() = &server;
        for (const auto& context : server.contexts()) app.pipeline().attach(context);
        server.start();
        spdlog::info(
            "mq-api listening on {}:{} ({}, {} I/O threads, up to {} connections, redis {}, "
            "postgres {})",
            api.listen_address, server.port(), server_options.tls ? "HTTPS" : "HTTP",
            server_options.threads, server.max_connections(), app.redis_endpoint().describe(),
            mq::pg::describe_url(config.database_url));

        int sig = 0;
        for (;;) {
            sigwait(&signals, &sig);
            if (sig != SIGHUP) break;
            reload(config_options, config, app, server);
        }
        spdlog::info("{}: draining (no new connections; requests in flight finish)",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT");
        int cut = server.drain(std::chrono::seconds(35));
        if (cut > 0) spdlog::warn("{} requests were still running at the drain deadline", cut);
        spdlog::info("mq-api stopped");
        return 0;
    } catch (const mq::Error& e) {
        mq::log_fatal("mq-api", e.what());
        return mq::exit_status(e.code());
    } catch (const std::exception& e) {
        mq::log_fatal("mq-api", e.what());
        return 1;
    }
}
