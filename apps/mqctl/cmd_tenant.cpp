#include <iostream>

#include "commands.hpp"
#include "mq/auth/quota.hpp"
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
            out.push_back({{"id", t.id},
                           {"display_name", t.display_name},
                           {"status", t.status},
                           {"created_at", t.created_at}});
        print_json(out);
        return;
    }
    Table table({"TENANT", "NAME", "STATUS", "CREATED"});
    for (const auto& t : tenants) table.add({t.id, t.display_name, t.status, t.created_at});
    table.print();
}

struct TenantUpdateOptions {
    std::string id;
    std::string publish_rate;  ///< messages per second, or "none"
};

void run_tenant_update(const TenantUpdateOptions& opts, Context& ctx) {
    if (opts.publish_rate.empty())
        throw mq::ValidationError(
            "nothing to change; give --publish-rate N (messages per second) or none");
    std::optional<int> rate;
    if (opts.publish_rate != "none") {
        const std::string& s = opts.publish_rate;
        if (s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos ||
            std::stoi(s) <= 0)
            throw mq::ValidationError(
                "--publish-rate must be a whole number of messages per second "
                "above 0, or 'none', got '" +
                    mq::printable(s) + "'",
                {{"field", "publish_rate"}});
        rate = std::stoi(s);
    }
    mq::set_tenant_publish_rate(ctx.db(), opts.id, rate);
    if (ctx.json())
        print_json({{"tenant", opts.id},
                    {"publish_rate_limit", rate ? nlohmann::json(*rate) : nlohmann::json()}});
    else
        std::cout << "tenant " << opts.id << ": publish rate "
                  << (rate ? std::to_string(*rate) + " messages/s" : std::string("unlimited"))
                  << '\n';
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
    auto uopts = std::make_shared<TenantUpdateOptions>();
    auto* update = tenant->add_subcommand("update", "Change a tenant's settings");
    update->add_option("id", uopts->id, "Tenant id")->required();
    update->add_option("--publish-rate", uopts->publish_rate,
                       "Publish limit in messages per second per API process, or 'none'");
    update->callback([uopts, &ctx] { run_tenant_update(*uopts, ctx); });
}

}  // namespace mqctl
