// mqctl: the operator's CLI. Parses flags, calls common/, prints; every rule lives in
// common/. Exit codes: 0 ok, 1 failure (also "n" at a prompt), 2 usage/invalid input,
// 3 not found, 4 conflict, 5 backend unavailable.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "command_tree.hpp"
#include "commands.hpp"
#include "confirm.hpp"
#include "flags.hpp"
#include "mq/audit/audit_log.hpp"
#include "mq/core/version.hpp"
#include "mq/error.hpp"
#include "output.hpp"

namespace {

void print_error(const mqctl::Context& ctx, const nlohmann::json& error, const std::string& text) {
    if (ctx.options.output == "yaml")
        std::cerr << mqctl::to_yaml(error);
    else if (ctx.json())
        std::cerr << error.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    else
        std::cerr << "mqctl: " << text << '\n';
}

}  // namespace

int main(int argc, char** argv) {
    spdlog::set_default_logger(spdlog::stderr_color_mt("mqctl"));
    spdlog::set_level(spdlog::level::warn);

    // Every admin action this run takes is recorded in the audit log as the OS user's
    // (docs/audit.md); `mqctl apply` says "apply" instead.
    mq::audit::set_process_actor({mq::audit::os_user(), "", "mqctl", ""});

    mqctl::Context ctx;
    CLI::App app{"mqctl: administer mq queues, publish messages and run maintenance", "mqctl"};
    // Set before any subcommand exists: subcommands copy it, and their help then lists the
    // global options too.
    app.formatter(std::make_shared<mqctl::GlobalOptionsFormatter>());
    app.set_version_flag("--version", std::string("mqctl ") + mq::kVersion);
    // One subcommand, unless --print-config (checked after parsing).
    app.require_subcommand(0, 1);
    app.fallthrough();
    auto& o = ctx.options;
    mqctl::bind_output_format(&o.output);
    app.add_option("-o,--output", o.output, "Output format: table (default), json or yaml")
        ->check(CLI::IsMember(mqctl::kOutputFormats));
    app.add_option("-t,--tenant", o.tenant, "Tenant to act for (MQ_TENANT, default 'default')");
    app.add_option("--context", o.context,
                   "Use this context of the contexts file for this command (mqctl config)");
    app.add_option("--mqconfig", o.mqconfig,
                   "Contexts file (MQCONFIG, default ~/.config/mq/config.yaml)");
    app.add_option("--config", o.config_file, "YAML settings file (MQ_CONFIG)")
        ->check(mqcli::regular_file(16 * 1024 * 1024));
    app.add_option("--redis-url", o.redis_url, "Redis URL (REDIS_URL)");
    app.add_option("--database-url", o.database_url, "PostgreSQL URL (DATABASE_URL)");
    app.add_option("--key-prefix", o.key_prefix,
                   "Redis key prefix (REDIS_KEY_PREFIX, default mq:)");
    app.add_flag("--print-config", o.print_config,
                 "Print every effective setting with its source (default, file, env, flag), "
                 "secrets masked, and exit (docs/config.md)");

    mqctl::setup_db(app, ctx);
    mqctl::setup_tenant(app, ctx);
    mqctl::setup_queue(app, ctx);
    mqctl::setup_publish(app, ctx);
    mqctl::setup_stats(app, ctx);
    mqctl::setup_scheduler(app, ctx);
    mqctl::setup_maintenance(app, ctx);
    mqctl::setup_sub(app, ctx);
    mqctl::setup_pending(app, ctx);
    mqctl::setup_dlq(app, ctx);
    mqctl::setup_apply(app, ctx);
    mqctl::setup_token(app, ctx);
    mqctl::setup_schedule(app, ctx);
    mqctl::setup_audit(app, ctx);
    mqctl::setup_config(app, ctx);
    mqctl::setup_version(app, ctx);
    mqctl::setup_completion(app, ctx);
    mqcli::harden_options(app);  // after every option exists: empty values, numbers

    // CLI11 says only "The following arguments were not expected" for a mistyped command.
    if (auto typo = mqctl::unknown_command(app, argc, argv)) {
        std::cerr << "mqctl: " << *typo << '\n';
        return 2;
    }
    try {
        app.parse(argc, argv);
        if (o.print_config) {
            std::cout << mq::render_effective_config(ctx.loaded(), mq::kMqctl, ctx.json());
            return 0;
        }
        if (app.get_subcommands().empty()) throw CLI::RequiredError::Subcommand(1);
        return 0;
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    } catch (const mqctl::Aborted& e) {
        print_error(ctx, {{"error", {{"code", "MQ_ABORTED"}, {"message", e.what()}}}}, e.what());
        return 1;
    } catch (const mq::Error& e) {
        print_error(ctx, e.to_json(), e.what());
        return mq::exit_status(e.code());
    } catch (const std::exception& e) {
        std::cerr << "mqctl: unexpected error: " << e.what() << '\n';
        return 1;
    }
}
