#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "confirm.hpp"
#include "mq/config/yaml_loader.hpp"
#include "mq/consume/queue_update.hpp"
#include "mq/core/input_file.hpp"
#include "mq/core/json.hpp"
#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/queue/catalog.hpp"
#include "mq/queue/lifecycle.hpp"
#include "mq/queue/payload_schema.hpp"
#include "mq/queue/placement.hpp"
#include "mq/queue/streams.hpp"
#include "output.hpp"

namespace mqctl {

namespace {

std::string max_length_text(const mq::Queue& q) {
    return q.max_length ? std::to_string(*q.max_length) : "unlimited";
}

std::string principals_text(const std::vector<std::string>& list) {
    if (list.empty()) return "any";
    std::string out;
    for (const auto& p : list) out += (out.empty() ? "" : ", ") + p;
    return out;
}

// A schema file is JSON; a syntax error names the file and byte offset. Read with a bound
// (no more than a stored schema may hold, several times over for whitespace) and checked
// (depth, $ref cycles, patterns) before anything recursive touches it.
nlohmann::json read_schema_file(const std::string& path) {
    std::string text =
        mq::read_input_file(path, "schema file", 4 * mq::PayloadSchemaLimits::kMaxBytes);
    return mq::parse_payload_schema(text, "schema file '" + mq::printable(path) + "'");
}

void print_queue(const mq::Queue& q, Context& ctx) {
    if (ctx.json()) {
        print_json(mq::to_json(q));
        return;
    }
    print_fields({{"name", q.name},
                  {"tenant", q.tenant},
                  {"description", q.description},
                  {"partitions", std::to_string(q.partition_count)},
                  {"retention", mq::format_duration(q.retention)},
                  {"max length", max_length_text(q)},
                  {"dedup window", mq::format_duration(q.dedup_window)},
                  {"encryption", q.encryption},
                  {"public", q.is_public ? "yes" : "no"},
                  {"recording", q.record_messages ? "yes" : "no"},
                  {"durability", q.durability},
                  {"producers", principals_text(q.allowed_producers)},
                  {"consumers", principals_text(q.allowed_consumers)},
                  {"schema", q.schema.is_null() ? "none" : q.schema.dump()},
                  {"created", q.created_at},
                  {"updated", q.updated_at}});
}

}  // namespace

struct QueueOptions {
    std::string name;
    std::string description;
    bool has_description = false;
    std::optional<int> partitions;
    std::string retention;
    std::optional<std::int64_t> max_length;
    bool no_max_length = false;
    std::string dedup_window;
    bool force = false;
    bool yes = false;
    std::string schema_file;
    bool no_schema = false;
    std::string encryption;
    std::vector<std::string> allow_producers;
    std::vector<std::string> allow_consumers;
    bool any_producer = false;
    bool any_consumer = false;
    std::optional<bool> is_public;
    std::optional<bool> record_messages;
    std::string durability;
};

void run_queue_create(const QueueOptions& o, Context& ctx) {
    mq::QueueSpec spec;
    spec.name = o.name;
    spec.description = o.description;
    spec.partition_count = o.partitions;
    if (!o.retention.empty()) spec.retention = mq::parse_duration(o.retention, "retention");
    spec.max_length = o.max_length;
    if (!o.dedup_window.empty())
        spec.dedup_window = mq::parse_duration(o.dedup_window, "dedup window");
    if (!o.schema_file.empty()) spec.schema = read_schema_file(o.schema_file);
    if (!o.encryption.empty()) spec.encryption = o.encryption;
    if (!o.allow_producers.empty()) spec.allowed_producers = o.allow_producers;
    if (!o.allow_consumers.empty()) spec.allowed_consumers = o.allow_consumers;
    spec.is_public = o.is_public;
    spec.record_messages = o.record_messages;
    if (!o.durability.empty()) spec.durability = o.durability;
    mq::validate(spec);  // before connecting: a bad flag is a usage error, not a backend one
    mq::Catalog catalog(ctx.db());
    mq::Queue q = catalog.create_queue(ctx.tenant(), spec, ctx.config());
    if (!ctx.json()) std::cout << "created queue " << q.name << '\n';
    print_queue(q, ctx);
}

void run_queue_list(Context& ctx) {
    mq::Catalog catalog(ctx.db());
    auto queues = catalog.list_queues(ctx.tenant());
    if (ctx.json()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& q : queues) out.push_back(mq::to_json(q));
        print_json(out);
        return;
    }
    Table t({"NAME", "PARTITIONS", "RETENTION", "MAX LENGTH", "DEDUP WINDOW", "DESCRIPTION"});
    for (const auto& q : queues)
        t.add({q.name, std::to_string(q.partition_count), mq::format_duration(q.retention),
               max_length_text(q), mq::format_duration(q.dedup_window), q.description});
    t.print();
}

void run_queue_show(const QueueOptions& o, Context& ctx) {
    mq::validate_name("queue name", o.name);
    mq::Catalog catalog(ctx.db());
    const mq::Queue q = catalog.get_queue(ctx.tenant(), o.name);
    // On a Redis Cluster: which master holds each partition (docs/cluster.md). A single
    // Redis is not asked, so `queue show` keeps working without it.
    if (!mq::redis::endpoint_from_config(ctx.config()).cluster()) return print_queue(q, ctx);
    auto placement = mq::partition_placement(ctx.redis(), ctx.keys(), q);
    if (ctx.json()) {
        nlohmann::json out = mq::to_json(q);
        out["placement"] = nlohmann::json::array();
        for (const auto& p : placement)
            out["placement"].push_back(
                {{"partition", p.partition}, {"slot", p.slot}, {"node", p.node}});
        print_json(out);
        return;
    }
    print_queue(q, ctx);
    Table t({"PARTITION", "SLOT", "NODE"});
    for (const auto& p : placement)
        t.add({std::to_string(p.partition), std::to_string(p.slot), p.node});
    std::cout << '\n';
    t.print();
}

void run_queue_update(const QueueOptions& o, Context& ctx) {
    mq::QueueChanges c;
    if (o.has_description) c.description = o.description;
    c.partition_count = o.partitions;
    if (!o.retention.empty()) c.retention = mq::parse_duration(o.retention, "retention");
    if (o.max_length) c.max_length = o.max_length;
    if (o.no_max_length) c.max_length = std::optional<std::int64_t>();
    if (!o.dedup_window.empty())
        c.dedup_window = mq::parse_duration(o.dedup_window, "dedup window");
    if (!o.schema_file.empty() && o.no_schema)
        throw mq::ValidationError("give --schema-file or --no-schema, not both",
                                  {{"field", "schema"}});
    if (!o.schema_file.empty()) c.schema = read_schema_file(o.schema_file);
    if (o.no_schema) c.schema = nlohmann::json();
    if (!o.encryption.empty()) c.encryption = o.encryption;
    if (!o.allow_producers.empty() && o.any_producer)
        throw mq::ValidationError("give --allow-producer or --any-producer, not both",
                                  {{"field", "allowed_producers"}});
    if (!o.allow_consumers.empty() && o.any_consumer)
        throw mq::ValidationError("give --allow-consumer or --any-consumer, not both",
                                  {{"field", "allowed_consumers"}});
    if (!o.allow_producers.empty()) c.allowed_producers = o.allow_producers;
    if (o.any_producer) c.allowed_producers = std::vector<std::string>{};
    if (!o.allow_consumers.empty()) c.allowed_consumers = o.allow_consumers;
    if (o.any_consumer) c.allowed_consumers = std::vector<std::string>{};
    c.is_public = o.is_public;
    c.record_messages = o.record_messages;
    if (!o.durability.empty()) c.durability = o.durability;
    if (c.empty())
        throw mq::ValidationError(
            "nothing to update: give --partitions, --retention, --max-length, --no-max-length, "
            "--dedup-window, --description, --schema-file, --no-schema, --encryption, "
            "--allow-producer, --any-producer, --allow-consumer, --any-consumer, --public, "
            "--no-public, --record-messages[=true|false] or --durability");
    mq::validate_name("queue name", o.name);
    mq::validate(c);
    auto updated = mq::update_queue(
        ctx.db(), [&ctx]() -> mq::redis::Connection& { return ctx.redis(); }, ctx.keys(),
        ctx.tenant(), o.name, c);
    const mq::Queue& q = updated.queue;
    if (!updated.workers_told)
        std::cerr << "mqctl: warning: queue " << q.name
                  << " is updated, but running workers were not told (" << updated.announce_error
                  << "); they pick the change up at their next full reconcile\n";
    if (!ctx.json()) {
        std::cout << "updated queue " << q.name << '\n';
        if (q.partition_count > updated.old_partitions)
            std::cout << "partitions " << updated.old_partitions << " -> " << q.partition_count
                      << ": created " << updated.groups_created
                      << " consumer group(s) on the new partitions\n";
    }
    print_queue(q, ctx);
}

void run_queue_delete(const QueueOptions& o, Context& ctx) {
    mq::validate_name("queue name", o.name);
    mq::Catalog catalog(ctx.db());
    // Not found before asking anything; a queue whose delete was interrupted counts, so
    // running the same command again finishes it.
    if (!catalog.find_queue(ctx.tenant(), o.name, /*include_deleting=*/true))
        catalog.get_queue(ctx.tenant(), o.name);  // throws the usual not-found error
    confirm("Delete queue '" + o.name + "' and every message in it?", o.yes);
    mq::QueueStreams streams(ctx.redis(), ctx.keys());
    auto d = mq::delete_queue(catalog, streams, ctx.tenant(), o.name, o.force);
    if (ctx.json())
        print_json({{"deleted", o.name},
                    {"subscriptions_deleted", d.subscriptions},
                    {"keys_removed", d.keys_removed}});
    else
        std::cout << "deleted queue " << o.name << " (" << d.subscriptions << " subscription(s), "
                  << d.keys_removed << " Redis key(s))\n";
}

void run_queue_purge(const QueueOptions& o, Context& ctx) {
    mq::validate_name("queue name", o.name);
    mq::Catalog catalog(ctx.db());
    mq::Queue q = catalog.get_queue(ctx.tenant(), o.name);
    confirm("Purge every message of queue '" + o.name + "'?", o.yes);
    mq::QueueStreams streams(ctx.redis(), ctx.keys());
    auto purged = mq::purge_queue(ctx.db(), streams, q);
    if (ctx.json())
        print_json({{"queue", o.name},
                    {"entries_removed", purged.entries},
                    {"delayed_removed", purged.delayed}});
    else
        std::cout << "purged queue " << o.name << ": " << purged.entries << " entries, "
                  << purged.delayed << " delayed\n";
}

void setup_queue(CLI::App& app, Context& ctx) {
    auto* queue = app.add_subcommand("queue", "Create, inspect and remove queues");
    queue->require_subcommand(1);
    auto add_settings = [](CLI::App* cmd, QueueOptions& o) {
        cmd->add_option("--partitions", o.partitions, "Number of partitions (1-256)");
        cmd->add_option("--retention", o.retention, "Keep entries this long, e.g. 7d, 12h");
        cmd->add_option("--max-length", o.max_length,
                        "Refuse publishes (QUEUE_FULL) beyond this backlog");
        cmd->add_option("--dedup-window", o.dedup_window, "Idempotency-key window, e.g. 24h");
        cmd->add_option("--description", o.description, "Free text")
            ->each([&o](const std::string&) { o.has_description = true; });
        cmd->add_option("--schema-file", o.schema_file,
                        "JSON Schema (draft 7) file every payload must match");
        cmd->add_option("--encryption", o.encryption,
                        "Payload encryption at rest: none or aes-256-gcm")
            ->check(CLI::IsMember({"none", "aes-256-gcm"}));
        cmd->add_option("--allow-producer", o.allow_producers,
                        "Principal allowed to publish (repeatable; default: any of the tenant)")
            ->allow_extra_args(false);
        cmd->add_option("--allow-consumer", o.allow_consumers,
                        "Principal allowed to consume (repeatable; default: any of the tenant)")
            ->allow_extra_args(false);
        cmd->add_flag_function(
            "--public,!--no-public", [&o](std::int64_t n) { o.is_public = n > 0; },
            "Whether other tenants may see the queue");
        cmd->add_flag_function(
            "--record-messages,!--no-record-messages",
            [&o](std::int64_t n) { o.record_messages = n > 0; },
            "Record every message's life in the message history (--record-messages=false "
            "turns it off; docs/history.md)");
        cmd->add_option("--durability", o.durability,
                        "Acknowledge a publish once the master stored it (leader) or once a "
                        "replica confirmed it too (replica)")
            ->check(CLI::IsMember({"leader", "replica"}));
    };

    auto create_opts = std::make_shared<QueueOptions>();
    auto* create = queue->add_subcommand("create", "Create a queue");
    create->add_option("name", create_opts->name, "Queue name")->required();
    add_settings(create, *create_opts);
    create->callback([create_opts, &ctx] { run_queue_create(*create_opts, ctx); });

    queue->add_subcommand("list", "List the tenant's queues")->callback([&ctx] {
        run_queue_list(ctx);
    });

    auto show_opts = std::make_shared<QueueOptions>();
    auto* show = queue->add_subcommand("show", "Show one queue's settings");
    show->add_option("name", show_opts->name, "Queue name")->required();
    show->callback([show_opts, &ctx] { run_queue_show(*show_opts, ctx); });

    auto update_opts = std::make_shared<QueueOptions>();
    auto* update = queue->add_subcommand("update", "Change a queue's settings");
    update->add_option("name", update_opts->name, "Queue name")->required();
    add_settings(update, *update_opts);
    update->add_flag("--no-max-length", update_opts->no_max_length, "Remove the length limit");
    update->add_flag("--no-schema", update_opts->no_schema, "Remove the payload schema");
    update->add_flag("--any-producer", update_opts->any_producer,
                     "Clear the producer list: any may publish");
    update->add_flag("--any-consumer", update_opts->any_consumer,
                     "Clear the consumer list: any may consume");
    update->callback([update_opts, &ctx] { run_queue_update(*update_opts, ctx); });

    auto delete_opts = std::make_shared<QueueOptions>();
    auto* del = queue->add_subcommand("delete", "Delete a queue and its messages");
    del->add_option("name", delete_opts->name, "Queue name")->required();
    del->add_flag("--force", delete_opts->force, "Also delete its subscriptions");
    del->add_flag("-y,--yes", delete_opts->yes, "Do not ask for confirmation");
    del->callback([delete_opts, &ctx] { run_queue_delete(*delete_opts, ctx); });

    auto purge_opts = std::make_shared<QueueOptions>();
    auto* purge = queue->add_subcommand("purge", "Remove every message, keep the queue");
    purge->add_option("name", purge_opts->name, "Queue name")->required();
    purge->add_flag("-y,--yes", purge_opts->yes, "Do not ask for confirmation");
    purge->callback([purge_opts, &ctx] { run_queue_purge(*purge_opts, ctx); });
}

}  // namespace mqctl
