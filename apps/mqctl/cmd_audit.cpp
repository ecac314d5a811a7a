// mqctl audit list: the audit log of admin actions (docs/audit.md), newest first, one page
// at a time. Filters and paging are common/'s (mq::audit::parse_query); this file prints.
#include <iostream>
#include <map>

#include "commands.hpp"
#include "mq/audit/audit_log.hpp"
#include "mq/core/time.hpp"
#include "output.hpp"

namespace mqctl {

struct AuditListOptions {
    std::string since;
    std::string action;
    std::string target;
    std::string limit;
    std::string cursor;
    bool all_tenants = false;
};

namespace {

std::string or_dash(const nlohmann::json& v) {
    if (v.is_null()) return "-";
    return v.is_string() ? v.get<std::string>() : v.dump();
}

// "field: old -> new" for an update, else the object's keys for a create or delete.
std::string change_summary(const nlohmann::json& change) {
    const auto& before = change.value("before", nlohmann::json());
    const auto& after = change.value("after", nlohmann::json());
    std::string out;
    if (before.is_object() && after.is_object()) {
        for (auto it = after.begin(); it != after.end(); ++it) {
            if (!out.empty()) out += ", ";
            out += it.key() + ": " + or_dash(before.value(it.key(), nlohmann::json())) + " -> " +
                   or_dash(it.value());
        }
        return out.empty() ? "-" : out;
    }
    if (after.is_object() && after.contains("name")) return "created";
    if (before.is_object() && after.is_null()) return "deleted";
    if (after.is_object()) {
        for (auto it = after.begin(); it != after.end(); ++it) {
            if (it.value().is_array() || it.value().is_object()) continue;
            if (!out.empty()) out += ", ";
            out += it.key() + ": " + or_dash(it.value());
        }
    }
    return out.empty() ? "-" : out;
}

}  // namespace

void run_audit_list(const AuditListOptions& o, Context& ctx) {
    auto query = mq::audit::parse_query({{"since", o.since},
                                         {"action", o.action},
                                         {"target", o.target},
                                         {"limit", o.limit},
                                         {"cursor", o.cursor}},
                                        mq::now_ms());
    if (!o.all_tenants) query.tenant = ctx.tenant();
    auto page = mq::audit::list(ctx.db(), query);
    if (ctx.json()) {
        nlohmann::json records = nlohmann::json::array();
        for (const auto& r : page.records) records.push_back(mq::audit::to_json(r));
        print_json({{"records", std::move(records)},
                    {"next_cursor", page.next_cursor.empty() ? nlohmann::json()
                                                             : nlohmann::json(page.next_cursor)}});
        return;
    }
    Table table({"TIME", "TENANT", "PRINCIPAL", "SOURCE", "ACTION", "TARGET", "CHANGE"});
    for (const auto& r : page.records)
        table.add({r.at, r.tenant.empty() ? "-" : r.tenant, r.principal, r.source, r.action,
                   r.target, change_summary(r.change)});
    table.print();
    if (!page.next_cursor.empty())
        std::cout << "more: mqctl audit list --cursor " << page.next_cursor
                  << " (with the same filters)\n";
}

void setup_audit(CLI::App& app, Context& ctx) {
    auto* audit =
        app.add_subcommand("audit", "Read the audit log of admin actions (it cannot be changed)");
    audit->require_subcommand(1);
    auto opts = std::make_shared<AuditListOptions>();
    auto* list = audit->add_subcommand("list", "List admin actions of the tenant, newest first");
    list->add_option("--since", opts->since,
                     "Only actions since this long ago (1h, 7d) or since an RFC 3339 time");
    list->add_option("--action", opts->action,
                     "Only this action (queue.delete) or class of actions (queue)");
    list->add_option("--target", opts->target, "Only actions on this queue, subscription, ...");
    list->add_option("-n,--limit", opts->limit,
                     "Rows per page (default " + std::to_string(mq::audit::kDefaultPageSize) +
                         ", at most " + std::to_string(mq::audit::kMaxPageSize) + ")");
    list->add_option("--cursor", opts->cursor, "Next page: the cursor the previous page printed");
    list->add_flag("--all-tenants", opts->all_tenants,
                   "Every tenant's actions (an operator's view), not only --tenant's");
    list->callback([opts, &ctx] { run_audit_list(*opts, ctx); });
}

}  // namespace mqctl
