#include <iostream>

#include "commands.hpp"
#include "mq/auth/token.hpp"
#include "mq/core/time.hpp"
#include "output.hpp"

namespace mqctl {

namespace {

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

mq::Role role_from_flag(const std::string& text) {
    if (auto role = mq::parse_role(text)) return *role;
    throw mq::ValidationError("unknown role '" + mq::printable(text) +
                                  "'; use one of: admin, tenant-admin, producer, consumer",
                              {{"field", "role"}});
}

}  // namespace

struct TokenOptions {
    std::string role;
    std::string principal;
    std::string description;
    std::string ttl;
    bool all = false;
    std::string id_or_prefix;
};

void run_token_create(const TokenOptions& o, Context& ctx) {
    // Flags are checked before connecting: a bad flag is a usage error, not a backend one.
    mq::Role role = role_from_flag(o.role);
    mq::validate_principal(o.principal);
    std::optional<std::chrono::seconds> ttl;
    if (!o.ttl.empty()) {
        auto ms = mq::parse_duration(o.ttl, "ttl");
        if (ms < std::chrono::seconds(1)) throw mq::ValidationError("--ttl must be at least 1s");
        ttl = std::chrono::duration_cast<std::chrono::seconds>(ms);
    }
    mq::TokenStore store(ctx.db());
    auto created = store.create(ctx.tenant(), role, o.principal, o.description, ttl);
    if (ctx.json()) {
        nlohmann::json out = mq::to_json(created.info);
        out["token"] = created.secret;
        print_json(out);
        return;
    }
    const auto& t = created.info;
    std::cout << "created token " << t.id << " (" << mq::role_name(t.role) << ", principal "
              << t.principal << ", tenant " << t.tenant << ")\n"
              << "expires: " << (t.expires_at.empty() ? "never" : t.expires_at) << "\n\n"
              << created.secret << "\n\n"
              << "Store this token now: it is not saved anywhere and will not be shown again.\n"
              << "Use it as: Authorization: Bearer <token>\n";
}

void run_token_list(const TokenOptions& o, Context& ctx) {
    mq::TokenStore store(ctx.db());
    auto tokens = store.list(ctx.tenant(), o.all);
    if (ctx.json()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& t : tokens) out.push_back(mq::to_json(t));
        print_json(out);
        return;
    }
    Table table(
        {"ID", "PREFIX", "ROLE", "PRINCIPAL", "CREATED", "LAST USED", "EXPIRES", "REVOKED"});
    for (const auto& t : tokens)
        table.add({t.id, t.prefix, std::string(mq::role_name(t.role)), t.principal, t.created_at,
                   or_dash(t.last_used_at), or_dash(t.expires_at), or_dash(t.revoked_at)});
    table.print();
}

void run_token_revoke(const TokenOptions& o, Context& ctx) {
    mq::TokenStore store(ctx.db());
    auto t = store.revoke(ctx.tenant(), o.id_or_prefix);
    if (ctx.json())
        print_json(mq::to_json(t));
    else
        std::cout << "revoked token " << t.id << " (" << t.prefix << ", principal " << t.principal
                  << ") at " << t.revoked_at << '\n';
}

void setup_token(CLI::App& app, Context& ctx) {
    auto* token = app.add_subcommand("token", "Manage API tokens of the tenant");
    token->require_subcommand(1);
    auto opts = std::make_shared<TokenOptions>();

    auto* create = token->add_subcommand("create", "Create a token; its secret is printed once");
    create->add_option("--role", opts->role, "admin, tenant-admin, producer or consumer")
        ->required();
    create
        ->add_option("--principal", opts->principal,
                     "Who uses it (matched against allowed producers/consumers)")
        ->required();
    create->add_option("--description", opts->description, "Free text, e.g. where it is deployed");
    create->add_option("--ttl", opts->ttl, "Lifetime, e.g. 30d or 12h (default: never expires)");
    create->callback([opts, &ctx] { run_token_create(*opts, ctx); });

    auto* list = token->add_subcommand("list", "List tokens (never their secrets)");
    list->add_flag("--all", opts->all, "Include revoked tokens");
    list->callback([opts, &ctx] { run_token_list(*opts, ctx); });

    auto* revoke = token->add_subcommand("revoke", "Revoke a token at once");
    revoke->add_option("token", opts->id_or_prefix, "Token id or prefix (see: mqctl token list)")
        ->required();
    revoke->callback([opts, &ctx] { run_token_revoke(*opts, ctx); });
}

}  // namespace mqctl
