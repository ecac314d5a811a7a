// mq-worker: runs the subscriptions of a YAML file (or every webhook/exec/log subscription
// of some tenants in the database, following creates, updates, deletes and pauses live),
// delivering messages to webhook, exec and log handlers. Parses flags and config, wires
// common/ together (mq::WorkerSupervisor), serves /metrics and /healthz, and shuts down
// gracefully on SIGTERM. Every delivery rule lives in common/.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "flags.hpp"
#include "metrics_server.hpp"
#include "mq/config/logging.hpp"
#include "mq/consume/subscription_reconciler.hpp"
#include "mq/core/version.hpp"
#include "mq/crypto/keyring.hpp"
#include "mq/deliver/destination_policy.hpp"
#include "mq/error.hpp"
#include "mq/maintenance/tasks.hpp"
#include "mq/worker/supervisor.hpp"
#include "mq/worker/worker_config.hpp"
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

int run(const Options& o) {
    // Block the stop signals in every thread; main waits for them with sigwait.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    // default < worker file < environment < flags (docs/config.md).
    mq::WorkerConfig wc =
        mq::load_worker_config(o.config.file, mq::process_environment(), {o.config.flags});
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
    mq::pg::Database db(wc.base.database_url);
    mq::KeyLayout keys(wc.base.key_prefix);

    // The file's subscriptions are declared in the database (so mqctl sees, pauses and
    // resumes them) by the same reconciler as `mqctl apply`, as owner "worker": one owned
    // by someone else is a conflict (exit 4) unless --adopt. Their pause state stays the
    // database's.
    if (!wc.subscriptions.empty()) {
        mq::SubscriptionDeclaration decl;
        decl.tenant = wc.base.tenant;
        decl.owner = mq::kWorkerOwner;
        decl.adopt = o.adopt;
        for (std::size_t i = 0; i < wc.subscriptions.size(); ++i)
            decl.entries.push_back({wc.subscriptions[i], i < wc.where.size() ? wc.where[i] : ""});
        decl.conflict_hint = [](std::size_t n) {
            return std::string("Rename ") + (n == 1 ? "it" : "them") +
                   " in the worker file, or start with --adopt "
                   "to take " +
                   (n == 1 ? "it" : "them") + " over";
        };
        mq::SubscriptionReconciler reconciler(db);
        auto plan = reconciler.plan(decl);
        reconciler.apply(plan, probe, keys);
        for (const auto& step : plan.steps)
            if (step.action != mq::ReconcileAction::kUnchanged)
                spdlog::info("{}/{}: {}d from the worker file", step.sub.queue, step.sub.name,
                             step.action == mq::ReconcileAction::kCreate ? "create" : "update");
    }
    if (wc.subscriptions.empty() && !o.from_db) {
        std::cerr << "mq-worker: nothing to run: list subscriptions in the config file or use "
                     "--from-db\n";
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
    std::unique_ptr<mqworker::MetricsServer> metrics;
    if (ws.metrics_port > 0)
        metrics = std::make_unique<mqworker::MetricsServer>(
            ws.metrics_address, ws.metrics_port, [&supervisor] { return supervisor.runners(); },
            [&supervisor] { return supervisor.skipped(); });
    auto running = supervisor.runners().size();
    if (running == 0)
        spdlog::info("mq-worker {}: no subscription to run yet; waiting for some to be created",
                     consumer_name);
    else
        spdlog::info("mq-worker {} running {} subscription(s)", consumer_name, running);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("{}: stopping (deadline {} ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                 ws.shutdown_timeout.count());
    auto deadline = std::chrono::steady_clock::now() + ws.shutdown_timeout;
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
        if (o.config.file.empty() && !o.from_db && !o.config.print)
            throw CLI::RequiredError("--config or --from-db");
    } catch (const CLI::ParseError& e) {
        return mqcli::exit_for_parse_error(app, e);
    }
    try {
        return run(o);
    } catch (const mq::Error& e) {
        std::cerr << "mq-worker: " << e.what() << '\n';
        return mq::exit_status(e.code());
    } catch (const std::exception& e) {
        std::cerr << "mq-worker: unexpected error: " << e.what() << '\n';
        return 1;
    }
}
