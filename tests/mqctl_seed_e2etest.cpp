// mqctl publish --batch reads lines shaped like the seeds' envelopes (docs/seed-compat.md):
// camelCase fields and a tenantId that must name the queue's tenant.
#include <catch2/catch.hpp>

#include "harness.hpp"
#include "mqctl_shell.hpp"

TEST_CASE("mqctl_batch_takes_seed_lines_and_refuses_a_foreign_tenant_id", "[mqctl][seed]") {
    mqtest::MqctlShell sh;
    sh.create_queue({"orders"});
    const std::string own = "{\"payload\":{\"n\":1},\"tenantId\":\"" + sh.tenant() +
                            "\",\"idempotencyKey\":\"k1\",\"traceId\":\"t-1\"}\n";
    auto ok = sh.run({"publish", "orders", "--batch", "-"}, {}, own);
    INFO(ok.out << ok.err);
    CHECK(ok.status == 0);
    CHECK(sh.xlen("orders", 0) == 1);

    auto foreign = sh.run({"publish", "orders", "--batch", "-"}, {},
                          "{\"payload\":{\"n\":2},\"tenantId\":\"someone-else\"}\n");
    INFO(foreign.out << foreign.err);
    CHECK(foreign.status == 2);
    CHECK(foreign.err.find("tenantId") != std::string::npos);
    CHECK(sh.xlen("orders", 0) == 1);  // nothing more stored
}
