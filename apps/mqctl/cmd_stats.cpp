#include <algorithm>
#include <iostream>

#include "commands.hpp"
#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/queue/catalog.hpp"
#include "mq/queue/streams.hpp"
#include "output.hpp"

namespace mqctl {

struct StatsOptions {
    std::string queue;
};

namespace {

/// One subscription (consumer group) summed over the partitions it has a group on.
struct SubscriptionTotals {
    std::string name;
    std::int64_t pending = 0;
    std::int64_t lag = 0;
    std::int64_t expired = 0;  ///< entries retention removed before this subscription finished them
    bool lag_known = true;     ///< false when any partition's lag is unknown
    int partitions = 0;        ///< partitions with the group
};

std::vector<SubscriptionTotals> subscription_totals(const std::vector<mq::PartitionStats>& parts) {
    std::vector<SubscriptionTotals> out;
    for (const auto& p : parts)
        for (const auto& g : p.groups) {
            auto it = std::find_if(out.begin(), out.end(),
                                   [&](const auto& t) { return t.name == g.name; });
            if (it == out.end()) {
                it = out.insert(out.end(), SubscriptionTotals{});
                it->name = g.name;
            }
            it->pending += g.pending;
            it->expired += g.expired;
            it->lag += g.lag.value_or(0);
            it->lag_known = it->lag_known && g.lag.has_value();
            ++it->partitions;
        }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

}  // namespace

void run_stats(const StatsOptions& o, Context& ctx) {
    mq::validate_name("queue name", o.queue);
    mq::Catalog catalog(ctx.db());
    mq::Queue q = catalog.get_queue(ctx.tenant(), o.queue);
    mq::QueueStreams streams(ctx.redis(), ctx.keys());
    auto parts = streams.stats(q);
    const std::int64_t now = mq::now_ms();
    auto age = [now](std::optional<std::int64_t> ms) -> std::optional<std::int64_t> {
        if (!ms) return std::nullopt;
        return std::max<std::int64_t>(0, now - *ms);
    };

    std::int64_t length = 0, delayed = 0, dead = 0;
    std::optional<std::int64_t> oldest;
    for (const auto& p : parts) {
        length += p.length;
        delayed += p.delayed;
        dead += p.dead_letters;
        if (p.oldest_ms) oldest = std::min(oldest.value_or(*p.oldest_ms), *p.oldest_ms);
    }
    const auto subs = subscription_totals(parts);
    if (ctx.json()) {
        nlohmann::json jp = nlohmann::json::array();
        for (const auto& p : parts) {
            nlohmann::json groups = nlohmann::json::array();
            for (const auto& g : p.groups)
                groups.push_back(
                    {{"name", g.name},
                     {"consumers", g.consumers},
                     {"pending", g.pending},
                     {"expired", g.expired},
                     {"lag", g.lag ? nlohmann::json(*g.lag) : nlohmann::json(nullptr)}});
            auto oldest_age = age(p.oldest_ms);
            jp.push_back({{"partition", p.partition},
                          {"length", p.length},
                          {"delayed", p.delayed},
                          {"dead_letters", p.dead_letters},
                          {"oldest_age_ms",
                           oldest_age ? nlohmann::json(*oldest_age) : nlohmann::json(nullptr)},
                          {"groups", groups}});
        }
        nlohmann::json subs_json = nlohmann::json::array();
        for (const auto& t : subs)
            subs_json.push_back(
                {{"name", t.name},
                 {"pending", t.pending},
                 {"expired", t.expired},
                 {"lag", t.lag_known ? nlohmann::json(t.lag) : nlohmann::json(nullptr)},
                 {"partitions", t.partitions}});
        auto oldest_age = age(oldest);
        print_json(
            {{"queue", q.name},
             {"length", length},
             {"delayed", delayed},
             {"dead_letters", dead},
             {"oldest_age_ms", oldest_age ? nlohmann::json(*oldest_age) : nlohmann::json(nullptr)},
             {"partitions", jp},
             {"subscriptions", subs_json}});
        return;
    }
    auto age_text = [&](std::optional<std::int64_t> ms) {
        auto a = age(ms);
        return a ? mq::format_duration(std::chrono::milliseconds(*a)) : std::string("-");
    };
    Table t({"PARTITION", "LENGTH", "DELAYED", "DEAD LETTERS", "OLDEST"});
    for (const auto& p : parts)
        t.add({std::to_string(p.partition), std::to_string(p.length), std::to_string(p.delayed),
               std::to_string(p.dead_letters), age_text(p.oldest_ms)});
    t.add({"total", std::to_string(length), std::to_string(delayed), std::to_string(dead),
           age_text(oldest)});
    t.print();
    if (subs.empty()) return;
    std::cout << '\n';
    Table st({"SUBSCRIPTION", "PENDING", "LAG", "EXPIRED", "PARTITIONS"});
    for (const auto& sub : subs)
        st.add({sub.name, std::to_string(sub.pending),
                sub.lag_known ? std::to_string(sub.lag) : "unknown", std::to_string(sub.expired),
                std::to_string(sub.partitions) + "/" + std::to_string(q.partition_count)});
    st.print();
}

void setup_stats(CLI::App& app, Context& ctx) {
    auto o = std::make_shared<StatsOptions>();
    auto* cmd = app.add_subcommand("stats",
                                   "Show a queue's length, delayed entries, oldest entry age, and "
                                   "pending and lag per subscription");
    cmd->add_option("queue", o->queue, "Queue name")->required();
    cmd->callback([o, &ctx] { run_stats(*o, ctx); });
}

}  // namespace mqctl
