// mqctl outbox install|relay|list|retry|discard: the transactional outbox (docs/outbox.md)
// of one database: mq's own (DATABASE_URL) or a service's (--outbox-url). Rows publish as
// the tenant of --tenant / MQ_TENANT.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.hpp"
#include "confirm.hpp"
#include "mq/outbox/outbox.hpp"
#include "mq/queue/catalog.hpp"
#include "output.hpp"

namespace mqctl {

struct OutboxOptions {
    std::string url;  ///< --outbox-url; empty: DATABASE_URL
    bool once = false;
    bool failed = false;
    bool all = false;
    bool yes = false;
    std::int64_t after = 0;
    int limit = 100;
    std::vector<std::int64_t> ids;
};

namespace {

std::string source_url(const OutboxOptions& o, Context& ctx) {
    return o.url.empty() ? ctx.config().database_url : o.url;
}

void run_install(const OutboxOptions& o, Context& ctx) {
    mq::pg::Database db(source_url(o, ctx));
    mq::OutboxStore(db).install();
    if (ctx.json())
        print_json({{"installed", true}, {"database", mq::pg::describe_url(db.url())}});
    else
        std::cout << "outbox installed in the database at " << mq::pg::describe_url(db.url())
                  << " (schema mq: mq.outbox, mq.enqueue)\n";
}

mq::OutboxRelayOptions relay_options(const OutboxOptions& o, Context& ctx) {
    const mq::Config& c = ctx.config();
    mq::OutboxRelayOptions r;
    r.source = {ctx.tenant(), source_url(o, ctx)};
    r.database_url = c.database_url;
    r.redis = mq::redis::endpoint_from_config(c);
    r.keys = ctx.keys();
    r.limits.max_message_size = c.max_message_size;
    r.keyring_file = c.keyring_file;
    r.batch_size = c.outbox.batch_size;
    r.poll_interval = c.outbox.poll_interval;
    return r;
}

void print_pass(const mq::OutboxPass& p, Context& ctx) {
    if (ctx.json()) {
        print_json({{"relayed", p.relayed},
                    {"duplicates", p.duplicates},
                    {"failed", p.failed},
                    {"deferred", p.deferred}});
        return;
    }
    std::cout << "relayed " << p.relayed << " row(s)";
    if (p.duplicates > 0) std::cout << " (" << p.duplicates << " already published)";
    std::cout << ", " << p.failed << " failed, " << p.deferred << " deferred\n";
    if (p.failed > 0)
        std::cout << "see them with `mqctl outbox list --failed`; fix the cause, then `mqctl "
                     "outbox retry`\n";
}

void run_relay(const OutboxOptions& o, Context& ctx) {
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    if (!o.once) pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // before any thread
    mq::OutboxRelay relay(relay_options(o, ctx));
    if (o.once) {
        print_pass(relay.drain(), ctx);
        return;
    }
    // The foreground loop: fail fast (exit 3/5) on a missing outbox or a backend that is
    // down at start, then ride out outages like mq-worker does.
    mq::pg::Database db(source_url(o, ctx));
    mq::OutboxStore(db).require_installed();
    mq::Catalog(ctx.db()).require_tenant(ctx.tenant());  // a mistyped --tenant: exit 3 now
    spdlog::set_level(spdlog::level::info);
    spdlog::info("outbox relay for tenant {} from {}", ctx.tenant(),
                 mq::pg::describe_url(db.url()));
    relay.start();
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("{}: stopping the outbox relay", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    relay.stop();
    auto s = relay.stats();
    spdlog::info("outbox relay stopped: relayed {}, failed {}", s.relayed, s.failed);
}

void run_list(const OutboxOptions& o, Context& ctx) {
    mq::pg::Database db(source_url(o, ctx));
    mq::OutboxStore store(db);
    auto rows = store.list(o.failed, o.after, o.limit);
    if (ctx.json()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& r : rows)
            out.push_back({{"id", r.id},
                           {"tenant", r.tenant},
                           {"queue", r.queue},
                           {"payload_bytes", r.payload_bytes},
                           {"key", r.key},
                           {"created_at", r.created_at},
                           {"attempts", r.attempts},
                           {"next_attempt_at", r.next_attempt_at},
                           {"failed_at", r.failed_at},
                           {"last_error", r.last_error}});
        print_json(out);
        return;
    }
    Table t({"ID", "QUEUE", "BYTES", "CREATED", "ATTEMPTS", "STATE", "LAST ERROR"});
    for (const auto& r : rows)
        t.add({std::to_string(r.id), r.queue, std::to_string(r.payload_bytes), r.created_at,
               std::to_string(r.attempts), r.failed_at.empty() ? "pending" : "failed",
               mq::printable(r.last_error)});
    t.print();
    if (static_cast<int>(rows.size()) == o.limit)
        std::cout << "more rows may follow: --after " << rows.back().id << '\n';
}

void check_selection(const OutboxOptions& o, const char* what) {
    if (o.all == !o.ids.empty())
        throw mq::ValidationError(std::string("give the ids of the failed rows to ") + what +
                                  ", or --all");
}

void run_retry(const OutboxOptions& o, Context& ctx) {
    check_selection(o, "retry");
    mq::pg::Database db(source_url(o, ctx));
    auto n = mq::OutboxStore(db).retry(o.ids);
    if (!o.ids.empty() && n == 0)
        throw mq::Error(mq::ErrorCode::kNotFound, "none of the given ids is a failed outbox row");
    if (ctx.json())
        print_json({{"retried", n}});
    else
        std::cout << n << " failed row(s) are pending again\n";
}

void run_discard(const OutboxOptions& o, Context& ctx) {
    check_selection(o, "discard");
    mq::pg::Database db(source_url(o, ctx));
    mq::OutboxStore store(db);
    store.require_installed();
    confirm(o.all ? "Delete every failed outbox row? Their messages are never published."
                  : "Delete " + std::to_string(o.ids.size()) +
                        " failed outbox row(s)? Their messages are never published.",
            o.yes);
    auto n = store.discard(o.ids);
    if (!o.ids.empty() && n == 0)
        throw mq::Error(mq::ErrorCode::kNotFound, "none of the given ids is a failed outbox row");
    if (ctx.json())
        print_json({{"discarded", n}});
    else
        std::cout << "discarded " << n << " failed row(s)\n";
}

void add_url(CLI::App* cmd, OutboxOptions& o) {
    cmd->add_option("--outbox-url", o.url,
                    "The database holding mq.outbox (a service's own); default DATABASE_URL");
}

}  // namespace

void setup_outbox(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand(
        "outbox", "Transactional outbox: publish rows services commit with mq.enqueue()");
    cmd->require_subcommand(1);
    auto o = std::make_shared<OutboxOptions>();

    auto* install = cmd->add_subcommand(
        "install", "Create schema mq, mq.outbox and mq.enqueue() in a service's database");
    add_url(install, *o);
    install->callback([o, &ctx] { run_install(*o, ctx); });

    auto* relay = cmd->add_subcommand(
        "relay", "Publish committed outbox rows for --tenant (a loop, or --once)");
    add_url(relay, *o);
    relay->add_flag("--once", o->once, "Publish every due row, then exit");
    relay->callback([o, &ctx] { run_relay(*o, ctx); });

    auto* list = cmd->add_subcommand("list", "Rows waiting in the outbox, or --failed ones");
    add_url(list, *o);
    list->add_flag("--failed", o->failed, "Only rows that failed (unknown queue, refused...)");
    list->add_option("--after", o->after, "Rows after this id (paging)")
        ->check(CLI::NonNegativeNumber);
    list->add_option("-n,--limit", o->limit, "At most this many rows (1-1000)")
        ->check(CLI::Range(1, 1000));
    list->callback([o, &ctx] { run_list(*o, ctx); });

    auto* retry = cmd->add_subcommand("retry", "Make failed rows pending again");
    add_url(retry, *o);
    retry->add_option("id", o->ids, "Failed row ids")->check(CLI::PositiveNumber);
    retry->add_flag("--all", o->all, "Every failed row");
    retry->callback([o, &ctx] { run_retry(*o, ctx); });

    auto* discard = cmd->add_subcommand("discard", "Delete failed rows without publishing them");
    add_url(discard, *o);
    discard->add_option("id", o->ids, "Failed row ids")->check(CLI::PositiveNumber);
    discard->add_flag("--all", o->all, "Every failed row");
    discard->add_flag("-y,--yes", o->yes, "Do not ask for confirmation");
    discard->callback([o, &ctx] { run_discard(*o, ctx); });
}

}  // namespace mqctl
