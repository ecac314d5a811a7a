#include <iostream>

#include "commands.hpp"
#include "mq/queue/catalog.hpp"
#include "output.hpp"

namespace mqctl {

struct TenantCreateOptions {
    std::string id;
    std::string display_name;
    bool if_not_exists = false;
};

void run_tenant_create(const TenantCreateOptions& opts, Context& ctx) {
    mq::Catalog catalog(ctx.db());
    bool created = catalog.create_tenant(opts.id, opts.display_name, opts.if_not_exists);
    if (ctx.json())
        print_json({{"tenant", opts.id}, {"created", created}});
    else
        std::cout << (created ? "created tenant " : "tenant already exists: ") << opts.id << '\n';
}

void run_tenant_list(Context& ctx) {
    mq::Catalog catalog(ctx.db());
    auto tenants = catalog.list_tenants();
    if (ctx.json()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& t : tenants)
            out.push_back({{"id", t.id}, {"display_name", t.display_name}, {"status", t.status},
                           {"created_at", t.created_at}});
        print_json(out);
        return;
    }
    Table table({"TENANT", "NAME", "STATUS", "CREATED"});
    for (const auto& t : tenants) table.add({t.id, t.display_name, t.status, t.created_at});
    table.print();
}

void setup_tenant(CLI::App& app, Context& ctx) {
    auto* tenant = app.add_subcommand("tenant", "Manage tenants");
    tenant->require_subcommand(1);
    auto opts = std::make_shared<TenantCreateOptions>();
    auto* create = tenant->add_subcommand("create", "Create a tenant");
    create->add_option("id", opts->id, "Tenant id (1-64 of A-Z a-z 0-9 . _ -)")->required();
    create->add_option("--name", opts->display_name, "Display name");
    create->add_flag("--if-not-exists", opts->if_not_exists, "Succeed when it already exists");
    create->callback([opts, &ctx] { run_tenant_create(*opts, ctx); });
    tenant->add_subcommand("list", "List tenants")->callback([&ctx] { run_tenant_list(ctx); });
}

}  // namespace mqctl
