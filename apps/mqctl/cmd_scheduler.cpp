#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <thread>

#include "commands.hpp"
#include "mq/core/time.hpp"
#include "mq/publish/scheduler.hpp"
#include "mq/queue/catalog.hpp"
#include "output.hpp"

namespace mqctl {

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop = true; }
}  // namespace

struct SchedulerOptions {
    bool once = false;
    std::string interval = "100ms";
    std::string refresh = "5s";
};

// Moves due delayed entries of every queue of every tenant into their streams. Safe to
// run several at once (the move is one Lua call per batch). Kept for crontabs that call
// it; the maintenance service (mq-api, mq-worker, `mqctl maintenance run`) replaces it.
void run_scheduler(const SchedulerOptions& o, Context& ctx) {
    auto interval = mq::parse_duration(o.interval, "--interval");
    auto refresh = mq::parse_duration(o.refresh, "--refresh");
    if (interval.count() <= 0) throw mq::ValidationError("--interval must be greater than zero");
    mq::Catalog catalog(ctx.db());
    mq::Scheduler scheduler(ctx.redis(), ctx.keys());

    if (o.once) {
        std::int64_t moved = 0;
        auto queues = catalog.all_queues();
        for (const auto& q : queues) moved += scheduler.move_due(q).moved;
        if (ctx.json())
            print_json({{"moved", moved}, {"queues", queues.size()}});
        else
            std::cout << "moved " << moved << " due entr" << (moved == 1 ? "y" : "ies") << " in "
                      << queues.size() << " queue(s)\n";
        return;
    }

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    spdlog::set_level(spdlog::level::info);
    spdlog::warn(
        "'mqctl scheduler run' is deprecated: mq-api and mq-worker move delayed messages "
        "themselves; where neither runs, use 'mqctl maintenance run' (docs/maintenance.md)");
    spdlog::info("scheduler running: interval {}, queue list refreshed every {}", o.interval,
                 o.refresh);
    std::vector<mq::Queue> queues;
    auto next_refresh = std::chrono::steady_clock::now();
    while (!g_stop) {
        auto now = std::chrono::steady_clock::now();
        try {
            if (now >= next_refresh) {
                queues = catalog.all_queues();
                next_refresh = now + refresh;
            }
            std::int64_t moved = 0;
            for (const auto& q : queues) moved += scheduler.move_due(q).moved;
            if (moved) spdlog::debug("moved {} due entries", moved);
        } catch (const mq::Error& e) {
            // Backends come and go; keep running and say so once per failure.
            spdlog::warn("scheduler pass failed: {}", e.what());
            std::this_thread::sleep_for(std::chrono::seconds(1));
        }
        std::this_thread::sleep_for(interval);
    }
    spdlog::info("scheduler stopped");
}

void setup_scheduler(CLI::App& app, Context& ctx) {
    auto* sched = app.add_subcommand(
        "scheduler",
        "Move due delayed/scheduled messages into their queues (deprecated: see maintenance)");
    sched->require_subcommand(1);
    auto o = std::make_shared<SchedulerOptions>();
    auto* run =
        sched->add_subcommand("run", "Run the mover (a loop, or one pass with --once for cron)");
    run->add_flag("--once", o->once, "One pass over every queue, then exit");
    run->add_option("--interval", o->interval, "Pause between passes (default 100ms)");
    run->add_option("--refresh", o->refresh, "Re-read the queue list this often (default 5s)");
    run->callback([o, &ctx] { run_scheduler(*o, ctx); });
}

}  // namespace mqctl
