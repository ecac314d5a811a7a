// mq-worker: runs the subscriptions of a YAML file (or every webhook/exec/log subscription
// of some tenants in the database, following creates, updates, deletes and pauses live),
// delivering messages to webhook, exec and log handlers. Parses flags and config, wires
// common/ together (mq::WorkerSupervisor), serves /metrics, /healthz, /livez and /readyz,
// re-reads its file on SIGHUP and shuts down gracefully on SIGTERM. Every delivery rule
// lives in common/.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "flags.hpp"
#include "metrics_server.hpp"
#include "mq/config/logging.hpp"
#include "mq/core/version.hpp"
#include "mq/crypto/keyring.hpp"
#include "mq/deliver/destination_policy.hpp"
#include "mq/error.hpp"
#include "mq/maintenance/tasks.hpp"
#include "mq/redis/reachability.hpp"
#include "mq/worker/supervisor.hpp"
#include "mq/worker/worker_config.hpp"
#include "mq/worker/worker_reload.hpp"

namespace {

struct Options {
    std::string config;
    bool from_db = false;
    std::vector<std::string> tenants;
    std::string consumer_name;
    int metrics_port = -1;
    std::string metrics_address;
    bool check = false;
    int reconcile_interval_ms = 0;
    bool adopt = false;
    bool allow_operator_handlers = false;
};

std::string default_consumer_name() {
    char host[256] = "worker";
    gethostname(host, sizeof host - 1);
    return std::string(host) + "-" + std::to_string(getpid());
}

// Loads the worker file (or only the environment with --from-db and no file) with the
// command line's overrides; what start and every reload read.
mq::WorkerConfig load(const Options& o, const std::map<std::string, std::string>& env) {
    mq::WorkerConfig wc;
    if (!o.config.empty()) {
        wc = mq::load_worker_config(o.config, env);
    } else {
        wc.base = mq::load_config("", env);
        if (auto it = env.find("METRICS_ADDRESS"); it != env.end())
            mq::set_metrics_address(wc, it->second, "METRICS_ADDRESS");
    }
    if (!o.consumer_name.empty()) wc.consumer_name = o.consumer_name;
    if (wc.consumer_name.empty()) wc.consumer_name = default_consumer_name();
    if (o.metrics_port >= 0) wc.metrics_port = o.metrics_port;
    if (!o.metrics_address.empty())
        mq::set_metrics_address(wc, o.metrics_address, "--metrics-address");
    // Encrypted queues' entries are opened before delivery; a bad keyring stops startup
    // (and --check) instead of failing every delivery later.
    // The worker YAML has no keyring setting (keys do not belong next to subscriptions):
    // MQ_KEYRING_FILE comes from the environment in both modes.
    if (auto it = env.find("MQ_KEYRING_FILE"); it != env.end()) wc.base.keyring_file = it->second;
    return wc;
}

void log_declared(const mq::ReconcilePlan& plan) {
    for (const auto& step : plan.steps)
        if (step.action != mq::ReconcileAction::kUnchanged)
            spdlog::info("{}/{}: {}d from the worker file", step.sub.queue, step.sub.name,
                         step.action == mq::ReconcileAction::kCreate ? "create" : "update");
}

std::string joined(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

// SIGHUP: re-reads the worker file and hands its subscriptions to the running supervisor.
// Nothing changes unless the whole file is valid and every new or changed subscription
// could be declared in PostgreSQL; otherwise the running configuration stays, and says so.
void reload(const Options& o, mq::WorkerConfig& running, mq::redis::Connection& redis,
            mq::WorkerSupervisor& supervisor) {
    if (o.config.empty()) {
        spdlog::info("SIGHUP: no worker file to re-read; reconciling from PostgreSQL");
        supervisor.reconcile();
        return;
    }
    mq::WorkerReload r;
    try {
        r = mq::plan_worker_reload(running, load(o, mq::process_environment()));
        if (!r.added.empty() || !r.changed.empty()) {
            mq::pg::Database db(running.base.database_url);
            log_declared(mq::declare_worker_subscriptions(r.config, o.adopt, db, redis));
        }
    } catch (const std::exception& e) {
        spdlog::error("SIGHUP: reload of {} failed, the running configuration stays: {}", o.config,
                      e.what());
        return;
    }
    for (const auto& name : r.needs_restart)
        spdlog::warn("SIGHUP: {} changed in {}: needs a restart (the running value stays)", name,
                     o.config);
    if (r.log_level) {
        spdlog::set_level(spdlog::level::from_str(*r.log_level));
        spdlog::info("SIGHUP: log level is now {}", *r.log_level);
    }
    running = r.config;
    supervisor.set_fixed(running.subscriptions);
    spdlog::info(
        "SIGHUP: reloaded {}: {} subscription(s) added{}, {} changed{}, {} removed{}, {} "
        "unchanged",
        o.config, r.added.size(), r.added.empty() ? "" : " (" + joined(r.added) + ")",
        r.changed.size(), r.changed.empty() ? "" : " (" + joined(r.changed) + ")", r.removed.size(),
        r.removed.empty() ? "" : " (" + joined(r.removed) + ")", r.unchanged);
}

int run(const Options& o) {
    // Block the stop and reload signals in every thread; main waits for them with sigwait.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    mq::WorkerConfig wc = load(o, mq::process_environment());
    // Encrypted queues' entries are opened before delivery; a bad keyring stops startup
    // (and --check) instead of failing every delivery later.
    std::shared_ptr<const mq::Keyring> keyring;
    if (!wc.base.keyring_file.empty())
        keyring = std::make_shared<const mq::Keyring>(mq::Keyring::load(wc.base.keyring_file));
    // REDIS_TLS_* files are read here, so --check finds a bad CA or key as well.
    auto endpoint = mq::redis::endpoint_from_config(wc.base);
    if (o.check) {
        std::cout << "configuration OK: " << wc.subscriptions.size() << " subscription(s)\n";
        return 0;
    }
    mq::setup_logging("mq-worker", wc.base);

    mq::redis::Connection probe(endpoint);
    probe.check_server_policy();
    mq::KeyLayout keys(wc.base.key_prefix);

    // The file's subscriptions are declared in the database (so mqctl sees, pauses and
    // resumes them) by the same reconciler as `mqctl apply`, as owner "worker": one owned
    // by someone else is a conflict (exit 4) unless --adopt. Their pause state stays the
    // database's.
    if (!wc.subscriptions.empty()) {
        mq::pg::Database db(wc.base.database_url);
        log_declared(mq::declare_worker_subscriptions(wc, o.adopt, db, probe));
    }
    if (wc.subscriptions.empty() && !o.from_db) {
        mq::log_fatal("mq-worker",
                      "nothing to run: list subscriptions in the config file or use --from-db");
        return 2;
    }

    mq::SupervisorOptions so;
    so.endpoint = endpoint;
    so.keys = keys;
    so.database_url = wc.base.database_url;
    so.consumer = wc.consumer_name;
    so.keyring = keyring;
    so.fixed = wc.subscriptions;
    so.from_db = o.from_db;
    so.tenants = o.tenants;
    so.allow_operator_handlers = o.allow_operator_handlers || wc.base.allow_operator_handlers;
    so.webhook_policy =
        std::make_shared<const mq::DestinationPolicy>(wc.base.webhook_allowed_cidrs);
    if (o.from_db)
        spdlog::info(
            so.allow_operator_handlers
                ? "--from-db: exec and log-to-file subscriptions an operator created will run"
                : "--from-db: exec and log-to-file subscriptions are not run (start with "
                  "--allow-operator-handlers to run those an operator created)");
    so.restart_timeout = wc.shutdown_timeout;
    if (o.reconcile_interval_ms > 0)
        so.full_reconcile_interval = std::chrono::milliseconds(o.reconcile_interval_ms);
    mq::WorkerSupervisor supervisor(so);
    supervisor.start();
    // Delayed mover, trimmer, dead-letter archive, cron ticks... for every queue, shared with
    // other instances through leases (docs/maintenance.md).
    std::unique_ptr<mq::MaintenanceService> maintenance;
    if (wc.base.maintenance) {
        maintenance = mq::make_maintenance_service(wc.base, "mq-worker@" + wc.consumer_name);
        maintenance->start();
    }
    // /readyz: Redis answers (PING, measured at most once a second) and every subscription
    // to run has started.
    mq::redis::Reachability redis_reachable(endpoint);
    std::unique_ptr<mqworker::MetricsServer> metrics;
    if (wc.metrics_port > 0)
        metrics = std::make_unique<mqworker::MetricsServer>(
            wc.metrics_address, wc.metrics_port, [&supervisor] { return supervisor.runners(); },
            [&supervisor] { return supervisor.skipped(); },
            [&supervisor, &redis_reachable]() -> std::optional<std::string> {
                if (!redis_reachable.reachable()) return "redis_unreachable";
                if (!supervisor.subscriptions_started()) return "subscriptions_not_started";
                return std::nullopt;
            });
    auto running = supervisor.runners().size();
    if (running == 0)
        spdlog::info("mq-worker {}: no subscription to run yet; waiting for some to be created",
                     wc.consumer_name);
    else
        spdlog::info("mq-worker {} running {} subscription(s)", wc.consumer_name, running);

    int sig = 0;
    for (;;) {
        sigwait(&signals, &sig);
        if (sig != SIGHUP) break;
        reload(o, wc, probe, supervisor);
    }
    spdlog::info("{}: stopping (deadline {} ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                 wc.shutdown_timeout.count());
    auto deadline = std::chrono::steady_clock::now() + wc.shutdown_timeout;
    if (maintenance) maintenance->stop();
    bool clean = supervisor.stop(deadline);
    metrics.reset();
    spdlog::info(
        "stopped{}",
        clean ? ""
              : " (deliveries still running at the deadline were abandoned; they stay pending)");
    spdlog::shutdown();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"mq-worker: deliver messages of subscriptions to webhook and exec handlers"};
    app.set_version_flag("--version", std::string("mq-worker ") + mq::kVersion);
    Options o;
    app.add_option("-c,--config", o.config, "Worker YAML file (schemas/worker.schema.json)")
        ->check(mqcli::regular_file(16 * 1024 * 1024));
    app.add_flag("--from-db", o.from_db,
                 "Also run every webhook/exec subscription found in the database");
    app.add_option("--tenant", o.tenants, "With --from-db: only these tenants (repeatable)")
        ->allow_extra_args(false);
    app.add_option("--consumer-name", o.consumer_name, "Consumer name (default <host>-<pid>)");
    app.add_option("--metrics-port", o.metrics_port,
                   "Port for /metrics, /healthz, /livez and /readyz (0: off)");
    app.add_option("--metrics-address", o.metrics_address,
                   "Address the metrics port binds (default 127.0.0.1; 0.0.0.0 or :: for every "
                   "interface). Also METRICS_ADDRESS or metrics_address in the file");
    app.add_flag("--check", o.check, "Validate the configuration and exit");
    app.add_flag("--allow-operator-handlers", o.allow_operator_handlers,
                 "With --from-db: also run exec and log-to-file subscriptions an operator "
                 "created (mqctl, apply); never those set through the API (docs/security.md). "
                 "Also MQ_ALLOW_OPERATOR_HANDLERS or allow_operator_handlers in the file");
    app.add_flag(
        "--adopt", o.adopt,
        "Take over subscriptions of the config file that exist but belong to someone else");
    app.add_option(
           "--reconcile-interval-ms", o.reconcile_interval_ms,
           "Full reconcile from PostgreSQL this often (default 15000; events apply at once)")
        ->check(CLI::Range(100, 3600000));
    mqcli::harden_options(app);  // decimal numbers, no empty or non-UTF-8 values
    try {
        app.parse(argc, argv);
        if (o.config.empty() && !o.from_db) throw CLI::RequiredError("--config or --from-db");
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    }
    try {
        return run(o);
    } catch (const mq::Error& e) {
        mq::log_fatal("mq-worker", e.what());
        return mq::exit_status(e.code());
    } catch (const std::exception& e) {
        mq::log_fatal("mq-worker", std::string("unexpected error: ") + e.what());
        return 1;
    }
}
