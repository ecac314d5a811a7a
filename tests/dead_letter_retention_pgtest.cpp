// Dead letters over an outage: the archiver takes over a dead archiver's batch
// (XAUTOCLAIM), the stream is trimmed only after archiving, and the PostgreSQL archive
// has its own retention (docs/retention.md).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <mutex>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "mq/consume/consumer.hpp"
#include "mq/consume/dead_letter_archive.hpp"
#include "mq/consume/dead_letters.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/queue/trimmer.hpp"

using namespace std::chrono_literals;

namespace {

struct DlqFixture {
    mqtest::TenantScope ts;
    mqtest::RedisScope rs;
    mq::Queue q;
    mq::Subscription sub;

    explicit DlqFixture(int dead_letters) {
        mq::QueueSpec spec;
        spec.name = "orders";
        spec.partition_count = 1;
        q = ts.catalog().create_queue(ts.tenant(), spec, mq::Config{});
        sub.name = "billing";
        sub.start_from = "earliest";
        mq::ConsumerGroups groups(rs.redis(), rs.keys());
        groups.ensure(q, sub);
        mq::Publisher pub(rs.redis(), rs.keys());
        for (int i = 0; i < dead_letters; ++i) {
            mq::PublishRequest r;
            r.payload = "p" + std::to_string(i);
            pub.publish(q, r);
        }
        for (auto& f : groups.read_new(q, sub, "c", 0, 1000, 0ms))
            groups.dead_letter(q, "billing", 0, f.stream_id, "handler_rejected", "HTTP 410", 1);
    }
    ~DlqFixture() { ts.exec("DELETE FROM dead_letters WHERE tenant_id = '" + ts.tenant() + "'"); }
    std::string dlq() const { return rs.keys().dead_letters(q.tenant, q.name, 0); }
    int archived_rows() {
        return ts.db().transact([&](pqxx::work& tx) {
            return tx
                .exec_params1("SELECT count(*) FROM dead_letters WHERE tenant_id = $1",
                              ts.tenant())[0]
                .as<int>();
        });
    }
};

// A loopback TCP relay in front of the fixture's PostgreSQL, so a test can take the
// database away from one client (down() closes the listener and every relayed socket).
class PgRelay {
  public:
    PgRelay() {
        listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        socklen_t len = sizeof addr;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        REQUIRE(::listen(listener_, 8) == 0);
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~PgRelay() {
        down();
        for (auto& t : pumps_) t.join();
        for (int fd : sockets_) ::close(fd);
        ::close(listener_);
    }
    // The fixture's DATABASE_URL with the relay's port.
    std::string url() const {
        std::string u = mqtest::services().database_url;
        const std::string from = ":" + std::to_string(mqtest::services().pg_port) + "/";
        auto at = u.find(from);
        REQUIRE(at != std::string::npos);
        return u.replace(at, from.size(), ":" + std::to_string(port_) + "/");
    }
    void down() {
        {
            std::lock_guard lock(mu_);
            if (!listener_closed_) ::shutdown(listener_, SHUT_RDWR);  // wakes accept()
            listener_closed_ = true;
        }
        if (acceptor_.joinable()) acceptor_.join();
        std::lock_guard lock(mu_);
        for (int fd : sockets_) ::shutdown(fd, SHUT_RDWR);
    }

  private:
    void accept_loop() {
        for (;;) {
            int client = ::accept(listener_, nullptr, nullptr);
            if (client < 0) return;
            int server = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in addr{};
            addr.sin_family = AF_INET;
            addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            addr.sin_port = htons(static_cast<std::uint16_t>(mqtest::services().pg_port));
            if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
                ::close(client);
                ::close(server);
                continue;
            }
            std::lock_guard lock(mu_);
            sockets_.push_back(client);
            sockets_.push_back(server);
            pumps_.emplace_back([client, server] { pump(client, server); });
            pumps_.emplace_back([client, server] { pump(server, client); });
        }
    }
    static void pump(int from, int to) {
        char buf[16384];
        for (;;) {
            auto n = ::read(from, buf, sizeof buf);
            if (n <= 0 || ::write(to, buf, static_cast<std::size_t>(n)) != n) break;
        }
        ::shutdown(from, SHUT_RDWR);
        ::shutdown(to, SHUT_RDWR);
    }

    int listener_ = -1;
    int port_ = 0;
    bool listener_closed_ = false;
    std::mutex mu_;
    std::vector<int> sockets_;
    std::vector<std::thread> pumps_;
    std::thread acceptor_;
};

}  // namespace

TEST_CASE("a batch read by an archiver that died while PostgreSQL was down is archived by another",
          "[dlq][archive][retention]") {
    DlqFixture f(50);
    // Archiver A reads a batch of 25, PostgreSQL is down, A dies with the batch pending.
    {
        PgRelay relay;
        mq::pg::Database through_relay(relay.url());
        mq::DeadLetterArchiver a(f.rs.redis(), through_relay, f.rs.keys(), "worker-a");
        relay.down();
        try {
            a.archive(f.q, 25);
            FAIL("archive succeeded with PostgreSQL down");
        } catch (const mq::Error& e) {
            CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
        }
    }
    auto pending = f.rs.redis().command({"XPENDING", f.dlq(), "mq-archive"});
    REQUIRE(pending.elements.at(0).as_integer() == 25);
    // Trimming meanwhile removes nothing unarchived.
    mq::TrimOptions o;
    o.dead_letter_max_length = 1;
    mq::Trimmer trimmer(f.rs.redis(), f.rs.keys(), o);
    CHECK(trimmer.trim(f.q).dead_letters_trimmed == 0);
    CHECK(f.rs.redis().command({"XLEN", f.dlq()}).as_integer() == 50);

    // Archiver B (another process, PostgreSQL back) takes A's batch over once it is idle.
    auto other = f.rs.connect();
    mq::pg::Database db(mqtest::services().database_url);
    mq::DeadLetterArchiver b(*other, db, f.rs.keys(), "worker-b", 200ms);
    CHECK(b.archive(f.q, 10) == 25);  // A's batch is not idle yet: only the new 25
    std::this_thread::sleep_for(250ms);
    CHECK(b.archive(f.q, 10) == 25);
    CHECK(f.archived_rows() == 50);
    CHECK(f.rs.redis().command({"XPENDING", f.dlq(), "mq-archive"}).elements.at(0).as_integer() ==
          0);

    // Now archived, the stream is cut to its cap; `dlq list` shows what is left.
    CHECK(trimmer.trim(f.q).dead_letters_trimmed == 49);
    mq::DeadLetterStore store(f.rs.redis(), f.rs.keys());
    auto left = store.list(f.q, "", 100);
    REQUIRE(left.size() == 1);
    CHECK(left[0].message.payload == "p49");
}

TEST_CASE(
    "the archive keeps dead letters for DEAD_LETTER_RETENTION and purges older ones in batches",
    "[dlq][archive][retention]") {
    DlqFixture f(30);
    mq::DeadLetterArchiver a(f.rs.redis(), f.ts.db(), f.rs.keys(), "w");
    REQUIRE(a.archive(f.q) == 30);
    f.ts.exec("UPDATE dead_letters SET dead_at = now() - interval '40 days' WHERE tenant_id = '" +
              f.ts.tenant() + "' AND id IN (SELECT id FROM dead_letters WHERE tenant_id = '" +
              f.ts.tenant() + "' ORDER BY id LIMIT 12)");
    // Other tenants' old rows go as well (the setting is global), so count only ours.
    mq::purge_archived_dead_letters(f.ts.db(), std::chrono::hours(24 * 30), 5);
    CHECK(f.archived_rows() == 18);
    CHECK(mq::purge_archived_dead_letters(f.ts.db(), std::chrono::hours(24 * 30)) == 0);
    // Archiving again writes nothing: every dead letter still in Redis was acked by the group.
    CHECK(a.archive(f.q) == 0);
}

TEST_CASE("purging the archive refuses a non-positive retention and reports PostgreSQL down",
          "[dlq][archive][retention]") {
    mq::pg::Database db(mqtest::services().database_url);
    CHECK_THROWS_AS(mq::purge_archived_dead_letters(db, 0ms), mq::ValidationError);
    CHECK_THROWS_AS(mq::purge_archived_dead_letters(db, -5ms), mq::ValidationError);
    PgRelay relay;
    mq::pg::Database down(relay.url());
    relay.down();
    try {
        mq::purge_archived_dead_letters(down, std::chrono::hours(1));
        FAIL("purge succeeded with PostgreSQL down");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kBackendUnavailable);
    }
}
