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
#include "mq/config/schemas.hpp"
#include "mq/config/yaml_json.hpp"
#include "mq/consume/subscription.hpp"
#include "mq/consume/subscription_catalog.hpp"
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

struct FieldChange {
    std::string field;  ///< "max_attempts", "handler.url"
    json from;
    json to;
};

enum class Action { kCreate, kUpdate, kUnchanged, kDelete };

/// One line of the plan.
struct Step {
    Action action;
    mq::Subscription sub;  ///< the desired state; for kDelete the stored one
    std::string where;     ///< file:line, empty for kDelete
    std::vector<FieldChange> changes;
};

const char* action_name(Action a) {
    switch (a) {
        case Action::kCreate:
            return "create";
        case Action::kUpdate:
            return "update";
        case Action::kUnchanged:
            return "unchanged";
        case Action::kDelete:
            return "delete";
    }
    return "?";
}

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
    mq::YamlDocument doc = mq::load_yaml(o.file);
    if (doc.json.is_null()) doc.json = json::object();
    static const json schema = json::parse(mq::embedded_schema("subscriptions.schema.json"));
    mq::validate_schema(doc, schema);

    DesiredState d;
    d.scope = scope_of(doc, o.file);
    d.owner = "apply:" + d.scope;
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

// The settings apply manages: everything but identity, timestamps, status and owner.
json managed_settings(const mq::Subscription& s) {
    json j = mq::to_json(s);
    for (const char* k : {"id", "tenant", "created_at", "updated_at", "status", "managed_by"})
        j.erase(k);
    return j;
}

void diff_into(const std::string& prefix, const json& from, const json& to,
               std::vector<FieldChange>& out) {
    if (from.is_object() && to.is_object()) {
        std::set<std::string> keys;
        for (const auto& [k, v] : from.items()) keys.insert(k);
        for (const auto& [k, v] : to.items()) keys.insert(k);
        for (const auto& k : keys) {
            const json none;
            diff_into(prefix.empty() ? k : prefix + "." + k, from.contains(k) ? from[k] : none,
                      to.contains(k) ? to[k] : none, out);
        }
        return;
    }
    if (from != to) out.push_back({prefix, from, to});
}

std::vector<FieldChange> differences(const mq::Subscription& stored,
                                     const mq::Subscription& wanted) {
    std::vector<FieldChange> out;
    diff_into("", managed_settings(stored), managed_settings(wanted), out);
    return out;
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

std::string owner_text(const std::string& managed_by) {
    return managed_by.empty() ? "nobody (made by hand or through the API)" : "'" + managed_by + "'";
}

// The steps that make the database match `d`. Throws, with nothing changed, when a queue is
// missing (every one is named) or a listed subscription belongs to someone else.
std::vector<Step> make_plan(const DesiredState& d, const ApplyOptions& o, Context& ctx,
                            std::map<std::string, mq::Queue>& queues) {
    mq::Catalog catalog(ctx.db());
    std::vector<std::string> missing;
    for (const auto& e : d.entries) {
        if (queues.count(e.sub.queue)) continue;
        if (auto q = catalog.find_queue(d.tenant, e.sub.queue))
            queues.emplace(e.sub.queue, *q);
        else if (std::find(missing.begin(), missing.end(), e.sub.queue) == missing.end())
            missing.push_back(e.sub.queue);
    }
    if (!missing.empty()) {
        std::string names, where;
        for (const auto& q : missing) names += (names.empty() ? "'" : ", '") + q + "'";
        for (const auto& e : d.entries)
            if (std::find(missing.begin(), missing.end(), e.sub.queue) != missing.end()) {
                where = e.where;
                break;
            }
        throw mq::Error(mq::ErrorCode::kQueueNotFound,
                        where + ": queue " + names + " not found in tenant '" + d.tenant +
                            "'; nothing was applied. Create it first: mqctl queue create " +
                            missing.front(),
                        {{"queues", missing}, {"tenant", d.tenant}});
    }

    std::map<std::pair<std::string, std::string>, mq::Subscription> stored;
    for (auto& s : mq::SubscriptionCatalog(ctx.db()).list(d.tenant))
        if (!mq::is_cross_tenant(s))  // files name the tenant's own queues only
            stored.emplace(std::make_pair(s.queue, s.name), s);

    std::vector<Step> plan;
    std::vector<std::string> conflicts;
    std::set<std::pair<std::string, std::string>> listed;
    for (const auto& e : d.entries) {
        const auto key = std::make_pair(e.sub.queue, e.sub.name);
        listed.insert(key);
        auto it = stored.find(key);
        if (it == stored.end()) {
            plan.push_back({Action::kCreate, e.sub, e.where, {}});
            continue;
        }
        const mq::Subscription& have = it->second;
        mq::Subscription want = e.sub;
        want.id = have.id;
        want.status = have.status;  // operators pause at run time; apply leaves it
        want.created_at = have.created_at;
        Step step{Action::kUnchanged, want, e.where, differences(have, want)};
        if (have.managed_by != d.owner) {
            if (!o.adopt)
                conflicts.push_back(e.where + ": " + e.sub.queue + "/" + e.sub.name +
                                    " is owned by " + owner_text(have.managed_by));
            step.changes.push_back(
                {"managed_by", have.managed_by.empty() ? json() : json(have.managed_by), d.owner});
        }
        if (!step.changes.empty()) step.action = Action::kUpdate;
        plan.push_back(std::move(step));
    }
    if (!conflicts.empty()) {
        std::string text;
        for (const auto& c : conflicts) text += (text.empty() ? "" : "; ") + c;
        throw mq::Error(mq::ErrorCode::kConflict,
                        text + "; nothing was applied. Use --adopt to take " +
                            (conflicts.size() == 1 ? "it" : "them") + " over for scope '" +
                            d.scope + "'",
                        {{"conflicts", conflicts}});
    }
    if (o.prune)
        for (const auto& [key, s] : stored)
            if (s.managed_by == d.owner && !listed.count(key))
                plan.push_back({Action::kDelete, s, "", {}});
    return plan;
}

std::string plan_line(const Step& s) {
    const std::string id = s.sub.queue + "/" + s.sub.name;
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
            {"changes", changes}};
}

// Creates, updates and deletes in plan order, telling the workers after each change.
void carry_out(const std::vector<Step>& plan, const std::map<std::string, mq::Queue>& queues,
               Context& ctx) {
    mq::SubscriptionCatalog subs(ctx.db());
    for (const auto& s : plan) {
        const std::string id = s.sub.queue + "/" + s.sub.name;
        if (s.action == Action::kCreate) {
            auto created = create_subscription(ctx, queues.at(s.sub.queue), s.sub).subscription;
            tell_workers(ctx, "changed", created, "created subscription " + id);
        } else if (s.action == Action::kUpdate) {
            auto updated = subs.update(s.sub);
            tell_workers(ctx, "changed", updated, "updated subscription " + id);
        } else if (s.action == Action::kDelete) {
            delete_subscription(ctx, s.sub);
            tell_workers(ctx, "deleted", s.sub, "deleted subscription " + id);
        }
    }
}

}  // namespace

void run_apply(const ApplyOptions& o, Context& ctx) {
    const DesiredState d = load_desired(o, ctx);  // before connecting: a bad file is exit 2
    std::map<std::string, mq::Queue> queues;
    const std::vector<Step> plan = make_plan(d, o, ctx, queues);

    std::map<Action, int> count;
    for (const auto& s : plan) ++count[s.action];
    const int changes = count[Action::kCreate] + count[Action::kUpdate] + count[Action::kDelete];

    if (changes > 0 && !o.dry_run) {
        ctx.redis();  // Redis down: change nothing rather than leave groups or workers behind
        try {
            carry_out(plan, queues, ctx);
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

    if (ctx.json()) {
        json steps = json::array();
        for (const auto& s : plan) steps.push_back(plan_json(s));
        print_json({{"file", o.file},
                    {"tenant", d.tenant},
                    {"scope", d.scope},
                    {"dry_run", o.dry_run},
                    {"applied", changes > 0 && !o.dry_run},
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
                  << " to delete, " << count[Action::kUnchanged] << " unchanged\n";
    } else {
        std::cout << count[Action::kCreate] << " created, " << count[Action::kUpdate]
                  << " updated, " << count[Action::kDelete] << " deleted, "
                  << count[Action::kUnchanged] << " unchanged\n";
    }
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
