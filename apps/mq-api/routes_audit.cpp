// GET /api/v1/mq/audit: the audit log of admin actions (docs/audit.md), newest first, one
// page at a time (?cursor=). A tenant-admin reads its own tenant's rows only, whatever the
// filters say; an admin token reads every tenant's with ?scope=all (one tenant's with
// ?scope=all&tenant=NAME), as for the metrics.
// There is no route that changes the log.

#include "mq/audit/audit_log.hpp"
#include "mq/core/time.hpp"
#include "routes.hpp"

namespace mqapi {

void add_audit_routes(Router& router, App& app) {
    router.add(http::verb::get, "/api/v1/mq/audit", Auth::kBearer, [&app](Request& req) {
        only_query_parameters(req.query,
                              {"scope", "tenant", "since", "action", "target", "limit", "cursor"});
        auto scope = req.query.count("scope") ? req.query.at("scope") : "";
        if (!scope.empty() && scope != "tenant" && scope != "all")
            throw mq::ValidationError("scope must be \"tenant\" or \"all\"", {{"field", "scope"}});
        mq::authorize(*req.principal,
                      scope == "all" ? mq::Action::kReadAuditAll : mq::Action::kReadAudit);
        auto query = mq::audit::parse_query(req.query, mq::now_ms());
        // ?tenant= narrows scope=all to one tenant; without scope=all the caller's own
        // tenant is read, whatever ?tenant= says.
        if (scope != "all")
            query.tenant = req.tenant();
        else if (auto t = req.query.find("tenant"); t != req.query.end() && !t->second.empty())
            query.tenant = t->second;
        auto db = app.pg().acquire();
        auto page = mq::audit::list(*db, query);
        nlohmann::json records = nlohmann::json::array();
        for (const auto& r : page.records) records.push_back(mq::audit::to_json(r));
        return json_response(
            200, {{"records", std::move(records)},
                  {"next_cursor", page.next_cursor.empty() ? nlohmann::json()
                                                           : nlohmann::json(page.next_cursor)}});
    });
}

}  // namespace mqapi
