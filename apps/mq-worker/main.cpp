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
#include <cstdlib>
#include <iostream>

#include "flags.hpp"
#include "metrics_server.hpp"
#include "mq/audit/audit_log.hpp"
#include "mq/config/logging.hpp"
#include "mq/core/version.hpp"
#include "mq/crypto/keyring.hpp"
#include "mq/deliver/destination_policy.hpp"
#include "mq/error.hpp"
#include "mq/maintenance/tasks.hpp"
#include "mq/outbox/outbox.hpp"
#include "mq/redis/reachability.hpp"
#include "mq/worker/supervisor.hpp"
#include "mq/worker/worker_config.hpp"
#include "mq/worker/worker_reload.hpp"
#include "settings_flags.hpp"

namespace {

struct Options {
    mqcli::ConfigOptions config;  ///< -c/--config, setting flags, --print-config
    bool from_db = false;
    std::vector<std::string> tenants;
    bool check = false;
    bool adopt = false;
};

std::string default_consumer_name() {
    char host[256] = "worker";
    gethostname(host, sizeof host - 1);
    return std::string(host) + "-" + std::to_string(getpid());
}

// Loads the worker file (or only the environment with --from-db and no file) with the
// command line's overrides; what start and every reload read.
// default < worker file < environment < flags (docs/config.md).
mq::WorkerConfig load(const Options& o, const std::map<std::string, std::string>& env) {
    return mq::load_worker_config(o.config.file, env, {o.config.flags});
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
    if (o.config.file.empty()) {
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
        spdlog::error("SIGHUP: reload of {} failed, the running configuration stays: {}",
                      o.config.file, e.what());
        return;
    }
    for (const auto& name : r.needs_restart)
        spdlog::warn("SIGHUP: {} changed in {}: needs a restart (the running value stays)", name,
                     o.config.file);
    if (r.log_level) {
        spdlog::set_level(spdlog::level::from_str(*r.log_level));
        spdlog::info("SIGHUP: log level is now {}", *r.log_level);
    }
    running = r.config;
    supervisor.set_fixed(running.subscriptions);
    spdlog::info(
        "SIGHUP: reloaded {}: {} subscription(s) added{}, {} changed{}, {} removed{}, {} "
        "unchanged",
        o.config.file, r.added.size(), r.added.empty() ? "" : " (" + joined(r.added) + ")",
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
    if (o.config.print) {
        std::cout << mq::render_effective_config({wc.base, wc.origins}, mq::kMqWorker,
                                                 o.config.output == "json");
        return 0;
    }
    const mq::WorkerSettings& ws = wc.base.worker;
    const std::string consumer_name =
        ws.consumer_name.empty() ? default_consumer_name() : ws.consumer_name;
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
    if (wc.subscriptions.empty() && !o.from_db && wc.base.outbox.sources.empty()) {
        mq::log_fatal("mq-worker",
                      "nothing to run: list subscriptions in the config file, use --from-db or "
                      "set outbox_sources");
        return 2;
    }

    mq::SupervisorOptions so;
    so.endpoint = endpoint;
    so.keys = keys;
    so.database_url = wc.base.database_url;
    so.consumer = consumer_name;
    so.keyring = keyring;
    so.fixed = wc.subscriptions;
    so.from_db = o.from_db;
    so.tenants = o.tenants;
    so.allow_operator_handlers = wc.base.allow_operator_handlers;
    so.webhook_policy =
        std::make_shared<const mq::DestinationPolicy>(wc.base.webhook_allowed_cidrs);
    if (o.from_db)
        spdlog::info(
            so.allow_operator_handlers
                ? "--from-db: exec and log-to-file subscriptions an operator created will run"
                : "--from-db: exec and log-to-file subscriptions are not run (start with "
                  "--allow-operator-handlers to run those an operator created)");
    so.restart_timeout = ws.shutdown_timeout;
    so.full_reconcile_interval = ws.reconcile_interval;
    mq::WorkerSupervisor supervisor(so);
    supervisor.start();
    // Delayed mover, trimmer, dead-letter archive, cron ticks... for every queue, shared with
    // other instances through leases (docs/maintenance.md).
    std::unique_ptr<mq::MaintenanceService> maintenance;
    if (wc.base.maintenance) {
        maintenance = mq::make_maintenance_service(wc.base, "mq-worker@" + consumer_name);
        maintenance->start();
    }
    // The transactional outbox relay, one per configured source (docs/outbox.md); several
    // workers may relay one source: rows are claimed with SKIP LOCKED.
    std::vector<std::unique_ptr<mq::OutboxRelay>> outbox = mq::make_outbox_relays(wc.base);
    for (auto& relay : outbox) relay->start();
    if (!outbox.empty()) spdlog::info("outbox relay: {} source(s)", outbox.size());
    // /readyz: Redis answers (PING, measured at most once a second) and every subscription
    // to run has started.
    mq::redis::Reachability redis_reachable(endpoint);
    std::unique_ptr<mqworker::MetricsServer> metrics;
    if (ws.metrics_port > 0)
        metrics = std::make_unique<mqworker::MetricsServer>(
            ws.metrics_address, ws.metrics_port, [&supervisor] { return supervisor.runners(); },
            [&supervisor] { return supervisor.skipped(); },
            [&supervisor, &redis_reachable]() -> std::optional<std::string> {
                if (!redis_reachable.reachable()) return "redis_unreachable";
                if (!supervisor.subscriptions_started()) return "subscriptions_not_started";
                return std::nullopt;
            },
            [&outbox] { return mq::outbox_families(outbox); });
    auto running = supervisor.runners().size();
    if (running == 0)
        spdlog::info("mq-worker {}: no subscription to run yet; waiting for some to be created",
                     consumer_name);
    else
        spdlog::info("mq-worker {} running {} subscription(s)", consumer_name, running);

    int sig = 0;
    for (;;) {
        sigwait(&signals, &sig);
        if (sig != SIGHUP) break;
        reload(o, wc, probe, supervisor);
    }
    spdlog::info("{}: stopping (deadline {} ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                 ws.shutdown_timeout.count());
    auto deadline = std::chrono::steady_clock::now() + ws.shutdown_timeout;
    for (auto& relay : outbox) relay->stop();
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
    // What this worker changes on its own (the subscriptions its YAML file declares) is
    // recorded in the audit log as the worker's (docs/audit.md).
    mq::audit::set_process_actor({"worker", "", "worker", ""});
    CLI::App app{"mq-worker: deliver messages of subscriptions to webhook and exec handlers"};
    app.set_version_flag("--version", std::string("mq-worker ") + mq::kVersion);
    Options o;
    app.add_option("-c,--config", o.config.file,
                   "Worker YAML file: subscriptions and settings (schemas/worker.schema.json, "
                   "docs/config.md; default MQ_CONFIG)")
        ->check(mqcli::regular_file(16 * 1024 * 1024));
    app.add_flag("--from-db", o.from_db,
                 "Also run every webhook/exec subscription found in the database");
    app.add_option("--tenant", o.tenants, "With --from-db: only these tenants (repeatable)")
        ->allow_extra_args(false);
    mqcli::add_setting_flags(app, mq::kMqWorker, o.config);
    app.add_flag("--check", o.check, "Validate the configuration and exit");
    app.add_flag(
        "--adopt", o.adopt,
        "Take over subscriptions of the config file that exist but belong to someone else");
    mqcli::harden_options(app);  // decimal numbers, no empty or non-UTF-8 values
    try {
        app.parse(argc, argv);
        if (o.config.file.empty())
            if (const char* file = std::getenv("MQ_CONFIG"); file && *file) o.config.file = file;
        if (o.config.print_doc) {
            std::cout << mq::settings_reference_markdown();
            return 0;
        }
        // An outbox relay alone needs no file: OUTBOX_SOURCES from the environment will do.
        const char* outbox = std::getenv("OUTBOX_SOURCES");
        if (o.config.file.empty() && !o.from_db && !o.config.print && !(outbox && *outbox))
            throw CLI::RequiredError("--config or --from-db (or OUTBOX_SOURCES)");
    } catch (const CLI::ParseError& e) {
        return mqcli::exit_for_parse_error(app, e);
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
