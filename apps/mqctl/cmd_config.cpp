// mqctl config get-contexts|current-context|use-context|set-context|delete-context|view:
// the contexts file (mq/config/contexts.hpp; docs/mqctl.md), like kubectl config. A context
// names the Redis and PostgreSQL URLs, tenant and key prefix of one environment; the
// current one applies to every command, --context NAME to one.
#include <cctype>
#include <iostream>

#include "commands.hpp"
#include "mq/config/contexts.hpp"
#include "mq/core/suggest.hpp"
#include "mq/error.hpp"
#include "output.hpp"

namespace mqctl {

namespace {

struct ConfigOptions {
    std::string name;
    mq::ClientContext values;
    bool use = false;
    bool raw = false;
};

[[noreturn]] void no_such_context(const mq::ClientContextFile& file, const std::string& name,
                                  const std::string& path) {
    std::vector<std::string> names;
    for (const auto& [n, c] : file.contexts) names.push_back(n);
    std::string text = "context '" + mq::printable(name) + "' not found in " + path;
    if (auto near = mq::closest_match(name, names)) text += "; did you mean '" + *near + "'?";
    throw mq::Error(mq::ErrorCode::kNotFound, text + " (list them with: mqctl config get-contexts)",
                    {{"context", mq::printable(name)}});
}

// A context as shown: passwords in URLs and the token masked unless `raw`.
nlohmann::json shown(const mq::ClientContext& c, bool raw) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [key, member] : mq::client_context_fields()) {
        std::string v = c.*member;
        if (v.empty()) continue;
        if (!raw && std::string(key) == "token") v = "****";
        if (!raw && std::string(key).find("_url") != std::string::npos)
            v = mq::mask_url_password(v);
        j[key] = v;
    }
    return j;
}

void run_get_contexts(Context& ctx) {
    const std::string path = ctx.contexts_path();
    const auto file = mq::load_client_contexts(path);
    if (ctx.json()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& [name, c] : file.contexts) {
            nlohmann::json j = shown(c, false);
            j["name"] = name;
            j["current"] = name == file.current;
            out.push_back(std::move(j));
        }
        print_json(out);
        return;
    }
    if (file.contexts.empty()) {
        std::cout << "no contexts in " << path
                  << "; add one with: mqctl config set-context NAME --redis-url URL "
                     "--database-url URL --tenant T\n";
        return;
    }
    Table t({"CURRENT", "NAME", "TENANT", "REDIS", "DATABASE", "KEY PREFIX"});
    for (const auto& [name, c] : file.contexts) {
        auto dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
        t.add({name == file.current ? "*" : "", name, dash(c.tenant),
               dash(mq::mask_url_password(c.redis_url)),
               dash(mq::mask_url_password(c.database_url)), dash(c.key_prefix)});
    }
    t.print();
}

void run_current_context(Context& ctx) {
    const std::string path = ctx.contexts_path();
    const auto file = mq::load_client_contexts(path);
    if (file.current.empty())
        throw mq::Error(mq::ErrorCode::kNotFound,
                        "no current context is set in " + path +
                            "; pick one with: mqctl config use-context NAME");
    if (ctx.json())
        print_json({{"current_context", file.current}});
    else
        std::cout << file.current << '\n';
}

void run_use_context(const ConfigOptions& o, Context& ctx) {
    const std::string path = ctx.contexts_path();
    auto file = mq::load_client_contexts(path);
    if (!file.contexts.count(o.name)) no_such_context(file, o.name, path);
    file.current = o.name;
    mq::save_client_contexts(path, file);
    if (ctx.json())
        print_json({{"current_context", o.name}, {"file", path}});
    else
        std::cout << "switched to context \"" << o.name << "\"\n";
}

// The loader's rule for names (mq/config/contexts.cpp), checked before anything is written.
void check_name(const std::string& n) {
    bool ok = !n.empty() && n.size() <= 64;
    for (char ch : n)
        ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' ||
                    ch == '.' || ch == '@');
    if (!ok)
        throw mq::ValidationError(
            "context name '" + mq::printable(n) + "' must be 1-64 of A-Z a-z 0-9 . _ - @",
            {{"field", "name"}});
}

void check_values(const mq::ClientContext& v) {
    // The same checks the settings get when they are used, so a mistake shows now.
    mq::Config scratch;
    if (!v.tenant.empty()) mq::apply_setting(scratch, "MQ_TENANT", v.tenant, "--tenant");
    if (!v.key_prefix.empty())
        mq::apply_setting(scratch, "REDIS_KEY_PREFIX", v.key_prefix, "--key-prefix");
    if (!v.redis_url.empty() && v.redis_url.rfind("redis://", 0) != 0 &&
        v.redis_url.rfind("rediss://", 0) != 0)
        throw mq::ValidationError("--redis-url must start with redis:// or rediss://",
                                  {{"field", "redis_url"}});
    if (!v.database_url.empty() && v.database_url.rfind("postgresql://", 0) != 0 &&
        v.database_url.rfind("postgres://", 0) != 0 &&
        v.database_url.find('=') == std::string::npos)
        throw mq::ValidationError(
            "--database-url must be a postgresql:// URL or a libpq key=value string",
            {{"field", "database_url"}});
}

void run_set_context(ConfigOptions o, Context& ctx) {
    check_name(o.name);
    if (o.values.token == "-") {
        std::getline(std::cin, o.values.token);  // keeps the secret out of shell history
        if (o.values.token.empty())
            throw mq::ValidationError("--token -: standard input had no token");
    }
    check_values(o.values);
    const std::string path = ctx.contexts_path();
    auto file = mq::load_client_contexts(path);
    const bool existed = file.contexts.count(o.name) > 0;
    mq::ClientContext& c = file.contexts[o.name];
    for (const auto& [key, member] : mq::client_context_fields())
        if (!(o.values.*member).empty()) c.*member = o.values.*member;
    if (o.use || file.current.empty()) file.current = o.name;
    mq::save_client_contexts(path, file);
    if (ctx.json()) {
        nlohmann::json j = shown(c, false);
        j["name"] = o.name;
        j["current"] = file.current == o.name;
        print_json(j);
        return;
    }
    std::cout << (existed ? "modified" : "created") << " context \"" << o.name << "\" in " << path
              << (file.current == o.name ? " (current)" : "") << '\n';
}

void run_delete_context(const ConfigOptions& o, Context& ctx) {
    const std::string path = ctx.contexts_path();
    auto file = mq::load_client_contexts(path);
    if (!file.contexts.erase(o.name)) no_such_context(file, o.name, path);
    if (file.current == o.name) file.current.clear();
    mq::save_client_contexts(path, file);
    if (ctx.json())
        print_json({{"deleted", o.name}});
    else
        std::cout << "deleted context \"" << o.name << "\"\n";
}

void run_view(const ConfigOptions& o, Context& ctx) {
    const std::string path = ctx.contexts_path();
    const auto file = mq::load_client_contexts(path);
    nlohmann::json contexts = nlohmann::json::object();
    for (const auto& [name, c] : file.contexts) contexts[name] = shown(c, o.raw);
    nlohmann::json doc = {{"current-context", file.current}, {"contexts", contexts}};
    if (ctx.options.output == "json")
        print_json(doc);
    else  // the file's own format and order, as kubectl config view
        std::cout << to_yaml({{"current-context", file.current}})
                  << to_yaml({{"contexts", contexts}});
}

}  // namespace

void setup_config(CLI::App& app, Context& ctx) {
    auto* config = app.add_subcommand(
        "config",
        "Contexts: named environments (Redis, PostgreSQL, tenant) in ~/.config/mq/config.yaml");
    config->require_subcommand(1);

    config->add_subcommand("get-contexts", "List the contexts; * marks the current one")
        ->callback([&ctx] { run_get_contexts(ctx); });
    config->add_subcommand("current-context", "Print the current context's name")->callback([&ctx] {
        run_current_context(ctx);
    });

    auto use_opts = std::make_shared<ConfigOptions>();
    auto* use = config->add_subcommand("use-context", "Make a context the current one");
    use->add_option("name", use_opts->name, "Context name")->required();
    use->callback([use_opts, &ctx] { run_use_context(*use_opts, ctx); });

    auto set_opts = std::make_shared<ConfigOptions>();
    auto* set =
        config->add_subcommand("set-context", "Create a context or change the given fields of one");
    set->add_option("name", set_opts->name, "Context name (1-64 of A-Z a-z 0-9 . _ - @)")
        ->required();
    set->add_option("--redis-url", set_opts->values.redis_url, "Redis URL of this environment");
    set->add_option("--database-url", set_opts->values.database_url,
                    "PostgreSQL URL of this environment");
    set->add_option("-t,--tenant", set_opts->values.tenant, "Tenant to act for");
    set->add_option("--key-prefix", set_opts->values.key_prefix, "Redis key prefix (default mq:)");
    set->add_option("--api-url", set_opts->values.api_url, "mq-api base URL (for tools)");
    set->add_option("--token", set_opts->values.token,
                    "mq-api token ('-' reads it from standard input)");
    set->add_flag("--use", set_opts->use, "Also make it the current context");
    set->callback([set_opts, &ctx] { run_set_context(*set_opts, ctx); });

    auto del_opts = std::make_shared<ConfigOptions>();
    auto* del = config->add_subcommand("delete-context", "Remove a context from the file");
    del->add_option("name", del_opts->name, "Context name")->required();
    del->callback([del_opts, &ctx] { run_delete_context(*del_opts, ctx); });

    auto view_opts = std::make_shared<ConfigOptions>();
    auto* view = config->add_subcommand(
        "view", "Print the contexts file (YAML; -o json), passwords and tokens masked");
    view->add_flag("--raw", view_opts->raw, "Show passwords and tokens as stored");
    view->callback([view_opts, &ctx] { run_view(*view_opts, ctx); });
}

}  // namespace mqctl
