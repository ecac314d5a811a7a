#include <algorithm>
#include <iostream>

#include "commands.hpp"
#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/queue/catalog.hpp"
#include "mq/queue/inspector.hpp"
#include "output.hpp"

namespace mqctl {

struct StatsOptions {
    std::string queue;
};

namespace {

nlohmann::json optional_json(std::optional<std::int64_t> v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

void run_stats(const StatsOptions& o, Context& ctx) {
    mq::validate_name("queue name", o.queue);
    mq::Catalog catalog(ctx.db());
    mq::Queue q = catalog.get_queue(ctx.tenant(), o.queue);
    const mq::QueueFigures f = mq::QueueInspector(ctx.redis(), ctx.keys()).inspect(q);

    if (ctx.json()) {
        nlohmann::json jp = nlohmann::json::array();
        for (const auto& p : f.partitions) {
            nlohmann::json groups = nlohmann::json::array();
            for (const auto& g : p.groups)
                groups.push_back(
                    {{"name", g.name},
                     {"consumers", g.consumers},
                     {"pending", g.pending},
                     {"lag", optional_json(g.lag)},
                     {"backlog", g.backlog},
                     {"expired", g.expired},
                     {"oldest_pending_age_ms", optional_json(f.age_ms(g.oldest_pending_ms))}});
            jp.push_back({{"partition", p.partition},
                          {"length", p.length},
                          {"delayed", p.delayed},
                          {"dead_letters", p.dead_letters},
                          {"backlog", p.backlog()},
                          {"oldest_age_ms", optional_json(f.age_ms(p.oldest_ms))},
                          {"groups", groups}});
        }
        nlohmann::json subs_json = nlohmann::json::array();
        for (const auto& t : f.subscriptions)
            subs_json.push_back(
                {{"name", t.name},
                 {"pending", t.pending},
                 {"lag", t.lag_known ? nlohmann::json(t.lag) : nlohmann::json(nullptr)},
                 {"backlog", t.backlog},
                 {"expired", t.expired},
                 {"consumers", t.consumers},
                 {"oldest_pending_age_ms", optional_json(f.age_ms(t.oldest_pending_ms))},
                 {"partitions", t.partitions}});
        print_json({{"queue", q.name},
                    {"length", f.length},
                    {"delayed", f.delayed},
                    {"dead_letters", f.dead_letters},
                    {"history_buffered", f.history_buffered},
                    {"backlog", f.backlog},
                    {"pending", f.pending},
                    {"lag", f.lag},
                    {"oldest_age_ms", optional_json(f.age_ms(f.oldest_ms))},
                    {"oldest_pending_age_ms", optional_json(f.age_ms(f.oldest_pending_ms))},
                    {"partitions", jp},
                    {"subscriptions", subs_json}});
        return;
    }
    auto age_text = [&](std::optional<std::int64_t> ms) {
        auto a = f.age_ms(ms);
        return a ? mq::format_duration(std::chrono::milliseconds(*a)) : std::string("-");
    };
    // Without subscriptions the backlog is the length; with them it follows the second table.
    // (Columns stay as they were: scripts parse these tables.)
    Table t({"PARTITION", "LENGTH", "DELAYED", "DEAD LETTERS", "OLDEST"});
    for (const auto& p : f.partitions)
        t.add({std::to_string(p.partition), std::to_string(p.length), std::to_string(p.delayed),
               std::to_string(p.dead_letters), age_text(p.oldest_ms)});
    t.add({"total", std::to_string(f.length), std::to_string(f.delayed),
           std::to_string(f.dead_letters), age_text(f.oldest_ms)});
    t.print();
    if (q.record_messages || f.history_buffered > 0)
        std::cout << "history buffered " << f.history_buffered
                  << " event(s) in Redis, not yet written to PostgreSQL\n";
    if (f.subscriptions.empty()) return;
    std::cout << '\n';
    Table st({"SUBSCRIPTION", "PENDING", "LAG", "EXPIRED", "PARTITIONS"});
    for (const auto& sub : f.subscriptions)
        st.add({sub.name, std::to_string(sub.pending),
                sub.lag_known ? std::to_string(sub.lag) : "unknown", std::to_string(sub.expired),
                std::to_string(sub.partitions) + "/" + std::to_string(q.partition_count)});
    st.print();
    std::cout << "\nbacklog " << f.backlog
              << " (not finished by the slowest subscription: lag + pending), oldest pending "
              << age_text(f.oldest_pending_ms) << '\n';
}

void setup_stats(CLI::App& app, Context& ctx) {
    auto o = std::make_shared<StatsOptions>();
    auto* cmd = app.add_subcommand("stats",
                                   "Show a queue's length, backlog, delayed entries, dead letters, "
                                   "oldest entry age, and backlog, pending and lag "
                                   "per subscription (definitions: docs/metrics.md)");
    cmd->add_option("queue", o->queue, "Queue name")->required();
    cmd->callback([o, &ctx] { run_stats(*o, ctx); });
}

}  // namespace mqctl
