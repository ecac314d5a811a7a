#pragma once

#include <CLI/CLI.hpp>

#include "context.hpp"

namespace mqctl {

// One file per subcommand; each registers itself on the root app.
void setup_db(CLI::App& app, Context& ctx);
void setup_tenant(CLI::App& app, Context& ctx);
void setup_queue(CLI::App& app, Context& ctx);
void setup_publish(CLI::App& app, Context& ctx);
void setup_stats(CLI::App& app, Context& ctx);
void setup_scheduler(CLI::App& app, Context& ctx);  // deprecated: maintenance run
void setup_maintenance(CLI::App& app, Context& ctx);
void setup_sub(CLI::App& app, Context& ctx);
void setup_pending(CLI::App& app, Context& ctx);  // pending, claim, ack, consumers
void setup_dlq(CLI::App& app, Context& ctx);
void setup_apply(CLI::App& app, Context& ctx);  // apply -f FILE.yaml
void setup_token(CLI::App& app, Context& ctx);
void setup_schedule(CLI::App& app, Context& ctx);  // cron schedules
void setup_audit(CLI::App& app, Context& ctx);     // audit list
void setup_config(CLI::App& app, Context& ctx);    // contexts file
void setup_version(CLI::App& app, Context& ctx);
void setup_completion(CLI::App& app, Context& ctx);  // after every other command

}  // namespace mqctl
