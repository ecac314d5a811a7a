// mqctl apply -f FILE.yaml [--dry-run] [--prune] [--adopt]: makes the subscriptions of one
// scope of a tenant match a file kept in git. The plan (create / update / unchanged /
// delete) is computed and checked in full before anything changes: an invalid file, a
// missing queue or a subscription owned by someone else stops the run with nothing applied.
//
// Subscriptions the file creates are marked managed_by "apply:<scope>"; --prune deletes
// only those. Status (active/paused) is not part of the file and apply never changes it:
// operators pause and resume at run time, and the next apply leaves that alone.
// start_from places the consumer groups when a subscription is created; changing it later
// is stored but does not move existing groups.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include "commands.hpp"
#include "mq/audit/audit_log.hpp"
#include "mq/config/schemas.hpp"
#include "mq/config/yaml_json.hpp"
#include "mq/consume/subscription.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/consume/subscription_reconciler.hpp"
#include "mq/core/input_file.hpp"
#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/error.hpp"
#include "mq/queue/catalog.hpp"
#include "mq/worker/worker_config.hpp"
#include "output.hpp"
#include "sub_lifecycle.hpp"

namespace mqctl {

struct ApplyOptions {
    std::string file;
    bool dry_run = false;
    bool prune = false;
    bool adopt = false;
};

namespace {

using nlohmann::json;

/// One subscription the file lists, converted, with where it is written.
struct Entry {
    mq::Subscription sub;
    std::string where;  ///< file:line
};

/// What the file asks for.
struct DesiredState {
    std::string tenant;
    std::string scope;
    std::string owner;  ///< "apply:<scope>"
    std::vector<Entry> entries;
};

using Action = mq::ReconcileAction;
using Step = mq::ReconcileStep;
using FieldChange = mq::SettingChange;
using mq::action_name;

// The JSON pointer (inside one entry) of a field a ValidationError of
// subscription_from_json/validate names: the flat names of to_json map back to the
// nested YAML shape.
std::string entry_pointer(const std::string& field) {
    static const std::map<std::string, std::string> kNested = {
        {"max_attempts", "/retry/max_attempts"},
        {"initial_backoff", "/retry/initial_backoff"},
        {"initial_backoff_ms", "/retry/initial_backoff"},
        {"max_backoff", "/retry/max_backoff"},
        {"max_backoff_ms", "/retry/max_backoff"},
        {"backoff_multiplier", "/retry/multiplier"},
        {"jitter", "/retry/jitter"},
        {"type", "/handler/type"},
        {"visibility_timeout_ms", "/visibility_timeout"},
        {"rate_limit_per_s", "/rate_limit"},
        {"subscription name", "/name"},
        {"queue name", "/queue"}};
    if (auto it = kNested.find(field); it != kNested.end()) return it->second;
    std::string pointer = "/" + field;
    std::replace(pointer.begin(), pointer.end(), '.', '/');  // filter.headers.x
    return pointer;
}

[[noreturn]] void invalid_at(const mq::YamlDocument& doc, const std::string& pointer,
                             const std::string& what) {
    throw mq::ValidationError(doc.where(pointer) + ": " + pointer + ": " + what,
                              {{"where", doc.where(pointer)}, {"field", pointer}});
}

std::string scope_of(const mq::YamlDocument& doc, const std::string& path) {
    if (doc.json.contains("scope")) return doc.json["scope"].get<std::string>();
    std::string scope = std::filesystem::path(path).stem().string();
    try {
        mq::validate_name("scope", scope);
    } catch (const mq::ValidationError& e) {
        throw mq::ValidationError(path + ": the scope defaults to the file's base name, but " +
                                  e.what() + "; set `scope: NAME` in the file");
    }
    return scope;
}

// Reads, schema-checks and converts the file; every error names file:line and the field.
DesiredState load_desired(const ApplyOptions& o, Context& ctx) {
    // A bounded read first: -f /dev/zero or a directory is refused, not read into memory.
    mq::YamlDocument doc = mq::parse_yaml(mq::read_input_file(o.file, "file"), o.file);
    if (doc.json.is_null()) doc.json = json::object();
    static const json schema = json::parse(mq::embedded_schema("subscriptions.schema.json"));
    mq::validate_schema(doc, schema);

    DesiredState d;
    d.scope = scope_of(doc, o.file);
    d.owner = mq::apply_owner(d.scope);
    if (doc.json.contains("tenant")) {
        d.tenant = doc.json["tenant"].get<std::string>();
        if (!ctx.options.tenant.empty() && ctx.options.tenant != d.tenant)
            invalid_at(doc, "/tenant",
                       "the file is for tenant '" + d.tenant + "' but --tenant says '" +
                           ctx.options.tenant + "'; drop one of them");
    } else {
        d.tenant = ctx.tenant();
    }

    std::map<std::pair<std::string, std::string>, std::string> seen;  // (queue, name) -> where
    const json& list = doc.json["subscriptions"];
    for (std::size_t i = 0; i < list.size(); ++i) {
        const std::string pointer = "/subscriptions/" + std::to_string(i);
        Entry e;
        e.where = doc.where(pointer);
        try {
            e.sub = mq::subscription_from_yaml_entry(list[i]);
            e.sub.tenant = d.tenant;
            e.sub.managed_by = d.owner;
            mq::validate(e.sub);
        } catch (const mq::ValidationError& err) {
            invalid_at(doc, pointer + entry_pointer(err.details().value("field", "")), err.what());
        }
        try {
            validate_handler_for_type(e.sub);
        } catch (const mq::ValidationError& err) {
            const std::string field = err.details().value("field", "");
            invalid_at(doc, pointer + "/handler" + (field.empty() ? "" : "/" + field), err.what());
        }
        auto [it, fresh] = seen.emplace(std::make_pair(e.sub.queue, e.sub.name), e.where);
        if (!fresh)
            invalid_at(doc, pointer + "/name",
                       "subscription " + e.sub.queue + "/" + e.sub.name +
                           " is listed twice (first at " + it->second + ")");
        d.entries.push_back(std::move(e));
    }
    return d;
}

bool is_secret(const std::string& field) { return field.find("secret") != std::string::npos; }

// "5s" for the *_ms fields, strings as written, secrets never.
std::string value_text(const std::string& field, const json& v) {
    if (v.is_null()) return "(none)";
    if (is_secret(field)) return "(secret)";
    if (field.size() > 3 && field.compare(field.size() - 3, 3, "_ms") == 0 && v.is_number_integer())
        return mq::format_duration(std::chrono::milliseconds(v.get<std::int64_t>()));
    if (v.is_string()) return v.get<std::string>();
    return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string field_text(const std::string& field) {
    if (field.size() > 3 && field.compare(field.size() - 3, 3, "_ms") == 0)
        return field.substr(0, field.size() - 3);
    return field;
}

std::string change_text(const FieldChange& c) {
    if (is_secret(c.field) && !c.from.is_null() && !c.to.is_null())
        return field_text(c.field) + " changed";
    return field_text(c.field) + " " + value_text(c.field, c.from) + " -> " +
           value_text(c.field, c.to);
}

// The steps that make the database match `d` (the one reconciler in common/). Throws, with
// nothing changed, when a queue is missing or a listed subscription belongs to someone else.
mq::ReconcilePlan make_plan(const DesiredState& d, const ApplyOptions& o, Context& ctx) {
    mq::SubscriptionDeclaration decl;
    decl.tenant = d.tenant;
    decl.owner = d.owner;
    decl.prune = o.prune;
    decl.adopt = o.adopt;
    // A dry run shows the whole plan, conflicts and missing queues marked on their steps
    // (exit 0); a real run stops before changing anything (exit 4, or 3 for a queue).
    decl.report_conflicts = o.dry_run;
    for (const auto& e : d.entries) decl.entries.push_back({e.sub, e.where});
    decl.conflict_hint = [scope = d.scope](std::size_t n) {
        return "Use --adopt to take " + std::string(n == 1 ? "it" : "them") + " over for scope '" +
               scope + "'";
    };
    return mq::SubscriptionReconciler(ctx.db()).plan(decl);
}

std::string plan_line(const Step& s) {
    const std::string id = s.sub.queue + "/" + s.sub.name;
    if (!s.blocked.empty())
        return "! conflict " + std::string(action_name(s.action)) + " " + id + ": " + s.blocked;
    switch (s.action) {
        case Action::kCreate:
            return "+ create " + id + " (" + s.sub.type + ")";
        case Action::kUnchanged:
            return "= unchanged " + id;
        case Action::kDelete:
            return "- delete " + id;
        case Action::kUpdate: {
            std::string line = "~ update " + id + ":";
            for (std::size_t i = 0; i < s.changes.size(); ++i)
                line += (i == 0 ? " " : ", ") + change_text(s.changes[i]);
            return line;
        }
    }
    return {};
}

json plan_json(const Step& s) {
    json changes = json::array();
    for (const auto& c : s.changes) {
        const bool hide = is_secret(c.field);
        changes.push_back({{"field", c.field},
                           {"from", hide && !c.from.is_null() ? json("(secret)") : c.from},
                           {"to", hide && !c.to.is_null() ? json("(secret)") : c.to}});
    }
    return {{"action", action_name(s.action)},
            {"queue", s.sub.queue},
            {"name", s.sub.name},
            {"where", s.where.empty() ? json() : json(s.where)},
            {"changes", changes},
            {"conflict", s.blocked.empty() ? json() : json(s.blocked)}};
}

// The plan as people read it, or as JSON/YAML for scripts; `applied` says whether it was
// carried out.
void print_plan(const ApplyOptions& o, const DesiredState& d, const mq::ReconcilePlan& reconcile,
                bool applied, bool structured) {
    const std::vector<Step>& plan = reconcile.steps;
    std::map<Action, int> count;
    for (const auto& s : plan) ++count[s.action];
    const int changes = reconcile.changes();
    const int blocked = reconcile.blocked();
    if (structured) {
        json steps = json::array();
        for (const auto& s : plan) steps.push_back(plan_json(s));
        print_json({{"file", o.file},
                    {"tenant", d.tenant},
                    {"scope", d.scope},
                    {"dry_run", o.dry_run},
                    {"applied", applied},
                    {"conflicts", blocked},
                    {"plan", steps},
                    {"summary",
                     {{"create", count[Action::kCreate]},
                      {"update", count[Action::kUpdate]},
                      {"delete", count[Action::kDelete]},
                      {"unchanged", count[Action::kUnchanged]}}}});
        return;
    }
    std::cout << "apply " << o.file << " (tenant " << d.tenant << ", scope " << d.scope << ")"
              << (o.dry_run ? ", dry run" : "") << '\n';
    for (const auto& s : plan) std::cout << plan_line(s) << '\n';
    if (changes == 0) {
        std::cout << "no changes (" << count[Action::kUnchanged] << " unchanged)\n";
    } else if (o.dry_run) {
        std::cout << "dry run, nothing applied: " << count[Action::kCreate] << " to create, "
                  << count[Action::kUpdate] << " to update, " << count[Action::kDelete]
                  << " to delete, " << count[Action::kUnchanged] << " unchanged";
        if (blocked > 0)
            std::cout << "; " << blocked
                      << " conflict(s) marked '!' would stop a real apply (exit 4)";
        std::cout << '\n';
    } else {
        std::cout << count[Action::kCreate] << " created, " << count[Action::kUpdate]
                  << " updated, " << count[Action::kDelete] << " deleted, "
                  << count[Action::kUnchanged] << " unchanged\n";
    }
}

}  // namespace

void run_apply(const ApplyOptions& o, Context& ctx) {
    // Changes made by a declaration file are recorded as "apply" (docs/audit.md).
    mq::audit::ActingAs acting({mq::audit::os_user(), "", "apply", ""});
    const DesiredState d = load_desired(o, ctx);  // before connecting: a bad file is exit 2
    const mq::ReconcilePlan reconcile = make_plan(d, o, ctx);
    const int changes = reconcile.changes();

    if (changes > 0 && !o.dry_run) {
        // Redis down: change nothing rather than leave groups or workers behind
        auto& redis = ctx.redis();
        try {
            mq::SubscriptionReconciler(ctx.db()).apply(reconcile, redis, ctx.keys());
        } catch (const mq::Error& e) {
            // Each step is whole on its own (a create that fails removes its row), so the
            // same apply picks up where this one stopped.
            throw mq::Error(e.code(),
                            std::string(e.what()) +
                                "; the steps before it were applied: run mqctl apply -f " + o.file +
                                " again to finish it",
                            e.details());
        }
    }

    print_plan(o, d, reconcile, changes > 0 && !o.dry_run, ctx.json());
}

void setup_apply(CLI::App& app, Context& ctx) {
    auto o = std::make_shared<ApplyOptions>();
    auto* cmd = app.add_subcommand(
        "apply",
        "Make the subscriptions of a file's scope match the file (create, update, and with --prune "
        "delete); status (paused/active) is left to operators");
    cmd->add_option("-f,--filename", o->file, "YAML file (schemas/subscriptions.schema.json)")
        ->required();
    cmd->add_flag("--dry-run", o->dry_run, "Print the plan, change nothing");
    cmd->add_flag("--prune", o->prune,
                  "Delete subscriptions of this scope (managed_by apply:SCOPE) that the file no "
                  "longer lists");
    cmd->add_flag("--adopt", o->adopt,
                  "Take over listed subscriptions that exist but belong to another scope, a worker "
                  "or nobody");
    cmd->callback([o, &ctx] { run_apply(*o, ctx); });
}

}  // namespace mqctl
