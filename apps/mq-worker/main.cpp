// mq-worker: runs the subscriptions of a YAML file (or every webhook/exec subscription
// of some tenants in the database), delivering messages to webhook and exec handlers.
// Parses flags and config, wires common/ together, serves /metrics and /healthz, and
// shuts down gracefully on SIGTERM. Every delivery rule lives in common/.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "metrics_server.hpp"
#include "mq/config/logging.hpp"
#include "mq/consume/control.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/crypto/keyring.hpp"
#include "mq/error.hpp"
#include "mq/maintenance/tasks.hpp"
#include "mq/queue/catalog.hpp"
#include "mq/worker/runner.hpp"
#include "mq/worker/worker_config.hpp"

namespace {

struct Options {
    std::string config;
    bool from_db = false;
    std::vector<std::string> tenants;
    std::string consumer_name;
    int metrics_port = -1;
    bool check = false;
};


std::string default_consumer_name() {
    char host[256] = "worker";
    gethostname(host, sizeof host - 1);
    return std::string(host) + "-" + std::to_string(getpid());
}

// Listens on the control channel and pauses/resumes runners. Subscriber mode with a
// PING before every read, so a quiet channel never looks like a dead connection.
class ControlListener {
public:
    ControlListener(mq::redis::Endpoint ep, mq::KeyLayout keys,
                    std::vector<std::unique_ptr<mq::SubscriptionRunner>>& runners, mq::pg::Database& db)
        : ep_(std::move(ep)), keys_(std::move(keys)), runners_(runners), db_(db) {
        thread_ = std::thread([this] { loop(); });
    }
    ~ControlListener() {
        stop_ = true;
        thread_.join();
    }

private:
    void apply(const nlohmann::json& event) {
        std::string what = event.value("event", "");
        for (auto& r : runners_) {
            const auto& s = r->options().subscription;
            if (s.tenant != event.value("tenant", "") || s.queue != event.value("queue", "") ||
                s.name != event.value("subscription", "") ||
                mq::queue_owner(s) != event.value("queue_tenant", s.tenant))
                continue;
            if (what == "pause") r->set_paused(true);
            else if (what == "resume") r->set_paused(false);
            else if (what == "deleted") spdlog::warn("{}/{}: deleted in the database; still running until restart", s.queue, s.name);
        }
    }
    // After a reconnect, events may have been missed: read the statuses again.
    void resync() {
        try {
            mq::SubscriptionCatalog subs(db_);
            for (auto& r : runners_) {
                const auto& s = r->options().subscription;
                if (auto now = subs.find(s.tenant, s.queue, s.name, mq::queue_owner(s)))
                    r->set_paused(now->status == "paused");
            }
        } catch (const std::exception& e) {
            spdlog::warn("control: cannot re-read subscription states: {}", e.what());
        }
    }
    void loop() {
        const std::string channel = mq::control_channel(keys_);
        while (!stop_) {
            try {
                mq::redis::Connection conn(ep_);
                conn.write({"SUBSCRIBE", channel});
                conn.read();
                resync();
                while (!stop_) {
                    conn.write({"PING"});
                    for (;;) {
                        mq::redis::Reply r = conn.read();
                        if (r.elements.size() >= 3 && r.elements[0].str == "message") {
                            auto event = nlohmann::json::parse(r.elements[2].str, nullptr, false);
                            if (event.is_object()) apply(event);
                            continue;
                        }
                        break;  // the pong
                    }
                    std::this_thread::sleep_for(std::chrono::milliseconds(100));
                }
            } catch (const std::exception& e) {
                spdlog::warn("control channel: {}; reconnecting", e.what());
                for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        }
    }

    mq::redis::Endpoint ep_;
    mq::KeyLayout keys_;
    std::vector<std::unique_ptr<mq::SubscriptionRunner>>& runners_;
    mq::pg::Database& db_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

int run(const Options& o) {
    // Block the stop signals in every thread; main waits for them with sigwait.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    auto env = mq::process_environment();
    mq::WorkerConfig wc;
    if (!o.config.empty()) {
        wc = mq::load_worker_config(o.config, env);
    } else {
        wc.base = mq::load_config("", env);
    }
    if (!o.consumer_name.empty()) wc.consumer_name = o.consumer_name;
    if (wc.consumer_name.empty()) wc.consumer_name = default_consumer_name();
    if (o.metrics_port >= 0) wc.metrics_port = o.metrics_port;
    // Encrypted queues' entries are opened before delivery; a bad keyring stops startup
    // (and --check) instead of failing every delivery later.
    // The worker YAML has no keyring setting (keys do not belong next to subscriptions):
    // MQ_KEYRING_FILE comes from the environment in both modes.
    if (auto it = env.find("MQ_KEYRING_FILE"); it != env.end()) wc.base.keyring_file = it->second;
    std::shared_ptr<const mq::Keyring> keyring;
    if (!wc.base.keyring_file.empty())
        keyring = std::make_shared<const mq::Keyring>(mq::Keyring::load(wc.base.keyring_file));
    if (o.check) {
        std::cout << "configuration OK: " << wc.subscriptions.size() << " subscription(s)\n";
        return 0;
    }
    mq::setup_logging("mq-worker", wc.base);

    auto endpoint = mq::redis::parse_url(wc.base.redis_url);
    mq::redis::Connection probe(endpoint);
    probe.check_server_policy();
    mq::pg::Database db(wc.base.database_url);
    mq::Catalog catalog(db);
    mq::SubscriptionCatalog subs(db);
    mq::KeyLayout keys(wc.base.key_prefix);

    // The file's subscriptions are registered in the database (so mqctl sees, pauses and
    // resumes them); their pause state comes from there.
    std::vector<mq::Subscription> to_run;
    for (auto s : wc.subscriptions) {
        if (auto existing = subs.find(s.tenant, s.queue, s.name)) {
            s.status = existing->status;
            subs.update(s);
        } else {
            subs.create(s);
        }
        to_run.push_back(s);
    }
    if (o.from_db)
        for (const auto& s : subs.list_all(o.tenants))
            if (s.type == "webhook" || s.type == "exec" || s.type == "log") to_run.push_back(s);
    if (to_run.empty()) {
        std::cerr << "mq-worker: nothing to run: list subscriptions in the config file or use --from-db\n";
        return 2;
    }

    std::vector<std::unique_ptr<mq::SubscriptionRunner>> runners;
    for (const auto& s : to_run) {
        mq::RunnerOptions ro;
        ro.endpoint = endpoint;
        ro.keys = keys;
        if (mq::is_cross_tenant(s)) {
            // Only mq-api delivers from another tenant's queue (it checks is_public on every
            // pull); such rows are pull-only, so one here was written around the API.
            spdlog::warn("{}/{}/{}: on tenant {}'s queue: not run by mq-worker (pull it through mq-api)",
                         s.tenant, s.queue, s.name, mq::queue_owner(s));
            continue;
        }
        ro.queue = catalog.get_queue(s.tenant, s.queue);
        ro.subscription = s;
        ro.consumer = wc.consumer_name;
        ro.handler = mq::make_handler(s);
        ro.keyring = keyring;
        runners.push_back(std::make_unique<mq::SubscriptionRunner>(ro, std::make_shared<mq::RunnerMetrics>()));
    }
    for (auto& r : runners) r->start();
    ControlListener control(endpoint, keys, runners, db);
    // Delayed mover, dead-letter archive... for every queue, shared with other instances
    // through leases (docs/maintenance.md).
    std::unique_ptr<mq::MaintenanceService> maintenance;
    if (wc.base.maintenance) {
        maintenance = mq::make_maintenance_service(wc.base, "mq-worker@" + wc.consumer_name);
        maintenance->start();
    }
    std::unique_ptr<mqworker::MetricsServer> metrics;
    if (wc.metrics_port > 0) metrics = std::make_unique<mqworker::MetricsServer>(wc.metrics_port, runners);
    spdlog::info("mq-worker {} running {} subscription(s)", wc.consumer_name, runners.size());

    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("{}: stopping (deadline {} ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT", wc.shutdown_timeout.count());
    auto deadline = std::chrono::steady_clock::now() + wc.shutdown_timeout;
    maintenance.reset();
    bool clean = true;
    for (auto& r : runners) clean = r->stop(deadline) && clean;
    metrics.reset();
    spdlog::info("stopped{}", clean ? "" : " (some deliveries were still running; they stay pending)");
    spdlog::shutdown();
    if (!clean) std::_Exit(0);  // detached handler threads must not outlive their runner
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"mq-worker: deliver messages of subscriptions to webhook and exec handlers"};
    app.set_version_flag("--version", "mq-worker 0.1.0");
    Options o;
    app.add_option("-c,--config", o.config, "Worker YAML file (schemas/worker.schema.json)");
    app.add_flag("--from-db", o.from_db, "Also run every webhook/exec subscription found in the database");
    app.add_option("--tenant", o.tenants, "With --from-db: only these tenants (repeatable)")->allow_extra_args(false);
    app.add_option("--consumer-name", o.consumer_name, "Consumer name (default <host>-<pid>)");
    app.add_option("--metrics-port", o.metrics_port, "Port for /metrics and /healthz (0: off)");
    app.add_flag("--check", o.check, "Validate the configuration and exit");
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
        std::cerr << "mq-worker: " << e.what() << '\n';
        return mq::exit_status(e.code());
    } catch (const std::exception& e) {
        std::cerr << "mq-worker: unexpected error: " << e.what() << '\n';
        return 1;
    }
}
