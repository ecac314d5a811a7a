// mqctl pending|claim|ack|consumers: what a subscription's consumer groups hold in
// flight, and the operator's repairs (move entries to another consumer, acknowledge
// them by hand). Entry ids are "<partition>:<stream id>", as in mqctl dlq.
#include <algorithm>
#include <charconv>
#include <iostream>
#include <map>
#include <set>

#include "commands.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/consume/entry_ref.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/queue/catalog.hpp"
#include "output.hpp"

namespace mqctl {

struct PendingOptions {
    std::string queue;
    std::string subscription;
    std::string consumer;
    int count = 100;
    std::vector<std::string> ids;
};

namespace {

/// XPENDING entries read per partition to build the per-consumer summary: enough for
/// any healthy subscription; beyond it the summary says it counted only that many.
constexpr int kScanLimit = 10000;

std::vector<mq::EntryRef> parse_entry_refs(const std::vector<std::string>& ids) {
    std::vector<mq::EntryRef> out;
    std::set<std::string> seen;
    for (const auto& id : ids) {
        mq::EntryRef r = mq::parse_entry_ref(id, "mqctl pending");
        if (seen.insert(std::to_string(r.partition) + ":" + r.stream_id).second)
            out.push_back(std::move(r));
    }
    return out;
}

// Stream ids compare by milliseconds, then sequence.
std::pair<std::uint64_t, std::uint64_t> id_order(const std::string& id) {
    std::uint64_t ms = 0, seq = 0;
    auto dash = id.find('-');
    std::from_chars(id.data(), id.data() + (dash == std::string::npos ? id.size() : dash), ms);
    if (dash != std::string::npos)
        std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq);
    return {ms, seq};
}

std::string consumer_text(const std::string& consumer) {
    return consumer == mq::kRetryConsumer ? "(waiting for retry)" : consumer;
}

std::string idle_text(std::int64_t ms) {
    return mq::format_duration(std::chrono::milliseconds(ms));
}

struct Target {
    mq::Queue queue;
    mq::Subscription subscription;
};

// Names checked before connecting; unknown queue or subscription is exit 3.
Target resolve(const PendingOptions& o, Context& ctx) {
    mq::validate_name("queue name", o.queue);
    mq::validate_name("subscription name", o.subscription);
    Target t{mq::Catalog(ctx.db()).get_queue(ctx.tenant(), o.queue), {}};
    t.subscription = mq::SubscriptionCatalog(ctx.db()).get(ctx.tenant(), o.queue, o.subscription);
    return t;
}

/// Pending entries of every partition (up to kScanLimit each), oldest first.
struct PendingScan {
    std::vector<mq::PendingEntry> entries;
    bool truncated = false;
};

PendingScan scan_pending(mq::ConsumerGroups& groups, const Target& t, const std::string& consumer) {
    PendingScan out;
    for (int p = 0; p < t.queue.partition_count; ++p) {
        auto part =
            groups.pending(t.queue, mq::consumer_group(t.subscription), p, kScanLimit, consumer);
        if (part.size() >= static_cast<std::size_t>(kScanLimit)) out.truncated = true;
        out.entries.insert(out.entries.end(), std::make_move_iterator(part.begin()),
                           std::make_move_iterator(part.end()));
    }
    std::stable_sort(out.entries.begin(), out.entries.end(), [](const auto& a, const auto& b) {
        auto ao = id_order(a.stream_id), bo = id_order(b.stream_id);
        return ao != bo ? ao < bo : a.partition < b.partition;
    });
    return out;
}

/// Pending entries summed per consumer (and partition).
struct ConsumerLoad {
    std::int64_t pending = 0;
    std::int64_t max_idle_ms = 0;
    std::set<int> partitions;
};

}  // namespace

void run_pending(const PendingOptions& o, Context& ctx) {
    if (o.count < 1) throw mq::ValidationError("--limit must be at least 1");
    Target t = resolve(o, ctx);
    mq::ConsumerGroups groups(ctx.redis(), ctx.keys());
    PendingScan scan = scan_pending(groups, t, o.consumer);

    // Summary per partition and consumer, as XPENDING's summary form would give it.
    std::map<std::pair<int, std::string>, ConsumerLoad> summary;
    for (const auto& e : scan.entries) {
        auto& s = summary[{e.partition, e.consumer}];
        ++s.pending;
        s.max_idle_ms = std::max(s.max_idle_ms, e.idle_ms);
    }
    const auto total = static_cast<std::int64_t>(scan.entries.size());
    const std::size_t shown = std::min(scan.entries.size(), static_cast<std::size_t>(o.count));

    if (ctx.json()) {
        std::map<int, nlohmann::json> parts;
        for (const auto& [key, s] : summary) {
            auto& jp = parts[key.first];
            if (jp.is_null())
                jp = {{"partition", key.first},
                      {"pending", 0},
                      {"consumers", nlohmann::json::array()}};
            jp["pending"] = jp["pending"].get<std::int64_t>() + s.pending;
            jp["consumers"].push_back({{"consumer", key.second},
                                       {"pending", s.pending},
                                       {"max_idle_ms", s.max_idle_ms},
                                       {"waiting_for_retry", key.second == mq::kRetryConsumer}});
        }
        nlohmann::json jparts = nlohmann::json::array();
        for (auto& [p, jp] : parts) jparts.push_back(std::move(jp));
        nlohmann::json entries = nlohmann::json::array();
        for (std::size_t i = 0; i < shown; ++i) {
            const auto& e = scan.entries[i];
            entries.push_back({{"id", mq::entry_ref_text(e.partition, e.stream_id)},
                               {"partition", e.partition},
                               {"stream_id", e.stream_id},
                               {"consumer", e.consumer},
                               {"idle_ms", e.idle_ms},
                               {"deliveries", e.delivery_count}});
        }
        print_json({{"queue", t.queue.name},
                    {"subscription", t.subscription.name},
                    {"pending", total},
                    {"truncated", scan.truncated},
                    {"partitions", jparts},
                    {"entries", entries}});
        return;
    }
    if (total == 0) {
        std::cout << "nothing pending for subscription " << t.subscription.name << " on queue "
                  << t.queue.name << (o.consumer.empty() ? "" : " held by " + o.consumer) << '\n';
        return;
    }
    std::cout << "subscription " << t.subscription.name << " on queue " << t.queue.name << ": "
              << (scan.truncated ? "at least " : "") << total << " pending\n\n";
    Table s({"PARTITION", "CONSUMER", "PENDING", "MAX IDLE"});
    for (const auto& [key, load] : summary)
        s.add({std::to_string(key.first), consumer_text(key.second), std::to_string(load.pending),
               idle_text(load.max_idle_ms)});
    s.print();
    std::cout << '\n';
    Table t2({"ID", "CONSUMER", "IDLE", "DELIVERIES"});
    for (std::size_t i = 0; i < shown; ++i) {
        const auto& e = scan.entries[i];
        t2.add({mq::entry_ref_text(e.partition, e.stream_id), consumer_text(e.consumer),
                idle_text(e.idle_ms), std::to_string(e.delivery_count)});
    }
    t2.print();
    if (shown < scan.entries.size())
        std::cout << "(oldest " << shown << " of " << total << " shown; --limit N shows more)\n";
}

void run_claim(const PendingOptions& o, Context& ctx) {
    if (o.consumer.empty())
        throw mq::ValidationError("--consumer names who takes the entries over");
    auto refs = parse_entry_refs(o.ids);
    Target t = resolve(o, ctx);
    mq::ConsumerGroups groups(ctx.redis(), ctx.keys());

    // XCLAIM <consumer> 0 ids JUSTID (ConsumerGroups::extend): ownership moves, idle time
    // restarts and the delivery count stays. Which ids moved is read back from XPENDING,
    // since an id that was not pending is silently skipped.
    std::map<int, std::vector<std::string>> by_partition;
    for (const auto& r : refs)
        if (r.partition < t.queue.partition_count) by_partition[r.partition].push_back(r.stream_id);
    std::set<std::string> held;
    for (const auto& [p, ids] : by_partition) {
        groups.extend(t.queue, mq::consumer_group(t.subscription), o.consumer, p, ids);
        for (const auto& e :
             groups.pending(t.queue, mq::consumer_group(t.subscription), p, kScanLimit, o.consumer))
            held.insert(mq::entry_ref_text(p, e.stream_id));
    }
    std::size_t claimed = 0;
    nlohmann::json results = nlohmann::json::array();
    for (const auto& r : refs) {
        const bool ok = held.count(mq::entry_ref_text(r.partition, r.stream_id)) > 0;
        claimed += ok ? 1 : 0;
        if (ctx.json())
            results.push_back({{"id", r.text}, {"claimed", ok}});
        else if (ok)
            std::cout << "claimed " << r.text << " for " << o.consumer << '\n';
        else
            std::cout << "not pending " << r.text << '\n';
    }
    const std::size_t missing = refs.size() - claimed;
    if (ctx.json())
        print_json({{"consumer", o.consumer},
                    {"claimed", claimed},
                    {"not_pending", missing},
                    {"results", results}});
    else
        std::cout << "claimed " << claimed << " of " << refs.size() << " entr"
                  << (refs.size() == 1 ? "y" : "ies") << " for " << o.consumer << '\n';
    if (missing > 0)
        throw mq::Error(mq::ErrorCode::kNotFound,
                        std::to_string(missing) + " of " + std::to_string(refs.size()) +
                            " id(s) are not pending in subscription " + t.subscription.name +
                            "; see them with: mqctl pending " + t.queue.name + " --sub " +
                            t.subscription.name);
}

void run_ack(const PendingOptions& o, Context& ctx) {
    auto refs = parse_entry_refs(o.ids);
    Target t = resolve(o, ctx);
    mq::ConsumerGroups groups(ctx.redis(), ctx.keys());
    std::map<int, std::vector<std::string>> by_partition;
    for (const auto& r : refs)
        if (r.partition < t.queue.partition_count) by_partition[r.partition].push_back(r.stream_id);
    std::int64_t acked = 0;
    for (const auto& [p, ids] : by_partition)
        acked += groups.ack(t.queue, mq::consumer_group(t.subscription), p, ids);
    const auto requested = static_cast<std::int64_t>(refs.size());
    if (ctx.json()) {
        print_json(
            {{"acked", acked}, {"requested", requested}, {"not_pending", requested - acked}});
        return;
    }
    std::cout << "acked " << acked << " of " << requested << " entr"
              << (requested == 1 ? "y" : "ies");
    if (acked < requested) std::cout << " (" << requested - acked << " not pending)";
    std::cout << '\n';
}

void run_consumers(const PendingOptions& o, Context& ctx) {
    Target t = resolve(o, ctx);
    mq::ConsumerGroups groups(ctx.redis(), ctx.keys());
    PendingScan scan = scan_pending(groups, t, {});
    std::map<std::string, ConsumerLoad> load;
    for (const auto& e : scan.entries) {
        auto& l = load[e.consumer];
        ++l.pending;
        l.max_idle_ms = std::max(l.max_idle_ms, e.idle_ms);
        l.partitions.insert(e.partition);
    }
    if (ctx.json()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& [name, l] : load)
            out.push_back({{"consumer", name},
                           {"pending", l.pending},
                           {"max_idle_ms", l.max_idle_ms},
                           {"partitions", l.partitions},
                           {"waiting_for_retry", name == mq::kRetryConsumer}});
        print_json(out);
        return;
    }
    if (load.empty()) {
        std::cout << "no consumer holds entries of subscription " << t.subscription.name
                  << " on queue " << t.queue.name << '\n';
        return;
    }
    Table table({"CONSUMER", "PENDING", "MAX IDLE", "PARTITIONS"});
    for (const auto& [name, l] : load) {
        std::string parts;
        for (int p : l.partitions) parts += (parts.empty() ? "" : ",") + std::to_string(p);
        table.add({consumer_text(name), (scan.truncated ? ">=" : "") + std::to_string(l.pending),
                   idle_text(l.max_idle_ms), parts});
    }
    table.print();
}

void setup_pending(CLI::App& app, Context& ctx) {
    auto add_target = [](CLI::App* cmd, PendingOptions& o) {
        cmd->add_option("queue", o.queue, "Queue name")->required();
        cmd->add_option("-s,--sub", o.subscription, "Subscription name")->required();
    };

    auto pending_opts = std::make_shared<PendingOptions>();
    auto* pending =
        app.add_subcommand("pending", "Show a subscription's in-flight entries, oldest first");
    add_target(pending, *pending_opts);
    pending->add_option("--consumer", pending_opts->consumer, "Only entries this consumer holds");
    pending->add_option("-n,--limit", pending_opts->count,
                        "List at most this many entries (default 100)");
    // Spellings before 0.2, kept for scripts: -c is --config in mq-worker and mq-api.
    pending->add_option("-c", pending_opts->consumer)->group("");
    pending->add_option("--count", pending_opts->count)->group("");
    pending->callback([pending_opts, &ctx] { run_pending(*pending_opts, ctx); });

    auto claim_opts = std::make_shared<PendingOptions>();
    auto* claim = app.add_subcommand("claim", "Move pending entries to another consumer");
    add_target(claim, *claim_opts);
    claim->add_option("--consumer", claim_opts->consumer, "Consumer that takes the entries over");
    claim->add_option("-c", claim_opts->consumer)->group("");  // before 0.2
    claim->add_option("ids", claim_opts->ids, "Entry ids (partition:stream-id) from mqctl pending")
        ->required();
    claim->callback([claim_opts, &ctx] { run_claim(*claim_opts, ctx); });

    auto ack_opts = std::make_shared<PendingOptions>();
    auto* ack = app.add_subcommand(
        "ack", "Acknowledge pending entries by hand (they are not delivered again)");
    add_target(ack, *ack_opts);
    ack->add_option("ids", ack_opts->ids, "Entry ids (partition:stream-id) from mqctl pending")
        ->required();
    ack->callback([ack_opts, &ctx] { run_ack(*ack_opts, ctx); });

    auto consumers_opts = std::make_shared<PendingOptions>();
    auto* consumers =
        app.add_subcommand("consumers", "Show which consumers hold a subscription's entries");
    add_target(consumers, *consumers_opts);
    consumers->callback([consumers_opts, &ctx] { run_consumers(*consumers_opts, ctx); });
}

}  // namespace mqctl
