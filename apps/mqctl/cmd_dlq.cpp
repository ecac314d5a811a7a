// mqctl dlq list|show|replay|purge: a queue's dead letters, one :dlq stream per
// partition. Ids are "<partition>:<stream id>" (DeadLetter::handle()). Replay publishes
// first and removes the dead letter only after Redis accepted the message.
#include <algorithm>
#include <charconv>
#include <iostream>
#include <set>

#include "commands.hpp"
#include "confirm.hpp"
#include "mq/consume/dead_letters.hpp"
#include "mq/consume/entry_ref.hpp"
#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/publish/publish_use_case.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/queue/catalog.hpp"
#include "output.hpp"

namespace mqctl {

struct DlqOptions {
    std::string queue;
    std::string subscription;
    std::string since;
    std::string before;
    int limit = 50;
    std::vector<std::string> ids;
    bool all = false;
    std::string to;
    bool yes = false;
    bool dry_run = false;
    std::string rate;
    std::string reason;
};

namespace {

// Checks "<partition>:<ms>[-<seq>]" before anything connects, so a typo is a usage
// error even with Redis down. DeadLetterStore::find() checks it again.
void check_dead_letter_id(const std::string& text) { mq::parse_entry_ref(text, "mqctl dlq list"); }

// "1h", "2d" (that long ago) or an RFC 3339 time, to Unix ms.
std::int64_t parse_time_or_age(const std::string& text, const std::string& flag) {
    try {
        if (text.size() >= 10 && text[4] == '-') {
            // Stream ids start at 1970: an earlier time is a typo, not "everything".
            std::int64_t ms = mq::parse_rfc3339(text, flag);
            if (ms < 0) throw mq::ValidationError("before 1970");
            return ms;
        }
        // An age longer than the epoch means everything: clamp, never a negative id.
        return std::max<std::int64_t>(0, mq::now_ms() - mq::parse_duration(text, flag).count());
    } catch (const mq::ValidationError&) {
        throw mq::ValidationError(
            "invalid " + flag + " '" + mq::printable(text) +
                "': give an age like 30m, 1h, 2d or a time like 2026-11-21T10:00:00Z",
            {{"field", flag}, {"value", mq::printable(text)}});
    }
}

std::string shorten(const std::string& text, std::size_t max) {
    std::string p = mq::printable(text);
    return p.size() <= max ? p : p.substr(0, max - 3) + "...";
}

std::string age_text(std::int64_t unix_ms) {
    return mq::format_duration(std::chrono::milliseconds(
               std::max<std::int64_t>(0, mq::now_ms() - unix_ms) / 1000 * 1000)) +
           " ago";
}

mq::DeadLetter require(mq::DeadLetterStore& store, const mq::Queue& q, const std::string& id) {
    auto d = store.find(q, id);
    if (!d)
        throw mq::Error(mq::ErrorCode::kNotFound,
                        "dead letter '" + mq::printable(id) + "' not found in queue '" + q.name +
                            "'; list them with: mqctl dlq list " + q.name,
                        {{"queue", q.name}, {"id", mq::printable(id)}});
    return *d;
}

}  // namespace

void run_dlq_list(const DlqOptions& o, Context& ctx) {
    mq::validate_name("queue name", o.queue);
    if (!o.subscription.empty()) mq::validate_name("subscription name", o.subscription);
    if (o.limit < 1) throw mq::ValidationError("--limit must be at least 1");
    std::optional<std::int64_t> since;
    if (!o.since.empty()) since = parse_time_or_age(o.since, "--since");
    mq::Queue q = mq::Catalog(ctx.db()).get_queue(ctx.tenant(), o.queue);
    mq::DeadLetterStore store(ctx.redis(), ctx.keys());
    mq::DeadLetterFilter filter;
    filter.subscription = o.subscription;
    filter.reason = o.reason;
    filter.since_ms = since;
    auto list = store.page(q, filter, static_cast<std::size_t>(o.limit)).items;
    if (ctx.json()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& d : list) out.push_back(mq::to_json(d));
        print_json(out);
        return;
    }
    Table t({"ID", "SUBSCRIPTION", "REASON", "ATTEMPTS", "DIED", "MESSAGE ID", "ERROR"});
    for (const auto& d : list)
        t.add({d.handle(), d.subscription, d.reason, std::to_string(d.attempts),
               age_text(d.dead_ms), d.message.id, shorten(d.error, 60)});
    t.print();
}

void run_dlq_show(const DlqOptions& o, Context& ctx) {
    mq::validate_name("queue name", o.queue);
    check_dead_letter_id(o.ids.at(0));
    mq::Queue q = mq::Catalog(ctx.db()).get_queue(ctx.tenant(), o.queue);
    mq::DeadLetterStore store(ctx.redis(), ctx.keys());
    mq::DeadLetter d = require(store, q, o.ids.at(0));
    if (ctx.json()) {
        nlohmann::json j = mq::to_json(d);
        j["trace_id"] = d.message.trace_id;
        print_json(j);
        return;
    }
    print_fields(
        {{"id", d.handle()},
         {"queue", q.name},
         {"subscription", d.subscription},
         {"reason", d.reason},
         {"error", mq::printable(d.error)},
         {"attempts", std::to_string(d.attempts)},
         {"died", mq::format_rfc3339(d.dead_ms) + " (" + age_text(d.dead_ms) + ")"},
         {"message id", d.message.id},
         {"published", mq::format_rfc3339(d.message.published_ms)},
         {"key", d.message.key.empty() ? "-" : mq::printable(d.message.key)},
         {"headers", d.message.headers_json.empty() ? "{}" : mq::printable(d.message.headers_json)},
         {"content type", d.message.content_type.empty() ? "-" : d.message.content_type},
         {"trace id", d.message.trace_id.empty() ? "-" : d.message.trace_id},
         {"stream entry", d.original_stream_id},
         {"payload bytes", std::to_string(d.message.payload.size())}});
    std::cout << "payload:\n" << d.message.payload;
    if (!d.message.payload.empty() && d.message.payload.back() != '\n') std::cout << '\n';
}

void run_dlq_replay(const DlqOptions& o, Context& ctx) {
    mq::validate_name("queue name", o.queue);
    if (!o.to.empty()) mq::validate_name("--to queue name", o.to);
    if (!o.subscription.empty()) mq::validate_name("subscription name", o.subscription);
    const int modes = (o.ids.empty() ? 0 : 1) + (o.since.empty() ? 0 : 1) + (o.all ? 1 : 0);
    if (modes != 1)
        throw mq::ValidationError(
            "say what to replay: dead-letter IDs, --since AGE|TIME, or --all (one of them)");
    if (!o.ids.empty() && (!o.subscription.empty() || !o.reason.empty()))
        throw mq::ValidationError(
            "--sub and --reason filter --since and --all; IDs already name the dead letters");
    for (const auto& id : o.ids) check_dead_letter_id(id);
    mq::DeadLetterFilter filter;
    filter.subscription = o.subscription;
    filter.reason = o.reason;
    if (!o.since.empty()) filter.since_ms = parse_time_or_age(o.since, "--since");
    mq::ReplayOptions options;
    options.dry_run = o.dry_run;
    if (!o.rate.empty()) options.rate_per_s = mq::parse_replay_rate(o.rate, "--rate");

    mq::Catalog catalog(ctx.db());
    mq::Queue q = catalog.get_queue(ctx.tenant(), o.queue);
    mq::Queue target = o.to.empty() ? q : catalog.get_queue(ctx.tenant(), o.to);
    if (o.all && !o.dry_run)
        confirm("Replay every dead letter of queue '" + q.name + "'" +
                    (o.subscription.empty() ? "" : " from subscription '" + o.subscription + "'") +
                    " to queue '" + target.name + "'?",
                o.yes);

    mq::DeadLetterStore store(ctx.redis(), ctx.keys());
    mq::PublishLimits limits;
    limits.max_message_size = ctx.config().max_message_size;
    mq::Publisher publisher(ctx.redis(), ctx.keys(), limits);
    // The publish use case (schema, sealing) for the target; the keyring also opens what
    // was sealed for the source queue.
    mq::PublishUseCase use_case(limits, mq::keyring_for(ctx.config().keyring_file, {&q, &target}),
                                nullptr);

    std::vector<mq::DeadLetter> todo;
    std::vector<std::string> not_found;
    if (!o.ids.empty()) {
        std::set<std::string> seen;
        for (const auto& id : o.ids) {
            if (!seen.insert(id).second) continue;
            auto d = store.find(q, id);
            if (d)
                todo.push_back(std::move(*d));
            else
                not_found.push_back(id);
        }
    } else {
        // Every match (count() bounds it), oldest first so replays keep their order.
        auto n = static_cast<std::size_t>(std::max<std::int64_t>(1, store.count(q)));
        todo = store.select(q, filter, n);
    }

    if (!ctx.json())
        options.on_result = [](const mq::ReplayResult& r) {
            switch (r.status) {
                case mq::ReplayStatus::kReplayed:
                    std::cout << "replayed " << r.id << " as " << r.outcome.message_id
                              << " (partition " << r.outcome.partition << ")\n";
                    break;
                case mq::ReplayStatus::kWouldReplay:
                    std::cout << "would replay " << r.id << '\n';
                    break;
                case mq::ReplayStatus::kFailed:
                    std::cout << "failed   " << r.id << ": " << (r.error ? r.error->what() : "")
                              << '\n';
                    break;
                case mq::ReplayStatus::kNotFound:
                    std::cout << "missing  " << r.id << ": no such dead letter\n";
                    break;
            }
            std::cout << std::flush;
        };
    auto report = mq::replay_dead_letters(ctx.db(), store, q, todo, not_found, target, publisher,
                                          use_case, options);

    const std::size_t asked = todo.size() + not_found.size();
    if (ctx.json()) {
        nlohmann::json results = nlohmann::json::array();
        for (const auto& r : report.results) {
            auto j = mq::to_json(r);
            if (r.error) j["error"] = r.error->what();  // mqctl's JSON: the message, as before
            results.push_back(std::move(j));
        }
        print_json({{"queue", q.name},
                    {"to", target.name},
                    {"dry_run", o.dry_run},
                    {"replayed", report.replayed},
                    {"would_replay", report.would_replay},
                    {"failed", report.failed},
                    {"not_found", report.not_found},
                    {"results", results}});
    } else if (asked == 0) {
        std::cout << "nothing to replay in queue " << q.name << '\n';
    } else if (o.dry_run) {
        std::cout << "dry run: would replay " << report.would_replay << " of " << asked
                  << " dead letter(s) to queue " << target.name;
        if (report.failed) std::cout << ", " << report.failed << " would fail";
        if (report.not_found) std::cout << ", " << report.not_found << " not found";
        std::cout << "; nothing was changed\n";
    } else {
        std::cout << "replayed " << report.replayed << " of " << asked
                  << " dead letter(s) to queue " << target.name;
        if (report.failed) std::cout << ", " << report.failed << " failed (kept)";
        if (report.not_found) std::cout << ", " << report.not_found << " not found";
        std::cout << '\n';
    }
    if (report.failed) {
        std::string first;
        for (const auto& r : report.results)
            if (r.error) {
                first = r.error->what();
                break;
            }
        throw mq::Error(mq::ErrorCode::kPublishFailed,
                        std::to_string(report.failed) +
                            (o.dry_run ? " replay(s) would fail" : " replay(s) failed") +
                            "; those dead letters were kept (first: " + first + ")");
    }
    if (report.not_found)
        throw mq::Error(mq::ErrorCode::kNotFound,
                        std::to_string(report.not_found) + " dead letter(s) not found in queue '" +
                            q.name + "'; list them with: mqctl dlq list " + q.name);
}

void run_dlq_purge(const DlqOptions& o, Context& ctx) {
    mq::validate_name("queue name", o.queue);
    std::optional<std::int64_t> before;
    if (!o.before.empty()) before = parse_time_or_age(o.before, "--before");
    mq::Queue q = mq::Catalog(ctx.db()).get_queue(ctx.tenant(), o.queue);
    confirm(before ? "Remove the dead letters of queue '" + q.name + "' that died before " +
                         mq::format_rfc3339(*before) + "?"
                   : "Remove every dead letter of queue '" + q.name + "'?",
            o.yes);
    mq::DeadLetterStore store(ctx.redis(), ctx.keys());
    auto removed = mq::purge_dead_letters(ctx.db(), store, q, before);
    if (ctx.json())
        print_json(
            {{"queue", q.name},
             {"removed", removed},
             {"before", before ? nlohmann::json(mq::format_rfc3339(*before)) : nlohmann::json()}});
    else
        std::cout << "purged " << removed << " dead letter(s) from queue " << q.name << '\n';
}

void setup_dlq(CLI::App& app, Context& ctx) {
    auto* dlq = app.add_subcommand("dlq", "List, inspect, replay and purge dead letters");
    dlq->require_subcommand(1);

    auto list_opts = std::make_shared<DlqOptions>();
    auto* list = dlq->add_subcommand("list", "List a queue's dead letters, newest first");
    list->add_option("queue", list_opts->queue, "Queue name")->required();
    list->add_option("-s,--sub", list_opts->subscription, "Only those of this subscription");
    list->add_option("--since", list_opts->since,
                     "Only those that died since: 1h, 2d or an RFC 3339 time");
    list->add_option("--reason", list_opts->reason, "Only those dead-lettered for this reason");
    list->add_option("-n,--limit", list_opts->limit, "At most this many (default 50)");
    list->callback([list_opts, &ctx] { run_dlq_list(*list_opts, ctx); });

    auto show_opts = std::make_shared<DlqOptions>();
    auto* show =
        dlq->add_subcommand("show", "Show one dead letter with its payload, headers and error");
    show->add_option("queue", show_opts->queue, "Queue name")->required();
    show->add_option("id", show_opts->ids,
                     "Dead-letter id (partition:stream-id) from mqctl dlq list")
        ->required()
        ->expected(1);
    show->callback([show_opts, &ctx] { run_dlq_show(*show_opts, ctx); });

    auto replay_opts = std::make_shared<DlqOptions>();
    auto* replay = dlq->add_subcommand("replay", "Publish dead letters again, then remove them");
    replay->add_option("queue", replay_opts->queue, "Queue name")->required();
    replay->add_option("ids", replay_opts->ids, "Dead-letter ids (partition:stream-id)");
    replay->add_option("--since", replay_opts->since,
                       "Every dead letter that died since: 1h, 2d or an RFC 3339 time");
    replay->add_flag("--all", replay_opts->all, "Every dead letter of the queue");
    replay->add_option("--to", replay_opts->to,
                       "Publish to this queue instead of the original one");
    replay->add_option("-s,--sub", replay_opts->subscription,
                       "With --since/--all: only this subscription's");
    replay->add_option("--reason", replay_opts->reason, "With --since/--all: only this reason");
    replay->add_flag("--dry-run", replay_opts->dry_run,
                     "Print what would be replayed (and what would be refused); change nothing");
    replay->add_option("--rate", replay_opts->rate,
                       "Replay at most this many per second, evenly paced: 50, 50/s, 600/m");
    replay->add_flag("-y,--yes", replay_opts->yes, "Do not ask for confirmation (--all)");
    replay->callback([replay_opts, &ctx] { run_dlq_replay(*replay_opts, ctx); });

    auto purge_opts = std::make_shared<DlqOptions>();
    auto* purge = dlq->add_subcommand("purge", "Remove dead letters for good");
    purge->add_option("queue", purge_opts->queue, "Queue name")->required();
    purge->add_option("--before", purge_opts->before,
                      "Only those that died before: 1h (ago), 2d or an RFC 3339 time");
    purge->add_flag("-y,--yes", purge_opts->yes, "Do not ask for confirmation");
    purge->callback([purge_opts, &ctx] { run_dlq_purge(*purge_opts, ctx); });
}

}  // namespace mqctl
