// mqctl message show|list: the message history of queues with record_messages
// (docs/history.md). Reads PostgreSQL only; every rule lives in mq::HistoryStore.
#include <iostream>

#include "commands.hpp"
#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/history/history.hpp"
#include "mq/queue/catalog.hpp"
#include "output.hpp"

namespace mqctl {

struct MessageOptions {
    std::string id;
    std::string queue;
    std::string since;
    std::string status;
    int limit = 50;
    std::string cursor;
};

namespace {

// One timeline line: what happened, and the few fields that say how.
std::string describe(const mq::HistoryRecord& r) {
    const mq::HistoryEvent& e = r.detail;
    std::string out;
    auto add = [&](const std::string& k, const std::string& v) {
        if (v.empty()) return;
        if (!out.empty()) out += ' ';
        out += k + "=" + mq::printable(v);
    };
    add("subscription", e.subscription);
    add("consumer", e.consumer);
    if (e.attempt > 0) add("attempt", std::to_string(e.attempt));
    add("outcome", e.outcome);
    if (e.duration_ms >= 0) add("duration", std::to_string(e.duration_ms) + "ms");
    add("producer", e.producer);
    add("key", e.key);
    if (e.size >= 0) add("size", std::to_string(e.size));
    add("trace", e.trace_id);
    add("error", e.error.size() > 200 ? e.error.substr(0, 197) + "..." : e.error);
    add("detail", e.detail);
    return out;
}

void run_message_show(const MessageOptions& o, Context& ctx) {
    if (!mq::is_uuid(o.id))  // before connecting: a typo is a usage error
        throw mq::ValidationError("message id must be a uuid, got '" + mq::printable(o.id) + "'",
                                  {{"field", "id"}});
    auto timeline = mq::HistoryStore(ctx.db()).timeline(ctx.tenant(), o.id);
    if (ctx.json()) {
        nlohmann::json events = nlohmann::json::array();
        for (const auto& r : timeline.events) events.push_back(mq::to_json(r));
        print_json({{"id", o.id},
                    {"queue", timeline.events.front().queue},
                    {"events", events},
                    {"truncated", timeline.truncated}});
        return;
    }
    std::cout << "message " << o.id << " in queue " << timeline.events.front().queue
              << " (partition " << timeline.events.front().partition << ")\n";
    Table t({"TIME", "EVENT", "DETAILS"});
    for (const auto& r : timeline.events)
        t.add({mq::format_rfc3339(r.at_ms), r.event, describe(r)});
    t.print();
    if (timeline.truncated)
        std::cout << "(only the first " << mq::kMaxTimeline << " events are shown)\n";
}

void run_message_list(const MessageOptions& o, Context& ctx) {
    mq::validate_name("queue name", o.queue);
    mq::MessageFilter f;
    if (!o.since.empty()) f.since_ms = mq::parse_since(o.since, "since");
    f.status = o.status;
    if (o.limit < 1 || static_cast<std::size_t>(o.limit) > mq::kMaxHistoryPage)
        throw mq::ValidationError(
            "--limit must be from 1 to " + std::to_string(mq::kMaxHistoryPage),
            {{"field", "limit"}});
    f.limit = static_cast<std::size_t>(o.limit);
    f.cursor = o.cursor;
    mq::validate(f);  // before connecting
    mq::Catalog catalog(ctx.db());
    const mq::Queue q = catalog.get_queue(ctx.tenant(), o.queue);
    auto page = mq::HistoryStore(ctx.db()).list(ctx.tenant(), q.name, f);
    if (ctx.json()) {
        nlohmann::json items = nlohmann::json::array();
        for (const auto& m : page.items) items.push_back(mq::to_json(m));
        print_json({{"messages", items},
                    {"next_cursor", page.next_cursor.empty() ? nlohmann::json()
                                                             : nlohmann::json(page.next_cursor)}});
        return;
    }
    Table t({"ID", "PUBLISHED", "STATUS", "ATTEMPTS", "PARTITION", "KEY"});
    for (const auto& m : page.items)
        t.add({m.message_id, mq::format_rfc3339(m.published_ms), m.status,
               std::to_string(m.attempts), std::to_string(m.partition), mq::printable(m.key)});
    t.print();
    if (!q.record_messages)
        std::cerr << "mqctl: note: queue " << q.name
                  << " does not record messages; turn it on with: mqctl queue update " << q.name
                  << " --record-messages\n";
    if (!page.next_cursor.empty())
        std::cout << "more: mqctl message list " << q.name << " --cursor " << page.next_cursor
                  << '\n';
}

}  // namespace

void setup_message(CLI::App& app, Context& ctx) {
    auto* message = app.add_subcommand(
        "message", "The message history of queues that record messages (docs/history.md)");
    message->require_subcommand(1);

    auto show_opts = std::make_shared<MessageOptions>();
    auto* show = message->add_subcommand("show", "A message's life as a timeline, oldest first");
    show->add_option("id", show_opts->id, "Message id (uuid)")->required();
    show->callback([show_opts, &ctx] { run_message_show(*show_opts, ctx); });

    auto list_opts = std::make_shared<MessageOptions>();
    auto* list = message->add_subcommand("list", "A queue's recorded messages, newest first");
    list->add_option("queue", list_opts->queue, "Queue name")->required();
    list->add_option("--since", list_opts->since,
                     "Only those published since: 1h, 2d or an RFC 3339 time");
    list->add_option("--status", list_opts->status,
                     "Only pending, failed (a failed attempt), acked, dead_lettered, expired or "
                     "replayed ones");
    list->add_option(
        "-n,--limit", list_opts->limit,
        "At most this many (1-" + std::to_string(mq::kMaxHistoryPage) + ", default 50)");
    list->add_option("--cursor", list_opts->cursor, "Continue after the previous page");
    list->callback([list_opts, &ctx] { run_message_list(*list_opts, ctx); });
}

}  // namespace mqctl
