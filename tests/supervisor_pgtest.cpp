// WorkerSupervisor in-process against real Redis and PostgreSQL: PostgreSQL down while it
// runs (keeps delivering, reconciles when back), the control connection killed (events
// resume, a missed event is caught by the reconcile that follows the reconnect or by the
// periodic one), a "deleted" event stops a runner without PostgreSQL; and update_queue.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "eventually.hpp"
#include "harness.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/consume/control.hpp"
#include "mq/consume/queue_update.hpp"
#include "mq/consume/subscription_catalog.hpp"
#include "mq/consume/subscription_lifecycle.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/worker/supervisor.hpp"

using namespace std::chrono_literals;
using mqtest::eventually;

namespace {

// A TCP forwarder to 127.0.0.1:<upstream> that a test can cut (every connection closed,
// new ones refused) and restore: PostgreSQL "down" without stopping the shared server.
class TcpProxy {
  public:
    explicit TcpProxy(int upstream) : upstream_(upstream) {
        listen_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        REQUIRE(listen(listen_, 64) == 0);
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~TcpProxy() {
        stop_ = true;
        acceptor_.join();
        close(listen_);
        cut();
        for (auto& t : pumps_) t.join();
    }
    int port() const { return port_; }
    void set_down(bool down) {
        down_ = down;
        if (down) cut();
    }

  private:
    void cut() {
        std::lock_guard lock(mu_);
        for (int fd : open_) shutdown(fd, SHUT_RDWR);
    }
    void accept_loop() {
        while (!stop_) {
            pollfd p{listen_, POLLIN, 0};
            if (poll(&p, 1, 50) <= 0) continue;
            int client = accept(listen_, nullptr, nullptr);
            if (client < 0) continue;
            if (down_) {
                close(client);
                continue;
            }
            int server = socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons(static_cast<std::uint16_t>(upstream_));
            if (connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
                close(client);
                close(server);
                continue;
            }
            {
                std::lock_guard lock(mu_);
                open_.insert(client);
                open_.insert(server);
            }
            pumps_.emplace_back([this, client, server] { pump(client, server); });
        }
    }
    void pump(int a, int b) {
        char buf[16384];
        for (bool open = true; open && !stop_;) {
            pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
            if (poll(p, 2, 50) <= 0) continue;
            for (int i = 0; i < 2 && open; ++i) {
                if (!p[i].revents) continue;
                ssize_t n = read(p[i].fd, buf, sizeof buf);
                open = n > 0 && write(p[1 - i].fd, buf, static_cast<std::size_t>(n)) == n;
            }
        }
        std::lock_guard lock(mu_);
        open_.erase(a);
        open_.erase(b);
        close(a);
        close(b);
    }

    int upstream_;
    int listen_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<bool> down_{false};
    std::mutex mu_;
    std::set<int> open_;
    std::thread acceptor_;
    std::vector<std::thread> pumps_;  // joined at the end (a test makes a handful)
};

class CountingHandler : public mq::Handler {
  public:
    mq::DeliveryResult deliver(const mq::Delivery& d) override {
        std::lock_guard lock(mu_);
        seen_[d.subscription].insert(d.message.id);
        mq::DeliveryResult r;
        r.outcome = mq::DeliveryOutcome::kAck;
        return r;
    }
    std::size_t count(const std::string& sub) {
        std::lock_guard lock(mu_);
        return seen_[sub].size();
    }

  private:
    std::mutex mu_;
    std::map<std::string, std::set<std::string>> seen_;
};

struct Fixture {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    mq::Queue q;
    std::shared_ptr<CountingHandler> handler = std::make_shared<CountingHandler>();
    std::string consumer = mqtest::unique_name("sup");

    Fixture() {
        mq::QueueSpec spec;
        spec.name = "jobs";
        spec.partition_count = 2;
        q = ts.catalog().create_queue(ts.tenant(), spec, mq::Config{});
    }
    mq::Subscription create(const std::string& name) {
        mq::Subscription s;
        s.tenant = ts.tenant();
        s.queue = "jobs";
        s.name = name;
        s.type = "webhook";
        s.start_from = "earliest";
        s.handler = {{"url", "http://127.0.0.1:9/unused"}};
        return mq::create_subscription(ts.db(), rs.redis(), rs.keys(), q, s).subscription;
    }
    mq::SupervisorOptions options(
        const std::string& database_url = mqtest::services().database_url) {
        mq::SupervisorOptions o;
        o.endpoint = mq::redis::parse_url(mqtest::services().redis_url);
        o.keys = rs.keys();
        o.database_url = database_url;
        o.consumer = consumer;
        o.from_db = true;
        o.tenants = {ts.tenant()};
        o.full_reconcile_interval = 60s;  // tests that want the periodic pass shorten it
        o.retry_interval = 200ms;
        o.restart_timeout = 2s;
        o.fetch_block = 100ms;
        o.reclaim_interval = 20ms;
        auto h = handler;
        o.make_handler = [h](const mq::Subscription&) { return h; };
        return o;
    }
    void publish(int n) {
        mq::Publisher pub(rs.redis(), rs.keys());
        std::vector<mq::PublishRequest> batch(static_cast<std::size_t>(n));
        for (auto& r : batch) r.payload = "x";
        pub.publish_batch(q, batch);
    }
    bool paused(mq::WorkerSupervisor& s, const std::string& name) {
        for (const auto& r : s.runners())
            if (r->options().subscription.name == name) return r->paused();
        return false;
    }
    // Kills this supervisor's control connection (only ours: other tests share the server).
    void kill_control() {
        auto list = rs.redis().command({"CLIENT", "LIST"}).str;
        const std::string name = "name=" + mq::control_client_name(consumer) + " ";
        for (std::size_t at = 0; (at = list.find(name, at)) != std::string::npos; ++at) {
            auto line = list.rfind('\n', at);
            line = line == std::string::npos ? 0 : line + 1;
            auto id = list.substr(line + 3, list.find(' ', line) - line - 3);  // "id=N "
            rs.redis().command({"CLIENT", "KILL", "ID", id});
        }
    }
};

}  // namespace

TEST_CASE("supervisor keeps delivering while PostgreSQL is down and reconciles when it is back",
          "[supervisor][outage]") {
    Fixture f;
    f.create("first");
    TcpProxy proxy(mqtest::services().pg_port);
    std::string url = mqtest::services().database_url;
    url.replace(url.find(":" + std::to_string(mqtest::services().pg_port)),
                std::to_string(mqtest::services().pg_port).size() + 1,
                ":" + std::to_string(proxy.port()));
    auto o = f.options(url);
    o.full_reconcile_interval = 300ms;
    mq::WorkerSupervisor sup(o);
    sup.start();
    f.publish(4);
    REQUIRE(eventually([&] { return f.handler->count("first") == 4; }, 5s));

    proxy.set_down(true);
    auto before = sup.reconciles();
    f.publish(4);
    CHECK(eventually([&] { return f.handler->count("first") == 8; }, 5s));
    f.create("second");  // straight into PostgreSQL; no announcement reaches it either way
    std::this_thread::sleep_for(1s);
    CHECK(sup.reconciles() == before);  // could not read PostgreSQL
    CHECK(sup.runners().size() == 1);

    proxy.set_down(false);
    REQUIRE(eventually([&] { return sup.runners().size() == 2; }, 5s));
    CHECK(eventually([&] { return f.handler->count("second") == 8; }, 5s));
    CHECK(sup.stop(std::chrono::steady_clock::now() + 2s));
}

TEST_CASE(
    "a killed control connection comes back, catches up on what it missed, and hears events again",
    "[supervisor][control]") {
    Fixture f;
    f.create("s");
    mq::WorkerSupervisor sup(f.options());
    sup.start();
    REQUIRE(eventually([&] { return sup.listening(); }, 5s));
    REQUIRE(sup.runners().size() == 1);

    // Paused while nobody listens (no announcement at all): the reconcile after the
    // reconnect finds it.
    mq::SubscriptionCatalog(f.ts.db()).set_status(f.ts.tenant(), "jobs", "s", "paused");
    f.kill_control();
    CHECK(eventually([&] { return f.paused(sup, "s"); }, 5s));
    REQUIRE(eventually([&] { return sup.listening(); }, 5s));

    // Events are heard again: a resume applies within a second.
    mq::SubscriptionCatalog(f.ts.db()).set_status(f.ts.tenant(), "jobs", "s", "active");
    mq::announce(f.rs.redis(), f.rs.keys(), "resume", f.ts.tenant(), "jobs", "s");
    CHECK(eventually([&] { return !f.paused(sup, "s"); }, 1s));
    sup.stop(std::chrono::steady_clock::now() + 2s);
}

TEST_CASE("the periodic reconcile catches a change whose event was never sent",
          "[supervisor][control]") {
    Fixture f;
    auto o = f.options();
    o.full_reconcile_interval = 400ms;
    mq::WorkerSupervisor sup(o);
    sup.start();
    CHECK(sup.runners().empty());  // started with nothing: waits
    f.create("late");              // no announcement
    REQUIRE(eventually([&] { return sup.runners().size() == 1; }, 3s));
    f.publish(3);
    CHECK(eventually([&] { return f.handler->count("late") == 3; }, 5s));
    sup.stop(std::chrono::steady_clock::now() + 2s);
}

TEST_CASE("a deleted event stops the runner even while PostgreSQL is unreachable",
          "[supervisor][outage]") {
    Fixture f;
    auto s = f.create("gone");
    TcpProxy proxy(mqtest::services().pg_port);
    std::string url = mqtest::services().database_url;
    url.replace(url.find(":" + std::to_string(mqtest::services().pg_port)),
                std::to_string(mqtest::services().pg_port).size() + 1,
                ":" + std::to_string(proxy.port()));
    mq::WorkerSupervisor sup(f.options(url));
    sup.start();
    REQUIRE(eventually([&] { return sup.listening(); }, 5s));
    proxy.set_down(true);
    mq::delete_subscription(f.ts.db(), f.rs.redis(), f.rs.keys(), s);
    mq::announce(f.rs.redis(), f.rs.keys(), "deleted", f.ts.tenant(), "jobs", "gone");
    CHECK(eventually([&] { return sup.runners().empty(); }, 3s));
    sup.stop(std::chrono::steady_clock::now() + 2s);
}

TEST_CASE("malformed control events are ignored", "[supervisor][hostile]") {
    Fixture f;
    f.create("s");
    mq::WorkerSupervisor sup(f.options());
    sup.start();
    REQUIRE(eventually([&] { return sup.listening(); }, 5s));
    const std::string channel = mq::control_channel(f.rs.keys());
    for (const char* bad : {"not json", "[]", R"({"event": 5})", R"({"event": "pause"})",
                            R"({"event": "explode", "tenant": "x", "queue": "y"})"})
        f.rs.redis().command({"PUBLISH", channel, bad});
    CHECK_FALSE(mq::parse_control_event("{").valid);
    CHECK(
        mq::parse_control_event(R"({"event":"pause","tenant":"t","queue":"q","subscription":"s"})")
            .queue_tenant == "t");
    std::this_thread::sleep_for(300ms);
    CHECK(sup.listening());
    CHECK(sup.runners().size() == 1);
    CHECK_FALSE(f.paused(sup, "s"));
    sup.stop(std::chrono::steady_clock::now() + 2s);
}

TEST_CASE("update_queue creates every subscription's group on new partitions at 0 and announces it",
          "[queue][partitions]") {
    Fixture f;
    auto late = f.create("late");
    // A subscription from latest: its groups on the first partitions start at $.
    mq::SubscriptionCatalog(f.ts.db()).update([&] {
        auto s = late;
        s.start_from = "latest";
        return s;
    }());
    auto listener = f.rs.connect();
    listener->write({"SUBSCRIBE", mq::control_channel(f.rs.keys())});
    listener->read();
    mq::QueueChanges c;
    c.partition_count = 4;
    auto redis = [&]() -> mq::redis::Connection& { return f.rs.redis(); };
    auto out = mq::update_queue(f.ts.db(), redis, f.rs.keys(), f.ts.tenant(), "jobs", c);
    CHECK(out.old_partitions == 2);
    CHECK(out.queue.partition_count == 4);
    CHECK(out.groups_created == 2);
    CHECK(out.workers_told);
    for (int p = 2; p < 4; ++p) {
        auto groups =
            f.rs.redis().command({"XINFO", "GROUPS", f.rs.keys().stream(f.ts.tenant(), "jobs", p)});
        REQUIRE(groups.elements.size() == 1);
        const auto& g = groups.elements[0].elements;
        for (std::size_t i = 0; i + 1 < g.size(); i += 2)
            if (g[i].str == "last-delivered-id") CHECK(g[i + 1].str == "0-0");
    }
    auto event = mq::parse_control_event(listener->read().elements.at(2).str);
    CHECK(event.event == "queue_changed");
    CHECK(event.queue == "jobs");

    // Shrinking is refused and changes nothing.
    c.partition_count = 3;
    CHECK_THROWS_AS(mq::update_queue(f.ts.db(), redis, f.rs.keys(), f.ts.tenant(), "jobs", c),
                    mq::ValidationError);
    CHECK(f.ts.catalog().get_queue(f.ts.tenant(), "jobs").partition_count == 4);
}

TEST_CASE(
    "update_queue with Redis down changes nothing when partitions grow, and needs no Redis "
    "otherwise",
    "[queue][outage]") {
    Fixture f;
    f.create("s");
    std::unique_ptr<mq::redis::Connection> dead;
    auto redis = [&]() -> mq::redis::Connection& {
        dead = std::make_unique<mq::redis::Connection>(
            mq::redis::parse_url("redis://127.0.0.1:" + std::to_string(mqtest::dead_port())));
        return *dead;
    };
    mq::QueueChanges grow;
    grow.partition_count = 4;
    try {
        mq::update_queue(f.ts.db(), redis, f.rs.keys(), f.ts.tenant(), "jobs", grow);
        FAIL("grew partitions without Redis");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
    }
    CHECK(f.ts.catalog().get_queue(f.ts.tenant(), "jobs").partition_count == 2);
    mq::QueueChanges describe;
    describe.description = "still editable";
    auto out = mq::update_queue(f.ts.db(), redis, f.rs.keys(), f.ts.tenant(), "jobs", describe);
    CHECK(out.queue.description == "still editable");
}
