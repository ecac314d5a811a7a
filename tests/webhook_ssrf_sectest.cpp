// Webhook destinations (docs/security.md, "Webhook destinations (SSRF)"): the address
// matrix (IPv4, IPv6, legacy spellings, embedded IPv4), the creation check through mq-api
// (422 MQ_WEBHOOK_DESTINATION_FORBIDDEN), the connect-time check against DNS rebinding,
// redirects not followed, and an API webhook refused by a running worker while an
// operator's is delivered. No traffic leaves loopback: other addresses are only offered to
// the validator and to a test resolver, never connected to.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "api_process.hpp"
#include "child_process.hpp"
#include "eventually.hpp"
#include "harness.hpp"
#include "http_sink.hpp"
#include "mq/config/config.hpp"
#include "mq/core/ip_address.hpp"
#include "mq/deliver/destination_policy.hpp"
#include "mq/deliver/webhook.hpp"
#include "mq/error.hpp"
#include "mq/publish/publisher.hpp"
#include "mqctl_shell.hpp"

using namespace std::chrono_literals;
using mqtest::eventually;

namespace {

// The reason check_url gives, or "" when the URL passes.
std::string refusal_of(const mq::DestinationPolicy& p, const std::string& url) {
    try {
        p.check_url(url);
        return "";
    } catch (const mq::Error& e) {
        REQUIRE(e.code() == mq::ErrorCode::kWebhookDestinationForbidden);
        REQUIRE(e.details().value("field", "") == "url");
        std::string reason = e.details().value("reason", "");
        REQUIRE(!reason.empty());
        return reason;
    }
}

// A resolver for made-up names; every call is counted. No DNS query leaves the process.
struct FakeDns {
    std::map<std::string, std::vector<std::string>> names;
    mq::HostResolver resolver() {
        return [this](const std::string& host) {
            std::vector<mq::IpAddress> out;
            auto it = names.find(host);
            if (it != names.end())
                for (const auto& a : it->second) out.push_back(*mq::parse_ip(a));
            return out;
        };
    }
};

mq::Delivery delivery(const std::string& id) {
    mq::Delivery d;
    d.message.id = id;
    d.message.payload = "{\"n\": 1}";
    d.tenant = "t";
    d.queue = "q";
    d.subscription = "s";
    return d;
}

}  // namespace

TEST_CASE("address_matrix_refuses_every_non_public_range_in_v4_and_v6", "[security][ssrf]") {
    struct Case {
        const char* address;
        const char* reason;  // "" = public
    };
    const Case cases[] = {
        {"127.0.0.1", "loopback"},
        {"127.255.255.254", "loopback"},
        {"10.1.2.3", "private"},
        {"172.16.0.1", "private"},
        {"172.31.255.255", "private"},
        {"192.168.0.1", "private"},
        {"100.64.0.1", "carrier-grade NAT"},
        {"100.127.255.255", "carrier-grade NAT"},
        {"169.254.169.254", "link-local"},
        {"0.0.0.0", "unspecified"},
        {"0.1.2.3", "unspecified"},
        {"255.255.255.255", "broadcast"},
        {"224.0.0.1", "multicast"},
        {"239.255.255.250", "multicast"},
        {"240.0.0.1", "reserved"},
        {"192.0.2.10", "documentation"},
        {"198.51.100.7", "documentation"},
        {"203.0.113.9", "documentation"},
        {"198.18.0.1", "benchmarking"},
        {"192.0.0.8", "IETF protocol assignments"},
        {"8.8.8.8", ""},
        {"93.184.216.34", ""},
        {"172.32.0.1", ""},
        {"100.128.0.1", ""},
        {"::", "unspecified"},
        {"::1", "loopback"},
        {"fe80::1", "link-local"},
        {"febf:ffff::1", "link-local"},
        {"fc00::1", "unique local"},
        {"fd12:3456::1", "unique local"},
        {"fec0::1", "site-local"},
        {"ff02::1", "multicast"},
        {"2001:db8::1", "documentation"},
        {"3fff::1", "documentation"},
        {"100::1", "discard-only"},
        {"2001::1", "Teredo"},
        {"::ffff:127.0.0.1", "IPv4-mapped IPv6 of a loopback address (127.0.0.1)"},
        {"::ffff:7f00:1", "IPv4-mapped IPv6 of a loopback address"},
        {"::ffff:169.254.169.254", "link-local"},
        {"::ffff:10.0.0.1", "private"},
        {"::127.0.0.1", "IPv4-compatible IPv6 of a loopback"},
        {"::8.8.8.8", "IPv4-compatible IPv6 (deprecated)"},
        {"64:ff9b::10.0.0.1", "NAT64 of a private address (10.0.0.1)"},
        {"64:ff9b::127.0.0.1", "NAT64 of a loopback"},
        {"64:ff9b:1::1", "local-use NAT64"},
        {"2002:7f00:1::1", "6to4 of a loopback"},
        {"2002:a00:1::1", "6to4 of a private"},
        {"4000::1", "reserved"},
        {"::ffff:8.8.8.8", ""},
        {"64:ff9b::8.8.8.8", ""},
        {"2606:4700:4700::1111", ""},
        {"2001:4860:4860::8888", ""},
    };
    const mq::DestinationPolicy strict;
    for (const auto& c : cases) {
        INFO(c.address);
        auto ip = mq::parse_ip(c.address);
        REQUIRE(ip);
        const std::string why = mq::special_purpose(*ip);
        if (std::string(c.reason).empty()) {
            CHECK(why.empty());
            CHECK(strict.refusal(*ip).empty());
        } else {
            CHECK(why.find(c.reason) != std::string::npos);
            CHECK(strict.refusal(*ip).find(c.reason) != std::string::npos);
        }
    }
}

TEST_CASE("legacy_ipv4_spellings_are_read_as_libc_and_curl_read_them", "[security][ssrf]") {
    const std::pair<const char*, const char*> same[] = {
        {"2130706433", "127.0.0.1"},   {"0x7f.1", "127.0.0.1"},
        {"017700000001", "127.0.0.1"}, {"127.1", "127.0.0.1"},
        {"0x7f000001", "127.0.0.1"},   {"0177.0.0.1", "127.0.0.1"},
        {"127.0.1", "127.0.0.1"},      {"0", "0.0.0.0"},
        {"0x0a.0.0.1", "10.0.0.1"},    {"169.254.43518", "169.254.169.254"},
        {"127.0.0.1.", "127.0.0.1"},   {"0XA9FEA9FE", "169.254.169.254"},
    };
    for (const auto& [text, want] : same) {
        INFO(text);
        auto ip = mq::parse_ipv4_any_spelling(text);
        REQUIRE(ip);
        CHECK(ip->to_string() == want);
        CHECK(mq::ends_in_number(text));
    }
    for (const char* bad : {"0x100000000", "256.1.1.1", "1.2.3.4.5", "08.1.1.1", "1..1", "0xg.1",
                            "4294967296", "1.16777216"}) {
        INFO(bad);
        CHECK_FALSE(mq::parse_ipv4_any_spelling(bad));
    }
    CHECK_FALSE(mq::ends_in_number("example.com"));
    CHECK_FALSE(mq::ends_in_number("1.example"));
    CHECK(mq::ends_in_number("example.0x10"));
}

TEST_CASE("webhook_urls_to_internal_addresses_are_refused_in_every_spelling", "[security][ssrf]") {
    FakeDns dns;
    dns.names["hooks.example.test"] = {"93.184.216.34"};
    dns.names["v6.example.test"] = {"2606:4700:4700::1111"};
    dns.names["internal.example.test"] = {"10.0.0.5"};
    dns.names["metadata.example.test"] = {"169.254.169.254"};
    dns.names["mixed.example.test"] = {"93.184.216.34", "127.0.0.1"};
    dns.names["mapped.example.test"] = {"::ffff:192.168.1.1"};
    const mq::DestinationPolicy policy({}, dns.resolver());

    const std::pair<const char*, const char*> refused[] = {
        {"http://127.0.0.1/hook", "loopback"},
        {"http://127.0.0.1:6379/", "loopback"},
        {"https://10.0.0.1/x", "private"},
        {"http://169.254.169.254/latest/meta-data/", "link-local"},
        {"http://100.64.1.1/", "carrier-grade NAT"},
        {"http://0.0.0.0:5432/", "unspecified"},
        {"http://0/", "unspecified"},
        {"http://255.255.255.255/", "broadcast"},
        {"http://224.0.0.251/", "multicast"},
        {"http://2130706433/", "127.0.0.1"},
        {"http://0x7f.1/", "127.0.0.1"},
        {"http://017700000001/", "127.0.0.1"},
        {"http://127.1/", "127.0.0.1"},
        {"http://0x7f000001:8080/", "loopback"},
        {"http://0251.0376.0251.0376/", "169.254.169.254"},
        {"http://127.0.0.1./", "loopback"},
        {"http://[::1]/", "loopback"},
        {"http://[::]/", "unspecified"},
        {"http://[::ffff:127.0.0.1]/", "IPv4-mapped"},
        {"http://[::ffff:7f00:1]:80/", "IPv4-mapped"},
        {"http://[::ffff:a9fe:a9fe]/", "link-local"},
        {"http://[64:ff9b::a00:1]/", "NAT64"},
        {"http://[2002:7f00:1::]/", "6to4"},
        {"http://[fe80::1]/", "link-local"},
        {"http://[fd00::1]/", "unique local"},
        {"http://[ff02::1]/", "multicast"},
        {"http://[fe80::1%25eth0]/", "zone id"},
        {"http://localhost/", "loopback"},
        {"http://LOCALHOST./", "loopback"},
        {"http://api.localhost:3010/", "loopback"},
        {"http://internal.example.test/", "10.0.0.5 is private"},
        {"http://metadata.example.test/", "link-local"},
        {"http://mixed.example.test/", "127.0.0.1 is loopback"},
        {"http://mapped.example.test/", "IPv4-mapped"},
        {"http://1.2.3.4.5/", "neither a host name nor an address"},
        {"http://0x100000000/", "neither a host name nor an address"},
        {"http://%31%32%37.0.0.1/", ""},
        {"ftp://93.184.216.34/", "only http and https"},
        {"file:///etc/passwd", ""},
        {"gopher://93.184.216.34:6379/_PING", ""},
        {"dict://93.184.216.34:11211/", ""},
        {"http://user:secret@93.184.216.34/", "user information"},
        {"http://93.184.216.34@127.0.0.1/", ""},
        {"http://hooks.example.test\n/", "control characters"},
        {"not a url", ""},
    };
    for (const auto& [url, reason] : refused) {
        INFO(url);
        const std::string why = refusal_of(policy, url);
        CHECK(!why.empty());
        CHECK(why.find(reason) != std::string::npos);
    }
    for (const char* url :
         {"https://hooks.example.test/mq", "http://hooks.example.test:8080/a?b=c@d",
          "https://v6.example.test/", "https://93.184.216.34/", "http://[2606:4700:4700::1111]/",
          "https://8.8.8.8:443/hook", "http://[::ffff:8.8.8.8]/",
          // Does not resolve now: the connect-time check is what holds.
          "https://unknown.example.test/"}) {
        INFO(url);
        CHECK(refusal_of(policy, url).empty());
    }

    // An operator's allow-list opens exactly its ranges, in every spelling of them.
    const mq::DestinationPolicy allowing(mq::parse_cidr_list("127.0.0.0/8, fd00::/8", "test"),
                                         dns.resolver());
    for (const char* url : {"http://127.0.0.1:9/", "http://0x7f.1/", "http://[::ffff:127.0.0.1]/",
                            "http://[fd00::5]/", "http://localhost.example.test/"})
        CHECK(refusal_of(allowing, url).empty());
    CHECK(refusal_of(allowing, "http://10.0.0.1/").find("private") != std::string::npos);
    CHECK(refusal_of(allowing, "http://[fe80::1]/").find("link-local") != std::string::npos);
    // localhost names stay refused: an allow-list names addresses, not names.
    CHECK(!refusal_of(allowing, "http://localhost/").empty());
}

TEST_CASE("webhook_allowed_cidrs_is_checked_when_the_configuration_loads", "[security][ssrf]") {
    mq::Config c;
    mq::apply_setting(c, "WEBHOOK_ALLOWED_CIDRS", "127.0.0.0/8,10.1.0.0/16 fd00::/8", "test");
    REQUIRE(c.webhook_allowed_cidrs.size() == 3);
    CHECK(c.webhook_allowed_cidrs[1].to_string() == "10.1.0.0/16");
    mq::apply_setting(c, "WEBHOOK_ALLOWED_CIDRS", "", "test");
    CHECK(c.webhook_allowed_cidrs.empty());
    for (const char* bad : {"10.0.0.0/33", "localhost", "10.0.0/8", "fd00::/129", "10.0.0.0/"}) {
        INFO(bad);
        try {
            mq::apply_setting(c, "WEBHOOK_ALLOWED_CIDRS", bad, "environment");
            FAIL("accepted");
        } catch (const mq::ValidationError& e) {
            CHECK(std::string(e.what()).find("WEBHOOK_ALLOWED_CIDRS") != std::string::npos);
        }
    }
    auto env = std::map<std::string, std::string>{{"MQ_ALLOW_OPERATOR_HANDLERS", "maybe"}};
    CHECK_THROWS_AS(mq::load_config("", env), mq::ValidationError);
}

TEST_CASE("dns_rebinding_to_loopback_is_refused_at_connect_time_and_the_sink_gets_nothing",
          "[security][ssrf]") {
    mqtest::HttpSink sink;
    // Public when the URL is checked, loopback when the worker connects.
    std::atomic<int> lookups{0};
    auto rebinding = [&lookups](const std::string& host) {
        std::vector<mq::IpAddress> out;
        if (host == "rebind.example.test")
            out.push_back(*mq::parse_ip(lookups++ == 0 ? "93.184.216.34" : "127.0.0.1"));
        return out;
    };
    const std::string url = "http://rebind.example.test:" + std::to_string(sink.port()) + "/hook";
    auto policy = std::make_shared<const mq::DestinationPolicy>(std::vector<mq::Cidr>{}, rebinding);
    REQUIRE_NOTHROW(policy->check_url(url));  // at creation: a public address

    mq::WebhookConfig c;
    c.url = url;
    c.timeout = 3s;
    c.destination_policy = policy;
    mq::WebhookHandler h(c);
    for (int attempt = 1; attempt <= 2; ++attempt) {
        auto r = h.deliver(delivery("m-" + std::to_string(attempt)));
        INFO(r.error);
        CHECK(r.outcome == mq::DeliveryOutcome::kRetry);
        CHECK(r.error.find("webhook destination refused: 127.0.0.1 is loopback") !=
              std::string::npos);
    }
    CHECK(lookups >= 3);
    std::this_thread::sleep_for(200ms);
    CHECK(sink.request_count() == 0);
    CHECK(sink.connections_accepted() == 0);

    // The same pinned name with loopback allowed reaches the sink: the refusal above was
    // the policy's, not a failing name.
    c.destination_policy = std::make_shared<const mq::DestinationPolicy>(
        mq::parse_cidr_list("127.0.0.0/8", "test"), rebinding);
    mq::WebhookHandler allowed(c);
    auto ok = allowed.deliver(delivery("m-3"));
    INFO(ok.error);
    CHECK(ok.outcome == mq::DeliveryOutcome::kAck);
    CHECK(sink.request_count() == 1);
}

TEST_CASE("a_policed_webhook_never_opens_a_connection_to_a_refused_literal_address",
          "[security][ssrf]") {
    mqtest::HttpSink sink;
    for (const std::string host : {"127.0.0.1", "0x7f.1", "2130706433", "[::ffff:127.0.0.1]"}) {
        INFO(host);
        mq::WebhookConfig c;
        c.url = "http://" + host + ":" + std::to_string(sink.port()) + "/hook";
        c.timeout = 3s;
        c.destination_policy = std::make_shared<const mq::DestinationPolicy>();
        auto r = mq::WebhookHandler(c).deliver(delivery("m"));
        INFO(r.error);
        CHECK(r.outcome == mq::DeliveryOutcome::kRetry);
        CHECK(r.error.find("webhook destination refused") != std::string::npos);
    }
    std::this_thread::sleep_for(200ms);
    CHECK(sink.connections_accepted() == 0);
    // An operator's webhook (no policy) to the same sink is delivered.
    mq::WebhookConfig trusted;
    trusted.url = sink.url("/hook");
    CHECK(mq::WebhookHandler(trusted).deliver(delivery("m")).outcome == mq::DeliveryOutcome::kAck);
    CHECK(sink.request_count() == 1);
}

TEST_CASE("a_redirect_is_not_followed_even_to_another_loopback_path", "[security][ssrf]") {
    mqtest::HttpSink sink;
    sink.set_handler([&sink](const mqtest::RecordedRequest& r) {
        mqtest::SinkResponse res;
        if (r.target == "/hook") {
            res.status = 302;
            res.headers["Location"] = sink.url("/elsewhere");
        }
        return res;
    });
    for (bool policed : {false, true}) {
        INFO("policed " << policed);
        sink.clear();
        mq::WebhookConfig c;
        c.url = sink.url("/hook");
        if (policed)
            c.destination_policy = std::make_shared<const mq::DestinationPolicy>(
                mq::parse_cidr_list("127.0.0.0/8", "test"));
        auto r = mq::WebhookHandler(c).deliver(delivery("m"));
        INFO(r.error);
        CHECK(r.outcome == mq::DeliveryOutcome::kRetry);
        CHECK(r.error.find("HTTP 302") != std::string::npos);
        CHECK(r.error.find("not followed") != std::string::npos);
        std::this_thread::sleep_for(100ms);
        auto got = sink.requests();
        REQUIRE(got.size() == 1);
        CHECK(got[0].target == "/hook");
    }
}

TEST_CASE("the_api_refuses_webhook_urls_to_internal_addresses_with_422", "[security][ssrf][api]") {
    // No allowed ranges: loopback is refused too.
    mqtest::ApiOptions o;
    o.env["WEBHOOK_ALLOWED_CIDRS"] = "";
    mqtest::ApiSession s(o);
    REQUIRE(s.api.call_json("POST", "/api/v1/mq/queues", {{"name", "jobs"}}, s.token).status ==
            201);
    auto create = [&](const std::string& name, const std::string& url) {
        return s.api.call_json(
            "POST", "/api/v1/mq/subscriptions",
            {{"queue", "jobs"}, {"name", name}, {"type", "webhook"}, {"handler", {{"url", url}}}},
            s.token);
    };
    int n = 0;
    for (const char* url :
         {"http://127.0.0.1:6379/", "http://2130706433/", "http://0x7f.1/", "http://017700000001/",
          "http://127.1/", "http://[::ffff:127.0.0.1]/", "http://169.254.169.254/latest/",
          "http://10.0.0.1/", "http://[fd00::1]/", "http://localhost:5432/",
          "http://user:pw@93.184.216.34/", "http://[64:ff9b::7f00:1]/"}) {
        INFO(url);
        auto r = create("h" + std::to_string(n++), url);
        INFO(r.body);
        CHECK(r.status == 422);
        CHECK(r.error_code() == "MQ_WEBHOOK_DESTINATION_FORBIDDEN");
        CHECK(!r.json()["error"]["details"]["reason"].get<std::string>().empty());
    }
    // Other schemes are a validation error of the URL before any address is looked at.
    auto gopher = create("g", "gopher://93.184.216.34/");
    CHECK((gopher.status == 400 || gopher.status == 422));
    // A public address passes (never connected to: no worker runs here).
    auto ok = create("public", "https://93.184.216.34/hook");
    INFO(ok.body);
    REQUIRE(ok.status == 201);
    CHECK(ok.json()["origin"] == "api");
    // ... and cannot be pointed inward afterwards.
    const std::string target = "/api/v1/mq/subscriptions/" + ok.json()["id"].get<std::string>();
    auto moved =
        s.api.call_json("PUT", target, {{"handler", {{"url", "http://0x7f.1:6379/"}}}}, s.token);
    CHECK(moved.status == 422);
    CHECK(moved.error_code() == "MQ_WEBHOOK_DESTINATION_FORBIDDEN");
    auto got = s.api.call("GET", target, "", s.token);
    CHECK(got.json()["handler"]["url"] == "https://93.184.216.34/hook");
    // Nothing refused was stored.
    auto list = s.api.call("GET", "/api/v1/mq/subscriptions", "", s.token);
    CHECK(list.json()["subscriptions"].size() == 1);
}

namespace {

// `mq-worker --from-db --tenant T` with extra args and environment; killed at scope end.
struct Worker : mqtest::ChildProcess {
    Worker(const std::string& tenant, const std::string& prefix,
           const std::vector<std::string>& extra, const mqtest::Env& extra_env) {
        std::vector<std::string> args{
            "--metrics-port",          "0",  "--from-db", "--tenant", tenant,
            "--reconcile-interval-ms", "300"};
        args.insert(args.end(), extra.begin(), extra.end());
        auto env = mqtest::service_env({{"REDIS_KEY_PREFIX", prefix}, {"MQ_TENANT", tenant}});
        for (const auto& [k, v] : extra_env) env[k] = v;
        start(MQ_WORKER_PATH, args, env);
    }
};

}  // namespace

TEST_CASE("a_worker_refuses_an_api_webhook_to_loopback_but_delivers_an_operators",
          "[security][ssrf][worker]") {
    // mq-api allows loopback (so the API stores the webhook), the worker does not: the
    // connect-time check alone must stop it.
    mqtest::ApiSession s;
    mqtest::HttpSink api_sink, operator_sink;
    REQUIRE(s.api.call_json("POST", "/api/v1/mq/queues", {{"name", "jobs"}}, s.token).status ==
            201);
    auto created = s.api.call_json("POST", "/api/v1/mq/subscriptions",
                                   {{"queue", "jobs"},
                                    {"name", "tenant-hook"},
                                    {"type", "webhook"},
                                    {"start_from", "earliest"},
                                    {"max_attempts", 1},
                                    {"handler", {{"url", api_sink.url("/hook")}}}},
                                   s.token);
    INFO(created.body);
    REQUIRE(created.status == 201);
    auto op = mqtest::mqctl({"--tenant", s.tenant.tenant(), "--key-prefix", s.api.key_prefix(),
                             "sub", "create", "jobs", "ops-hook", "--url",
                             operator_sink.url("/ops"), "--from", "earliest"});
    INFO(op.err);
    REQUIRE(op.status == 0);

    auto conn =
        std::make_unique<mq::redis::Connection>(mq::redis::parse_url(mqtest::services().redis_url));
    mq::Publisher pub(*conn, mq::KeyLayout(s.api.key_prefix()));
    auto queue = s.tenant.catalog().get_queue(s.tenant.tenant(), "jobs");
    for (int i = 0; i < 3; ++i) {
        mq::PublishRequest r;
        r.payload = "{}";
        pub.publish(queue, r);
    }
    Worker w(s.tenant.tenant(), s.api.key_prefix(), {}, {{"WEBHOOK_ALLOWED_CIDRS", ""}});
    INFO(w.log());
    REQUIRE(eventually([&] { return operator_sink.request_count() >= 3; }, 10s));
    REQUIRE(eventually(
        [&] {
            return w.log().find("webhook destination refused: 127.0.0.1 is loopback") !=
                   std::string::npos;
        },
        10s));
    CHECK(api_sink.request_count() == 0);
    CHECK(api_sink.connections_accepted() == 0);
    CHECK(w.terminate() == 0);
}
