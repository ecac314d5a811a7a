// mqctl maintenance run [--once]: the maintenance service of mq-api and mq-worker (delayed
// mover, dead-letter archive, plugged tasks) in the foreground, or one pass for cron.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <iostream>

#include "commands.hpp"
#include "mq/maintenance/tasks.hpp"
#include "output.hpp"

namespace mqctl {

struct MaintenanceRunOptions {
    bool once = false;
};

namespace {

std::string instance_name() {
    char host[256] = "host";
    gethostname(host, sizeof host - 1);
    return "mqctl@" + std::string(host) + "-" + std::to_string(getpid());
}

std::string join(const std::vector<int>& v) {
    std::string s;
    for (int i : v) s += (s.empty() ? "" : ",") + std::to_string(i);
    return s.empty() ? "-" : s;
}

// One pass of every task over every queue. Shards whose lease a running mq-api/mq-worker
// holds are skipped and reported: that instance does their work.
void run_once(Context& ctx) {
    // Open both connections first: a backend that is down fails here with the usual
    // message naming REDIS_URL / DATABASE_URL (exit 5).
    ctx.redis();
    ctx.db();
    auto service = mq::make_maintenance_service(ctx.config(), instance_name());
    mq::MaintenancePass pass = service->run_once();
    const char* global = pass.global_done ? "done" : pass.global_skipped ? "skipped" : "none";
    if (ctx.json()) {
        print_json({{"queues", pass.queues},
                    {"moved", pass.moved},
                    {"archived", pass.archived},
                    {"errors", pass.errors},
                    {"shards_done", pass.shards_done},
                    {"shards_skipped", pass.shards_skipped},
                    {"queues_skipped", pass.queues_skipped},
                    {"global_tasks", global}});
    } else {
        std::cout << "moved " << pass.moved << " due entr" << (pass.moved == 1 ? "y" : "ies")
                  << ", archived " << pass.archived << " dead letter(s) in "
                  << pass.queues - pass.queues_skipped << " of " << pass.queues << " queue(s)\n";
        print_fields({{"shards done", join(pass.shards_done)},
                      {"shards skipped", join(pass.shards_skipped)},
                      {"global tasks", global}});
        if (!pass.shards_skipped.empty() || pass.global_skipped)
            std::cout
                << "skipped " << pass.queues_skipped << " queue(s) in "
                << pass.shards_skipped.size()
                << " shard(s) held by running instances (mq-api, mq-worker): they do that work\n";
    }
    if (pass.errors > 0)
        throw mq::Error(mq::ErrorCode::kInternal,
                        std::to_string(pass.errors) +
                            " maintenance task call(s) failed; see the log lines above");
}

// The service in the foreground until SIGTERM/SIGINT, sharing the work with running
// instances through the leases.
void run_loop(Context& ctx) {
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // before any thread starts
    ctx.redis();  // fail fast (exit 5) when Redis is not there at start
    spdlog::set_level(spdlog::level::info);
    auto service = mq::make_maintenance_service(ctx.config(), instance_name());
    service->start();
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("{}: stopping maintenance", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    service->stop();
    auto s = service->stats();
    spdlog::info("maintenance stopped: moved {}, archived {}, {} task error(s)", s.moved,
                 s.archived, s.task_errors);
}

}  // namespace

void setup_maintenance(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand(
        "maintenance",
        "Background work of mq-api and mq-worker: delayed mover, dead-letter archive (for cron)");
    cmd->require_subcommand(1);
    auto o = std::make_shared<MaintenanceRunOptions>();
    auto* run =
        cmd->add_subcommand("run", "Run the maintenance service (a loop, or one pass with --once)");
    run->add_flag(
        "--once", o->once,
        "One pass over every queue, then exit; shards a running instance holds are skipped");
    run->callback([o, &ctx] {
        if (o->once)
            run_once(ctx);
        else
            run_loop(ctx);
    });
}

}  // namespace mqctl
