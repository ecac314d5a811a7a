// mqctl publish --traceparent/--tracestate: the same W3C fields mq-api stores
// (docs/wire-format.md, "Trace context"), and an operator's malformed value refused with
// exit 2 before anything is written.
#include <catch2/catch.hpp>

#include "harness.hpp"
#include "mqctl_shell.hpp"

namespace {

const std::string kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string kParent = "00f067aa0ba902b7";

class Shell : public mqtest::MqctlShell {
  public:
    std::vector<std::map<std::string, std::string>> entries(const std::string& queue) {
        std::vector<std::map<std::string, std::string>> out;
        auto r = redis().redis().command({"XRANGE", stream(queue, 0), "-", "+"});
        for (const auto& e : r.elements) {
            std::map<std::string, std::string> fields;
            const auto& f = e.elements.at(1).elements;
            for (std::size_t i = 0; i + 1 < f.size(); i += 2) fields[f[i].str] = f[i + 1].str;
            out.push_back(std::move(fields));
        }
        return out;
    }
};

}  // namespace

TEST_CASE("mqctl_publish_traceparent_stores_the_w3c_fields", "[mqctl][trace]") {
    Shell sh;
    sh.create_queue({"orders"});
    sh.ok({"publish", "orders", "traced", "--traceparent", "00-" + kTrace + "-" + kParent + "-01",
           "--tracestate", "rojo=1, congo=2"});
    sh.ok({"publish", "orders", "plain"});
    auto entries = sh.entries("orders");
    REQUIRE(entries.size() == 2);
    CHECK(entries[0]["tr"] == kTrace);
    CHECK(entries[0]["sp"] == kParent);
    CHECK(entries[0]["tf"] == "01");
    CHECK(entries[0]["tst"] == "rojo=1,congo=2");
    for (const char* f : {"tr", "sp", "tf", "tst"}) CHECK(entries[1].count(f) == 0);
}

TEST_CASE("mqctl_publish_refuses_a_malformed_traceparent_or_tracestate_with_exit_2",
          "[mqctl][trace]") {
    Shell sh;
    sh.create_queue({"orders"});
    const std::vector<std::vector<std::string>> refused = {
        {"--traceparent", "00-" + std::string(32, '0') + "-" + kParent + "-01"},
        {"--traceparent", "garbage"},
        {"--traceparent", "00-" + kTrace + "-" + kParent + "-01", "--tracestate", "a=1,a=2"},
        {"--tracestate", "rojo=1"},  // without a traceparent
        {"--batch", "-", "--traceparent", "00-" + kTrace + "-" + kParent + "-01"},
    };
    for (const auto& extra : refused) {
        std::vector<std::string> args{"publish", "orders", "x"};
        if (extra[0] == "--batch") args = {"publish", "orders"};
        args.insert(args.end(), extra.begin(), extra.end());
        auto r = sh.run(args, {}, "{\"payload\":\"x\"}\n");
        INFO(r.err);
        CHECK(r.status == 2);
    }
    CHECK(sh.xlen("orders", 0) == 0);
}
