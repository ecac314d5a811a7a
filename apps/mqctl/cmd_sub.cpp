// mqctl sub create|list|show|update|delete|pause|resume: subscriptions are a row in
// PostgreSQL plus a consumer group of the same name on every partition stream. mqctl
// keeps the two in step and tells running workers on the control channel.
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "confirm.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/consume/control.hpp"
#include "mq/consume/subscription.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/core/json.hpp"
#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/deliver/exec.hpp"
#include "mq/deliver/webhook.hpp"
#include "mq/queue/catalog.hpp"
#include "mq/queue/inspector.hpp"
#include "output.hpp"
#include "sub_lifecycle.hpp"

namespace mqctl {

/// Flags of every `sub` command; settings are optional so `update` changes only those
/// given.
struct SubOptions {
    std::string queue;
    std::string name;
    std::optional<std::string> type;
    std::optional<std::string> url;
    std::optional<std::string> command;
    std::optional<std::string> handler;
    std::optional<std::string> from;
    std::optional<int> max_attempts;
    std::optional<std::string> initial_backoff;
    std::optional<std::string> max_backoff;
    std::optional<double> multiplier;
    std::optional<double> jitter;
    std::optional<std::string> visibility_timeout;
    bool dead_letter = false;
    bool no_dead_letter = false;
    std::optional<std::string> filter;
    bool no_filter = false;
    std::optional<int> concurrency;
    std::optional<int> batch_size;
    std::optional<double> rate_limit;
    bool no_rate_limit = false;
    std::optional<std::string> description;
    bool confirm_handler = false;
    bool yes = false;
};

namespace {

nlohmann::json parse_json_flag(const std::string& flag, const std::string& text) {
    return mq::parse_json(text, flag);  // bounded depth; errors name the flag
}

// --type/--url/--command/--handler. --url implies a webhook and --command an exec
// handler; a handler of another kind starts from empty settings rather than keeping
// fields that mean nothing to the new kind.
void apply_handler_flags(const SubOptions& o, mq::Subscription& s) {
    if (o.url && o.command)
        throw mq::ValidationError("give --url (webhook) or --command (exec), not both");
    const std::string type = o.type.value_or(o.url ? "webhook" : o.command ? "exec" : s.type);
    if (o.url && type != "webhook")
        throw mq::ValidationError("--url is for webhook subscriptions, not --type " + type);
    if (o.command && type != "exec")
        throw mq::ValidationError("--command is for exec subscriptions, not --type " + type);
    if (o.handler) {
        s.handler = parse_json_flag("--handler", *o.handler);
        if (!s.handler.is_object())
            throw mq::ValidationError(
                "--handler must be a JSON object, e.g. {\"url\": \"https://...\"}",
                {{"field", "--handler"}});
    } else if (type != s.type) {
        s.handler = nlohmann::json::object();
    }
    if (o.url) s.handler["url"] = *o.url;
    if (o.command) s.handler["command"] = *o.command;
    s.type = type;
}

// Applies the flags that were given; returns whether any was.
bool apply_flags(const SubOptions& o, mq::Subscription& s) {
    bool changed = false;
    auto take = [&changed](auto& field, auto value) {
        field = std::move(value);
        changed = true;
    };
    auto both = [](bool a, bool b, const char* yes, const char* no) {
        if (a && b)
            throw mq::ValidationError(std::string("give ") + yes + " or " + no + ", not both");
    };
    both(o.dead_letter, o.no_dead_letter, "--dead-letter", "--no-dead-letter");
    both(o.filter.has_value(), o.no_filter, "--filter", "--no-filter");
    both(o.rate_limit.has_value(), o.no_rate_limit, "--rate-limit", "--no-rate-limit");

    if (o.type || o.url || o.command || o.handler) {
        apply_handler_flags(o, s);
        changed = true;
    }
    if (o.from) take(s.start_from, *o.from);
    if (o.max_attempts) take(s.retry.max_attempts, *o.max_attempts);
    if (o.initial_backoff)
        take(s.retry.initial_backoff, mq::parse_duration(*o.initial_backoff, "--initial-backoff"));
    if (o.max_backoff)
        take(s.retry.max_backoff, mq::parse_duration(*o.max_backoff, "--max-backoff"));
    if (o.multiplier) take(s.retry.multiplier, *o.multiplier);
    if (o.jitter) take(s.retry.jitter, *o.jitter);
    if (o.visibility_timeout)
        take(s.visibility_timeout,
             mq::parse_duration(*o.visibility_timeout, "--visibility-timeout"));
    if (o.dead_letter) take(s.dead_letter, true);
    if (o.no_dead_letter) take(s.dead_letter, false);
    if (o.filter) take(s.filter, parse_json_flag("--filter", *o.filter));
    if (o.no_filter) take(s.filter, nlohmann::json());
    if (o.concurrency) take(s.concurrency, *o.concurrency);
    if (o.batch_size) take(s.batch_size, *o.batch_size);
    if (o.rate_limit) take(s.rate_limit_per_s, std::optional<double>(*o.rate_limit));
    if (o.no_rate_limit) take(s.rate_limit_per_s, std::optional<double>());
    if (o.description) take(s.description, *o.description);
    return changed;
}

void validate_names(const SubOptions& o) {
    mq::validate_name("queue name", o.queue);
    mq::validate_name("subscription name", o.name);
}

std::string target_text(const mq::Subscription& s) {
    if (s.type == "webhook" && s.handler.contains("url") && s.handler["url"].is_string())
        return s.handler["url"].get<std::string>();
    if (s.type == "exec" && s.handler.contains("command")) {
        const auto& c = s.handler["command"];
        if (c.is_string()) return c.get<std::string>();
        std::string out;
        for (const auto& a : c)
            out += (out.empty() ? "" : " ") + (a.is_string() ? a.get<std::string>() : a.dump());
        return out;
    }
    return "-";
}

std::string number_text(double v) {
    std::ostringstream ss;
    ss << v;
    return ss.str();
}

std::string retry_text(const mq::RetryPolicy& r) {
    return std::to_string(r.max_attempts) + " attempt(s), backoff " +
           mq::format_duration(r.initial_backoff) + " x" + number_text(r.multiplier) + " up to " +
           mq::format_duration(r.max_backoff) + ", jitter " + number_text(r.jitter * 100) + "%";
}

std::vector<std::pair<std::string, std::string>> settings_fields(const mq::Subscription& s) {
    return {
        {"name", s.name},
        {"queue", s.queue},
        {"queue tenant", mq::queue_owner(s)},
        {"tenant", s.tenant},
        {"type", s.type},
        {"handler", s.handler.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)},
        {"status", s.status},
        {"start from", s.start_from},
        {"retry", retry_text(s.retry)},
        {"visibility timeout", mq::format_duration(s.visibility_timeout)},
        {"dead letters", s.dead_letter ? "yes" : "no (dropped after the last attempt)"},
        {"filter", s.filter.is_null() ? "-" : s.filter.dump()},
        {"concurrency", std::to_string(s.concurrency)},
        {"batch size", std::to_string(s.batch_size)},
        {"rate limit", s.rate_limit_per_s ? number_text(*s.rate_limit_per_s) + "/s" : "unlimited"},
        {"description", s.description},
        {"managed by", s.managed_by.empty() ? "-" : s.managed_by},
        {"handler set by", s.origin + (s.created_by.empty() ? "" : " (" + s.created_by + ")")},
        {"created", s.created_at},
        {"updated", s.updated_at}};
}

void print_subscription(const mq::Subscription& s, Context& ctx) {
    if (ctx.json())
        print_json(mq::to_json(s));
    else
        print_fields(settings_fields(s));
}

}  // namespace

void run_sub_create(const SubOptions& o, Context& ctx) {
    mq::Subscription s;
    s.tenant = ctx.tenant();
    s.queue = o.queue;
    s.name = o.name;
    s.visibility_timeout = ctx.config().consumer_timeout;  // CONSUMER_TIMEOUT
    s.origin = mq::kOriginOperator;  // mqctl has database access: an operator's tool
    s.created_by = "mqctl";
    apply_flags(o, s);
    validate_names(o);
    mq::validate(s);  // before connecting: a bad flag is a usage error, not a backend one
    validate_handler_for_type(s);

    mq::Catalog catalog(ctx.db());
    mq::Queue q = catalog.get_queue(ctx.tenant(), o.queue);
    mq::SubscriptionCatalog subs(ctx.db());
    if (subs.find(ctx.tenant(), o.queue, o.name))
        throw mq::Error(mq::ErrorCode::kConflict,
                        "queue '" + o.queue + "' already has a subscription named '" + o.name +
                            "'; change it with: mqctl sub update " + o.queue + " " + o.name,
                        {{"queue", o.queue}, {"subscription", o.name}});
    auto [created, new_groups] = create_subscription(ctx, q, s);
    tell_workers(ctx, "changed", created, "created subscription " + created.name);
    if (!ctx.json())
        std::cout << "created subscription " << created.name << " on queue " << q.name
                  << " (consumer group on " << q.partition_count << " partition(s), " << new_groups
                  << " new, reading from " << created.start_from << ")\n";
    print_subscription(created, ctx);
}

void run_sub_list(const SubOptions& o, Context& ctx) {
    if (!o.queue.empty()) {
        mq::validate_name("queue name", o.queue);
        // An unknown queue is exit 3, not an empty list.
        mq::Catalog(ctx.db()).get_queue(ctx.tenant(), o.queue);
    }
    auto list = mq::SubscriptionCatalog(ctx.db()).list(ctx.tenant(), o.queue);
    if (ctx.json()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& s : list) out.push_back(mq::to_json(s));
        print_json(out);
        return;
    }
    Table t({"QUEUE", "NAME", "TYPE", "STATUS", "TARGET", "ATTEMPTS", "VISIBILITY", "DESCRIPTION"});
    for (const auto& s : list)
        t.add({mq::is_cross_tenant(s) ? mq::queue_owner(s) + "/" + s.queue : s.queue, s.name,
               s.type, s.status, target_text(s), std::to_string(s.retry.max_attempts),
               mq::format_duration(s.visibility_timeout), s.description});
    t.print();
}

void run_sub_show(const SubOptions& o, Context& ctx) {
    validate_names(o);
    mq::Catalog catalog(ctx.db());
    mq::Queue q = catalog.get_queue(ctx.tenant(), o.queue);
    mq::Subscription s = mq::SubscriptionCatalog(ctx.db()).get(ctx.tenant(), o.queue, o.name);
    const mq::QueueFigures figures = mq::QueueInspector(ctx.redis(), ctx.keys()).inspect(q);
    const auto& parts = figures.partitions;

    // The subscription's group on each partition; missing means the group is gone
    // (deleted by hand, or a partition added after the subscription was created).
    std::vector<std::optional<mq::GroupFigures>> groups;
    for (const auto& p : parts) {
        std::optional<mq::GroupFigures> g;
        for (const auto& candidate : p.groups)
            if (candidate.name == s.name) g = candidate;
        groups.push_back(g);
    }
    // Summed by the inspector; Redis cannot tell the lag after some trims and deletions.
    const mq::SubscriptionFigures none;
    const mq::SubscriptionFigures* totals = figures.subscription(s.name);
    if (!totals) totals = &none;
    const std::int64_t pending = totals->pending, lag_sum = totals->lag;
    const bool lag_known = totals->lag_known;
    auto opt = [](const std::optional<std::int64_t>& v) {
        return v ? nlohmann::json(*v) : nlohmann::json();
    };

    if (ctx.json()) {
        nlohmann::json j = mq::to_json(s);
        nlohmann::json jp = nlohmann::json::array();
        for (std::size_t i = 0; i < parts.size(); ++i) {
            const auto& g = groups[i];
            jp.push_back({{"partition", parts[i].partition},
                          {"group", g.has_value()},
                          {"pending", g ? nlohmann::json(g->pending) : nlohmann::json()},
                          {"lag", g ? opt(g->lag) : nlohmann::json()},
                          {"consumers", g ? nlohmann::json(g->consumers) : nlohmann::json()},
                          {"last_delivered_id",
                           g ? nlohmann::json(g->last_delivered_id) : nlohmann::json()}});
        }
        j["pending"] = pending;
        j["lag"] = lag_known ? nlohmann::json(lag_sum) : nlohmann::json();
        j["backlog"] = totals->backlog;
        j["partitions"] = jp;
        print_json(j);
        return;
    }
    auto fields = settings_fields(s);
    fields.emplace_back("pending", std::to_string(pending));
    fields.emplace_back("lag", lag_known ? std::to_string(lag_sum) : "unknown");
    fields.emplace_back("backlog", std::to_string(totals->backlog));
    print_fields(fields);
    std::cout << '\n';
    Table t({"PARTITION", "PENDING", "LAG", "CONSUMERS", "LAST DELIVERED"});
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const auto& g = groups[i];
        if (!g) {
            t.add({std::to_string(parts[i].partition), "-", "-", "-", "(no consumer group)"});
            continue;
        }
        t.add({std::to_string(parts[i].partition), std::to_string(g->pending),
               g->lag ? std::to_string(*g->lag) : "unknown", std::to_string(g->consumers),
               g->last_delivered_id});
    }
    t.print();
}

void run_sub_update(const SubOptions& o, Context& ctx) {
    if (o.from)
        throw mq::ValidationError(
            "--from applies only when a subscription is created (it places the consumer groups); "
            "to start over, delete and create the subscription");
    validate_names(o);
    mq::SubscriptionCatalog subs(ctx.db());
    mq::Subscription s = subs.get(ctx.tenant(), o.queue, o.name);
    if (!apply_flags(o, s) && !o.confirm_handler)
        throw mq::ValidationError(
            "nothing to update: give a setting such as --url, --max-attempts, "
            "--visibility-timeout, "
            "--filter or --description");
    // Recorded as the operator's when the handler changes, or when confirmed as it is.
    s.origin = mq::kOriginOperator;
    s.created_by = "mqctl";
    mq::validate(s);
    validate_handler_for_type(s);
    ctx.redis();  // Redis down: change nothing rather than leave workers uninformed
    mq::Subscription updated = subs.update(s, o.confirm_handler);
    tell_workers(ctx, "changed", updated, "updated subscription " + updated.name);
    if (!ctx.json())
        std::cout << "updated subscription " << updated.name << " on queue " << updated.queue
                  << '\n';
    print_subscription(updated, ctx);
}

void run_sub_delete(const SubOptions& o, Context& ctx) {
    validate_names(o);
    mq::SubscriptionCatalog subs(ctx.db());
    mq::Subscription s = subs.get(ctx.tenant(), o.queue, o.name);  // not found before asking
    confirm("Delete subscription '" + o.name + "' of queue '" + o.queue +
                "'? Its consumer groups and their pending entries are removed.",
            o.yes);
    auto q = delete_subscription(ctx, s);
    tell_workers(ctx, "deleted", s, "deleted subscription " + s.name);
    if (ctx.json())
        print_json(
            {{"deleted", s.name}, {"queue", s.queue}, {"partitions", q ? q->partition_count : 0}});
    else
        std::cout << "deleted subscription " << s.name << " of queue " << s.queue << '\n';
}

void run_sub_status(const SubOptions& o, Context& ctx, const std::string& status) {
    validate_names(o);
    mq::SubscriptionCatalog subs(ctx.db());
    subs.get(ctx.tenant(), o.queue, o.name);  // unknown: exit 3 even with Redis down
    ctx.redis();                              // Redis down: change nothing
    mq::Subscription s = subs.set_status(ctx.tenant(), o.queue, o.name, status);
    const std::string event = status == "paused" ? "pause" : "resume";
    tell_workers(ctx, event, s, "subscription " + s.name + " is " + status + " in PostgreSQL");
    if (ctx.json())
        print_json(mq::to_json(s));
    else
        std::cout << "subscription " << s.name << " on queue " << s.queue << ": " << s.status
                  << '\n';
}

void setup_sub(CLI::App& app, Context& ctx) {
    auto* sub =
        app.add_subcommand("sub", "Create, inspect, change, pause and remove subscriptions");
    sub->require_subcommand(1);
    auto add_names = [](CLI::App* cmd, SubOptions& o) {
        cmd->add_option("queue", o.queue, "Queue name")->required();
        cmd->add_option("name", o.name, "Subscription name (its consumer group)")->required();
    };
    auto add_settings = [](CLI::App* cmd, SubOptions& o) {
        cmd->add_option("--type", o.type,
                        "pull, webhook or exec (default pull; --url/--command imply it)");
        cmd->add_option("--url", o.url, "Webhook URL: sets the handler's url and type webhook");
        cmd->add_option("--command", o.command, "Command run per message (exec): sets type exec");
        cmd->add_option(
            "--handler", o.handler,
            "Handler settings as JSON, e.g. {\"url\":\"https://..\",\"timeout\":\"5s\"}");
        cmd->add_option("--from", o.from,
                        "Where the new consumer groups start: earliest or latest (default)");
        cmd->add_option("--max-attempts", o.max_attempts,
                        "Deliveries in all before dead-lettering (default 5)");
        cmd->add_option("--initial-backoff", o.initial_backoff,
                        "Pause before the first retry (default 1s)");
        cmd->add_option("--max-backoff", o.max_backoff,
                        "Longest pause between retries (default 5m)");
        cmd->add_option("--multiplier", o.multiplier, "Backoff growth per retry (default 2)");
        cmd->add_option("--jitter", o.jitter, "Random spread of each pause, 0-1 (default 0.2)");
        cmd->add_option("--visibility-timeout", o.visibility_timeout,
                        "Take a message back from a silent consumer after this long (default "
                        "CONSUMER_TIMEOUT)");
        cmd->add_flag("--no-dead-letter", o.no_dead_letter, "Drop messages after the last attempt");
        cmd->add_option("--filter", o.filter,
                        "Deliver only matching messages: {\"headers\":{\"name\":\"value\"}}");
        cmd->add_option("--concurrency", o.concurrency,
                        "Messages handled at once per worker (default 1)");
        cmd->add_option("--batch-size", o.batch_size, "Messages fetched per read (default 10)");
        cmd->add_option("--rate-limit", o.rate_limit, "Deliveries per second at most");
        cmd->add_option("--description", o.description, "Free text");
    };

    auto create_opts = std::make_shared<SubOptions>();
    auto* create = sub->add_subcommand("create", "Create a subscription and its consumer groups");
    add_names(create, *create_opts);
    add_settings(create, *create_opts);
    create->callback([create_opts, &ctx] { run_sub_create(*create_opts, ctx); });

    auto list_opts = std::make_shared<SubOptions>();
    auto* list = sub->add_subcommand("list", "List subscriptions (of one queue, or all)");
    list->add_option("queue", list_opts->queue, "Queue name");
    list->callback([list_opts, &ctx] { run_sub_list(*list_opts, ctx); });

    auto show_opts = std::make_shared<SubOptions>();
    auto* show = sub->add_subcommand(
        "show", "Show a subscription's settings and its pending and lag per partition");
    add_names(show, *show_opts);
    show->callback([show_opts, &ctx] { run_sub_show(*show_opts, ctx); });

    auto update_opts = std::make_shared<SubOptions>();
    auto* update = sub->add_subcommand("update", "Change the given settings of a subscription");
    add_names(update, *update_opts);
    add_settings(update, *update_opts);
    update->add_flag("--dead-letter", update_opts->dead_letter,
                     "Dead-letter messages after the last attempt");
    update->add_flag("--no-filter", update_opts->no_filter, "Deliver every message");
    update->add_flag("--no-rate-limit", update_opts->no_rate_limit, "Remove the rate limit");
    update->add_flag("--confirm-handler", update_opts->confirm_handler,
                     "Record the handler as set by an operator, as it is: lets workers with "
                     "--allow-operator-handlers run an exec or log-to-file subscription made "
                     "through the API or before migration 008 (read it first: mqctl sub show)");
    update->callback([update_opts, &ctx] { run_sub_update(*update_opts, ctx); });

    auto delete_opts = std::make_shared<SubOptions>();
    auto* del = sub->add_subcommand("delete", "Delete a subscription and its consumer groups");
    add_names(del, *delete_opts);
    del->add_flag("-y,--yes", delete_opts->yes, "Do not ask for confirmation");
    del->callback([delete_opts, &ctx] { run_sub_delete(*delete_opts, ctx); });

    auto pause_opts = std::make_shared<SubOptions>();
    auto* pause =
        sub->add_subcommand("pause", "Stop deliveries; messages keep arriving in its groups");
    add_names(pause, *pause_opts);
    pause->callback([pause_opts, &ctx] { run_sub_status(*pause_opts, ctx, "paused"); });

    auto resume_opts = std::make_shared<SubOptions>();
    auto* resume = sub->add_subcommand("resume", "Start deliveries again");
    add_names(resume, *resume_opts);
    resume->callback([resume_opts, &ctx] { run_sub_status(*resume_opts, ctx, "active"); });
}

}  // namespace mqctl
