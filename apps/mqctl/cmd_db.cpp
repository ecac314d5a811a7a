#include <iostream>

#include "commands.hpp"
#include "mq/pg/migrations.hpp"
#include "output.hpp"

namespace mqctl {

struct MigrateOptions {
    std::string dir;  // empty: the migrations built into mqctl
};

void run_migrate(const MigrateOptions& opts, Context& ctx) {
    auto migrations =
        opts.dir.empty() ? mq::pg::embedded_migrations() : mq::pg::load_migrations(opts.dir);
    auto report = mq::pg::migrate(ctx.db(), migrations);
    if (ctx.json()) {
        nlohmann::json applied = nlohmann::json::array();
        for (const auto& m : report.applied) applied.push_back(m.name);
        print_json({{"applied", applied}, {"version", report.current_version}});
        return;
    }
    if (report.applied.empty()) {
        std::cout << "database is up to date (version " << report.current_version << ")\n";
        return;
    }
    for (const auto& m : report.applied) std::cout << "applied " << m.name << '\n';
    std::cout << "database is at version " << report.current_version << '\n';
}

void setup_db(CLI::App& app, Context& ctx) {
    auto* db = app.add_subcommand("db", "Database maintenance");
    db->require_subcommand(1);
    auto opts = std::make_shared<MigrateOptions>();
    auto* migrate = db->add_subcommand("migrate", "Apply pending SQL migrations (idempotent)");
    migrate->add_option("--dir", opts->dir,
                        "Read migrations from this directory instead of the built-in set");
    migrate->callback([opts, &ctx] { run_migrate(*opts, ctx); });
}

}  // namespace mqctl
