#include "mq/redis/async_connection.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <string>
#include <unordered_set>

#include "mq/redis/cluster.hpp"
#include "mq/redis/tls.hpp"
#include "resp.hpp"

namespace mq::redis {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

using resp::append_command;

// One connection attempt's socket, plain or TLS. Every asynchronous operation holds it
// (shared_ptr) until its handler ran, because a TLS stream must outlive the operations
// in flight on it; a failed connection drops its transport and the next one is new.
struct Transport {
    tcp::socket plain;
    std::shared_ptr<const TlsContext> context;  // outlives the stream built on it
    std::unique_ptr<asio::ssl::stream<tcp::socket>> tls;

    Transport(asio::io_context& ioc, std::shared_ptr<const TlsContext> ctx)
        : plain(ioc), context(std::move(ctx)) {
        if (context) tls = std::make_unique<asio::ssl::stream<tcp::socket>>(ioc, context->asio());
    }
    tcp::socket& socket() { return tls ? tls->next_layer() : plain; }
    template <class Handler>
    void async_write(asio::const_buffer b, Handler&& h) {
        if (tls)
            asio::async_write(*tls, b, std::forward<Handler>(h));
        else
            asio::async_write(plain, b, std::forward<Handler>(h));
    }
    template <class Handler>
    void async_read_some(asio::mutable_buffer b, Handler&& h) {
        if (tls)
            tls->async_read_some(b, std::forward<Handler>(h));
        else
            plain.async_read_some(b, std::forward<Handler>(h));
    }
};

struct ReaderDeleter {
    void operator()(redisReader* r) const { redisReaderFree(r); }
};

}  // namespace

struct AsyncConnection::Impl : std::enable_shared_from_this<Impl> {
    // One execute() (or an internal command such as AUTH or SCRIPT LOAD): its replies
    // are collected until there are as many as it sent commands.
    struct Call {
        std::size_t expected = 0;
        std::vector<Reply> replies;
        Callback done;
        Clock::time_point sent;
    };
    enum class State { kClosed, kConnecting, kOpen };
    // The replicated calls of one write: their replies are held until the WAIT that
    // closes the write answers.
    struct WaitBatch {
        std::chrono::milliseconds timeout{0};
        std::vector<std::pair<Callback, std::vector<Reply>>> held;
    };

    // Declared first so it is destroyed last: the socket and the timer need it.
    std::shared_ptr<asio::io_context> ioc;
    Endpoint endpoint;
    ConnectOptions options;
    std::shared_ptr<Transport> transport;  // null while closed
    asio::steady_timer timer;
    State state = State::kClosed;
    std::uint64_t generation = 0;  // bumped on every failure: handlers of before ignore it
    std::string out;               // commands waiting for the next write
    std::string writing_buf;       // the write in progress
    bool writing = false;
    bool flush_posted = false;
    bool timer_armed = false;
    std::uint64_t timer_seq = 0;  // a wait of an earlier arming finds it changed
    Clock::time_point connect_started;
    std::deque<Call> calls;
    std::unordered_set<std::string> loaded_scripts;
    std::shared_ptr<WaitBatch> wait_batch;  // replicated calls in `out`; null: none
    std::unique_ptr<redisReader, ReaderDeleter> reader;
    std::vector<char> read_buf = std::vector<char>(64 * 1024);
    std::atomic<std::uint64_t> writes{0};  // read by other threads for metrics

    Impl(std::shared_ptr<asio::io_context> c, Endpoint e, ConnectOptions o)
        : ioc(std::move(c)), endpoint(std::move(e)), options(o), timer(*ioc) {
        load_tls(endpoint);
    }

    // Handlers hold a weak reference: a connection destroyed with operations pending is
    // not kept alive by them (and does not keep its io_context alive in a cycle).
    template <class F>
    auto guarded(F f) {
        return
            [weak = weak_from_this(), gen = generation, f = std::move(f)](auto&&... args) mutable {
                auto self = weak.lock();
                if (!self || gen != self->generation) return;
                f(*self, std::forward<decltype(args)>(args)...);
            };
    }

    void execute(const Pipeline& pipeline, Callback done, bool retry_noscript,
                 std::chrono::milliseconds replica_wait = std::chrono::milliseconds(0)) {
        if (pipeline.empty()) {
            done({}, nullptr);
            return;
        }
        if (state == State::kClosed) connect();
        for (std::size_t i = 0; i < pipeline.size(); ++i)
            if (const Script* s = pipeline.script(i); s && loaded_scripts.insert(s->sha()).second)
                load_script(*s);
        for (const auto& argv : pipeline.commands()) append_command(out, argv);
        if (retry_noscript) {
            done = [weak = weak_from_this(), &pipeline, replica_wait, done = std::move(done)](
                       std::vector<Reply> replies, std::exception_ptr error) mutable {
                auto self = weak.lock();
                if (error || !self) return done(std::move(replies), std::move(error));
                self->rerun_noscript(pipeline, std::move(replies), replica_wait, std::move(done));
            };
        }
        if (replica_wait.count() > 0) {
            // Held until the WAIT appended to this write (flush()) answers.
            if (!wait_batch) wait_batch = std::make_shared<WaitBatch>();
            wait_batch->timeout = std::max(wait_batch->timeout, replica_wait);
            done = [batch = wait_batch, done = std::move(done)](std::vector<Reply> replies,
                                                                std::exception_ptr error) mutable {
                if (error) return done({}, std::move(error));
                batch->held.emplace_back(std::move(done), std::move(replies));
            };
        }
        push_call(pipeline.size(), std::move(done));
        schedule_flush();
    }

    // Runs the commands that got NOSCRIPT once more (their scripts are loaded first),
    // then calls done with every reply.
    void rerun_noscript(const Pipeline& pipeline, std::vector<Reply> replies,
                        std::chrono::milliseconds replica_wait, Callback done) {
        auto again = std::make_shared<Pipeline>();
        std::vector<std::size_t> index;
        for (std::size_t i = 0; i < replies.size(); ++i) {
            const Script* s = pipeline.script(i);
            if (s && replies[i].error_code() == "NOSCRIPT") {
                loaded_scripts.erase(s->sha());
                again->add(pipeline.commands()[i], s);
                index.push_back(i);
            }
        }
        if (index.empty()) return done(std::move(replies), nullptr);
        const Pipeline& p = *again;
        execute(
            p,
            [again = std::move(again), index = std::move(index), replies = std::move(replies),
             done = std::move(done)](std::vector<Reply> second, std::exception_ptr e) mutable {
                if (e) return done({}, std::move(e));
                for (std::size_t k = 0; k < index.size(); ++k)
                    replies[index[k]] = std::move(second[k]);
                done(std::move(replies), nullptr);
            },
            false, replica_wait);
    }

    void load_script(const Script& script) {
        append_command(out, {"SCRIPT", "LOAD", script.source()});
        push_call(1, [weak = weak_from_this(), sha = script.sha()](std::vector<Reply> r,
                                                                   std::exception_ptr e) {
            // A failed load shows up as NOSCRIPT on the command after it; forget the script
            // so the next use loads it again.
            auto self = weak.lock();
            if (self && (e || r.empty() || r.front().is_error())) self->loaded_scripts.erase(sha);
        });
    }

    void push_call(std::size_t expected, Callback done) {
        Call c;
        c.expected = expected;
        c.replies.reserve(expected);
        c.done = std::move(done);
        c.sent = Clock::now();
        calls.push_back(std::move(c));
        arm_timer();
    }

    void schedule_flush() {
        if (flush_posted || writing || state != State::kOpen) return;
        flush_posted = true;
        // Runs after the handlers already queued in this turn of the loop: the commands
        // they add leave in the same write.
        asio::post(*ioc, guarded([](Impl& self) {
            self.flush_posted = false;
            self.flush();
        }));
    }

    // WAIT numreplicas timeout: closes a write that carries replicated calls; they get their
    // replies when at least one replica acknowledged everything written before it.
    void append_wait() {
        auto batch = std::move(wait_batch);
        wait_batch.reset();
        append_command(out, {"WAIT", "1", std::to_string(batch->timeout.count())});
        push_call(1, [weak = weak_from_this(), batch](std::vector<Reply> r, std::exception_ptr e) {
            auto self = weak.lock();
            if (!e && self) {
                std::string why;
                if (r.empty() || r.front().type != Reply::Type::kInteger)
                    why = r.empty() ? "no reply" : "WAIT answered " + r.front().str;
                else if (r.front().integer < 1)
                    why = "WAIT answered 0 replicas";
                if (!why.empty())
                    e = std::make_exception_ptr(BackendUnavailable(
                        "no replica of " + self->where() + " confirmed the write within " +
                        std::to_string(batch->timeout.count()) + " ms (" + why +
                        "); it may or may not be kept: retry, or check the replicas"));
            }
            for (auto& [done, replies] : batch->held) {
                if (e)
                    done({}, e);
                else
                    done(std::move(replies), nullptr);
            }
        });
    }

    void flush() {
        if (writing || out.empty() || state != State::kOpen) return;
        if (wait_batch) append_wait();
        writing = true;
        writing_buf.swap(out);
        out.clear();
        writes.fetch_add(1, std::memory_order_relaxed);
        transport->async_write(
            asio::buffer(writing_buf),
            guarded([t = transport](Impl& self, boost::system::error_code ec, std::size_t) {
                self.writing = false;
                self.writing_buf.clear();
                if (ec)
                    return self.fail("lost connection to " + self.where() + " while sending (" +
                                     ec.message() + "); the command may or may not have run");
                self.flush();
            }));
    }

    std::string where() const { return "Redis at " + endpoint.describe(); }
    std::string unreachable(const std::string& why) const {
        return "cannot reach " + where() + " (" + why + "); is it running? set REDIS_URL";
    }

    void connect() {
        state = State::kConnecting;
        connect_started = Clock::now();
        transport =
            std::make_shared<Transport>(*ioc, endpoint.tls ? endpoint.tls_context : nullptr);
        reader.reset(redisReaderCreate());
        cap_reply_arrays(reader.get());
        // Setup commands go first; calls made while connecting queue up behind them.
        if (!endpoint.password.empty()) {
            if (endpoint.username.empty())
                append_command(out, {"AUTH", endpoint.password});
            else
                append_command(out, {"AUTH", endpoint.username, endpoint.password});
            push_setup("authentication");
        } else if (endpoint.tls) {
            // With TLS 1.3 a server that wants a client certificate says so only after our
            // side of the handshake; a round trip first makes that a setup failure.
            append_command(out, {"PING"});
            push_setup("the TLS session");
        }
        if (endpoint.db != 0) {
            append_command(out, {"SELECT", std::to_string(endpoint.db)});
            push_setup("SELECT");
        }
        auto connected =
            guarded([t = transport](Impl& self, boost::system::error_code ec, auto&&...) {
                if (ec) return self.fail(self.unreachable(ec.message()));
                boost::system::error_code ignored;
                t->socket().set_option(tcp::no_delay(true), ignored);
                if (t->tls) return self.handshake();
                self.opened();
            });
        boost::system::error_code ec;
        auto address = asio::ip::make_address(endpoint.host, ec);
        if (!ec) {
            transport->socket().async_connect(
                tcp::endpoint(address, static_cast<unsigned short>(endpoint.port)),
                std::move(connected));
        } else {
            // A host name: resolve it (rare; the usual REDIS_URL names an address).
            auto resolver = std::make_shared<tcp::resolver>(*ioc);
            resolver->async_resolve(endpoint.host, std::to_string(endpoint.port),
                                    guarded([resolver, connected = std::move(connected)](
                                                Impl& self, boost::system::error_code e,
                                                tcp::resolver::results_type r) mutable {
                                        if (e) return self.fail(self.unreachable(e.message()));
                                        asio::async_connect(self.transport->socket(), r,
                                                            std::move(connected));
                                    }));
        }
        arm_timer();  // also bounds the connect
    }

    // TLS: SNI and the name check, then the handshake, still under the connect deadline.
    void handshake() {
        SSL* ssl = transport->tls->native_handle();
        try {
            prepare_client_ssl(ssl, endpoint.tls_name());
        } catch (const std::exception& e) {
            return fail(e.what());
        }
        transport->tls->async_handshake(
            asio::ssl::stream_base::client,
            guarded([t = transport](Impl& self, boost::system::error_code ec) {
                if (!ec) return self.opened();
                std::string why = ec.message();
                if (ec.category() == asio::error::get_ssl_category() ||
                    ec == asio::ssl::error::stream_truncated)
                    why = tls_failure_reason(t->tls->native_handle(), why);
                if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
                    why = "the server closed the connection during the handshake";
                if (long v = SSL_get_verify_result(t->tls->native_handle()); v != X509_V_OK)
                    why = std::string("certificate verification failed: ") +
                          X509_verify_cert_error_string(v);
                self.fail("TLS handshake with " + self.where() + " failed (" + why + "); " +
                          kTlsHint);
            }));
    }

    void opened() {
        state = State::kOpen;
        rearm_timer();  // from the connect deadline to the first command's
        read();
        flush();
    }

    void push_setup(const char* what) {
        push_call(1, [weak = weak_from_this(), what](std::vector<Reply> r, std::exception_ptr e) {
            auto self = weak.lock();
            if (e || !self) return;
            if (r.empty() || r.front().is_error())
                self->fail(self->where() + " refused " + what + ": " +
                           (r.empty() ? "" : r.front().str) + "; check REDIS_URL");
        });
    }

    void read() {
        transport->async_read_some(
            asio::buffer(read_buf),
            guarded([t = transport](Impl& self, boost::system::error_code ec, std::size_t n) {
                self.on_read(ec, n);
            }));
    }

    void on_read(boost::system::error_code ec, std::size_t n) {
        if (ec)
            return fail("lost connection to " + where() + " (" + ec.message() +
                        "); the command may or may not have run");
        if (redisReaderFeed(reader.get(), read_buf.data(), n) != REDIS_OK)
            return fail("unreadable reply from " + where());
        const auto gen = generation;
        for (;;) {
            void* raw = nullptr;
            if (redisReaderGetReply(reader.get(), &raw) != REDIS_OK)
                return fail("unreadable reply from " + where() + ": " + reader->errstr);
            if (!raw) break;
            Reply reply = reply_from_hiredis(raw);
            freeReplyObject(raw);
            deliver(std::move(reply));
            if (gen != generation) return;  // a callback failed the connection
        }
        read();
    }

    void deliver(Reply reply) {
        if (calls.empty()) return fail("unexpected reply from " + where());
        Call& c = calls.front();
        c.replies.push_back(std::move(reply));
        if (c.replies.size() < c.expected) return;
        Call finished = std::move(calls.front());
        calls.pop_front();
        finished.done(std::move(finished.replies), nullptr);
    }

    void arm_timer() {
        if (timer_armed) return;
        Clock::time_point deadline;
        if (state == State::kConnecting)
            deadline = connect_started + options.connect_timeout;
        else if (!calls.empty() && options.command_timeout.count() > 0)
            deadline = calls.front().sent + options.command_timeout;
        else
            return;
        timer_armed = true;
        timer.expires_at(deadline);
        timer.async_wait(guarded([seq = ++timer_seq](Impl& self, boost::system::error_code ec) {
            if (seq != self.timer_seq) return;
            self.timer_armed = false;
            if (!ec) self.on_timer();
        }));
    }

    void rearm_timer() {
        timer_armed = false;
        ++timer_seq;
        arm_timer();  // expires_at cancels the earlier wait
    }

    void on_timer() {
        auto now = Clock::now();
        if (state == State::kConnecting && now - connect_started >= options.connect_timeout)
            return fail(
                unreachable((endpoint.tls ? "no TLS session within " : "no connection within ") +
                            std::to_string(options.connect_timeout.count()) + " ms" +
                            (endpoint.tls ? "; is it a TLS port (rediss://)?" : "")));
        if (state == State::kOpen && !calls.empty() && options.command_timeout.count() > 0 &&
            now - calls.front().sent >= options.command_timeout)
            return fail(where() + " did not answer within " +
                        std::to_string(options.command_timeout.count()) +
                        " ms; is it overloaded or blocked?");
        arm_timer();
    }

    void close() {
        ++generation;
        state = State::kClosed;
        boost::system::error_code ignored;
        if (transport) transport->socket().close(ignored);
        transport.reset();  // operations in flight keep it until their handlers ran
        timer.cancel();
        timer_armed = false;
        writing = false;
        flush_posted = false;
        out.clear();
        writing_buf.clear();
        loaded_scripts.clear();
        wait_batch.reset();
        reader.reset();
    }

    void fail(const std::string& message) {
        close();
        auto failed = std::move(calls);
        calls = {};
        auto error = std::make_exception_ptr(BackendUnavailable(message));
        for (auto& c : failed) c.done({}, error);
    }
};

// A Redis Cluster: one Impl per node, the slot map, routing and redirections. Runs on the
// io_context's thread like the Impls. A node's Impl is kept after it failed: it fails its
// own calls and connects afresh on the next one, so nothing here waits for a dead node
// beyond one command timeout.
struct AsyncConnection::Cluster : std::enable_shared_from_this<Cluster> {
    // One execute(): the replies of every node's part, then of every redirection.
    struct Gather {
        const Pipeline* pipeline = nullptr;
        std::vector<Reply> replies;
        std::size_t pending = 0;
        std::exception_ptr error;
        Callback done;
        std::chrono::milliseconds replica_wait{0};  // zero: not replicated
    };
    struct Part {
        NodeAddress address;
        Pipeline pipeline;
        std::vector<std::size_t> index;
    };

    std::shared_ptr<asio::io_context> ioc;
    Endpoint cluster;
    ConnectOptions options;
    SlotMap map;
    bool have_map = false;
    bool stale = false;
    bool refreshing = false;
    Clock::time_point refreshed{};
    std::map<NodeAddress, std::shared_ptr<Impl>> nodes;
    std::vector<std::function<void(std::exception_ptr)>> waiting;  // for the first map

    Cluster(std::shared_ptr<asio::io_context> c, Endpoint e, ConnectOptions o)
        : ioc(std::move(c)), cluster(std::move(e)), options(o) {
        load_tls(cluster);
    }

    std::shared_ptr<Impl> node(const NodeAddress& address) {
        auto& n = nodes[address];
        if (!n) n = std::make_shared<Impl>(ioc, node_endpoint(cluster, address), options);
        return n;
    }

    std::uint64_t writes() const {
        std::uint64_t n = 0;
        for (const auto& [address, impl] : nodes) n += impl->writes.load(std::memory_order_relaxed);
        return n;
    }

    void close() {
        for (auto& [address, impl] : nodes) {
            impl->close();
            impl->calls.clear();
        }
        waiting.clear();
    }

    // The map is read when there is none (calls wait for it), and in the background when
    // a redirection or failure made it stale or it is older than kSlotMapRefreshInterval.
    void with_map(std::function<void(std::exception_ptr)> then) {
        if (have_map) {
            if ((stale || Clock::now() - refreshed > kSlotMapRefreshInterval) && !refreshing)
                refresh();
            return then(nullptr);
        }
        waiting.push_back(std::move(then));
        if (!refreshing) refresh();
    }

    void refresh() {
        refreshing = true;
        auto candidates = std::make_shared<std::vector<NodeAddress>>(map.masters());
        for (const auto& seed : cluster.cluster_nodes)
            if (std::find(candidates->begin(), candidates->end(), seed) == candidates->end())
                candidates->push_back(seed);
        try_refresh(std::move(candidates), 0, "no node answered");
    }

    // CLUSTER SHARDS and CLUSTER SLOTS in one round trip (the second for Redis before 7).
    void try_refresh(std::shared_ptr<std::vector<NodeAddress>> candidates, std::size_t i,
                     std::string last_error) {
        if (i >= candidates->size()) {
            refreshing = false;
            auto error = std::make_exception_ptr(
                BackendUnavailable("cannot read the slot map of Redis " + cluster.describe() +
                                   ": " + last_error + "; check REDIS_CLUSTER_NODES"));
            auto w = std::move(waiting);
            waiting.clear();
            for (auto& f : w) f(error);
            return;
        }
        auto ask = std::make_shared<Pipeline>();
        ask->add({"CLUSTER", "SHARDS"});
        ask->add({"CLUSTER", "SLOTS"});
        const NodeAddress address = (*candidates)[i];
        node(address)->execute(
            *ask,
            [weak = weak_from_this(), ask, candidates, i, address](std::vector<Reply> r,
                                                                   std::exception_ptr e) {
                auto self = weak.lock();
                if (!self) return;
                std::string why;
                try {
                    if (e) std::rethrow_exception(e);
                    SlotMap fresh = !r.at(0).is_error()
                                        ? SlotMap::from_shards(r.at(0), self->cluster.tls)
                                    : !r.at(1).is_error() ? SlotMap::from_slots(r.at(1))
                                                          : throw reply_error(r.at(1), "CLUSTER");
                    if (fresh.unassigned_slots() == kClusterSlots)
                        throw BackendUnavailable(address.describe() + " serves no slot");
                    self->map = std::move(fresh);
                    self->have_map = true;
                    self->stale = false;
                    self->refreshing = false;
                    self->refreshed = Clock::now();
                    auto w = std::move(self->waiting);
                    self->waiting.clear();
                    for (auto& f : w) f(nullptr);
                    return;
                } catch (const std::exception& ex) {
                    why = ex.what();
                }
                self->try_refresh(candidates, i + 1, why);
            },
            true);
    }

    void execute(const Pipeline& pipeline, Callback done,
                 std::chrono::milliseconds replica_wait = std::chrono::milliseconds(0)) {
        if (pipeline.empty()) return done({}, nullptr);
        with_map([weak = weak_from_this(), &pipeline, replica_wait,
                  done = std::move(done)](std::exception_ptr e) mutable {
            auto self = weak.lock();
            if (!self) return;
            if (e) return done({}, std::move(e));
            self->dispatch(pipeline, std::move(done), replica_wait);
        });
    }

    // Each node's part joins that node's next write (and, replicated, its WAIT).
    void dispatch(const Pipeline& pipeline, Callback done, std::chrono::milliseconds replica_wait) {
        auto g = std::make_shared<Gather>();
        g->pipeline = &pipeline;
        g->replica_wait = replica_wait;
        g->replies.resize(pipeline.size());
        g->done = std::move(done);
        std::vector<std::shared_ptr<Part>> parts;
        for (std::size_t i = 0; i < pipeline.size(); ++i) {
            NodeAddress address;
            if (auto key = routing_key(pipeline.commands()[i])) {
                const NodeAddress* master = map.master(key_slot(*key));
                if (!master) {
                    stale = true;
                    g->replies[i] =
                        try_again_reply("no node serves slot " + std::to_string(key_slot(*key)));
                    continue;
                }
                address = *master;
            } else {
                auto masters = map.masters();
                if (masters.empty()) {
                    g->replies[i] = try_again_reply("the cluster has no master");
                    continue;
                }
                address = masters.front();
            }
            auto it = std::find_if(parts.begin(), parts.end(),
                                   [&](const auto& p) { return p->address == address; });
            if (it == parts.end()) {
                parts.push_back(std::make_shared<Part>());
                parts.back()->address = address;
                it = std::prev(parts.end());
            }
            (*it)->pipeline.add(pipeline.commands()[i], pipeline.script(i));
            (*it)->index.push_back(i);
        }
        g->pending = parts.size() + 1;  // +1: this function, so no part finishes it early
        for (auto& part : parts) {
            node(part->address)
                ->execute(
                    part->pipeline,
                    [weak = weak_from_this(), g, part](std::vector<Reply> r, std::exception_ptr e) {
                        auto self = weak.lock();
                        if (!self) return;
                        if (e) {
                            if (!g->error) g->error = e;
                            self->stale = true;  // the node may have failed over
                        } else {
                            for (std::size_t k = 0; k < r.size(); ++k)
                                g->replies[part->index[k]] = std::move(r[k]);
                            for (std::size_t k = 0; k < r.size(); ++k)
                                if (parse_redirect(g->replies[part->index[k]])) {
                                    ++g->pending;
                                    self->follow(g, part->index[k], part->address, 0);
                                }
                        }
                        self->finish_one(g);
                    },
                    true, replica_wait);
        }
        finish_one(g);
    }

    void finish_one(const std::shared_ptr<Gather>& g) {
        if (--g->pending > 0) return;
        auto done = std::move(g->done);
        if (g->error) return done({}, g->error);
        done(std::move(g->replies), nullptr);
    }

    // MOVED: the slot moved (remembered; the map is read again). ASK: this one command goes
    // to the importing node after ASKING. The refused command did not run: resending is safe.
    void follow(std::shared_ptr<Gather> g, std::size_t i, NodeAddress from, int hop) {
        auto redirect = parse_redirect(g->replies[i]);
        if (!redirect) return finish_one(g);
        if (hop >= kMaxRedirects) {
            stale = true;
            g->replies[i] =
                try_again_reply("slot redirected more than " + std::to_string(kMaxRedirects) +
                                " times in one call (cluster being resharded?)");
            return finish_one(g);
        }
        if (redirect->node.host.empty()) redirect->node.host = from.host;
        auto again = std::make_shared<Pipeline>();
        if (redirect->kind == Redirect::Kind::kAsk) {
            again->add({"ASKING"});
        } else {
            map.assign(redirect->slot, redirect->node);
            stale = true;
        }
        again->add(g->pipeline->commands()[i], g->pipeline->script(i));
        const NodeAddress to = redirect->node;
        node(to)->execute(
            *again,
            [weak = weak_from_this(), g, i, to, hop, again](std::vector<Reply> r,
                                                            std::exception_ptr e) {
                auto self = weak.lock();
                if (!self) return;
                if (e) {
                    if (!g->error) g->error = e;
                    self->stale = true;
                    return self->finish_one(g);
                }
                g->replies[i] = std::move(r.back());
                self->follow(g, i, to, hop + 1);
            },
            true, g->replica_wait);
    }
};

AsyncConnection::AsyncConnection(std::shared_ptr<asio::io_context> ioc, Endpoint endpoint,
                                 ConnectOptions options) {
    if (endpoint.cluster())
        cluster_ = std::make_shared<Cluster>(std::move(ioc), std::move(endpoint), options);
    else
        impl_ = std::make_shared<Impl>(std::move(ioc), std::move(endpoint), options);
}

AsyncConnection::~AsyncConnection() {
    if (cluster_) {
        cluster_->close();
        return;
    }
    impl_->close();
    impl_->calls.clear();
}

void AsyncConnection::execute(const Pipeline& pipeline, Callback done) {
    if (cluster_) return cluster_->execute(pipeline, std::move(done));
    impl_->execute(pipeline, std::move(done), true);
}

void AsyncConnection::execute_replicated(const Pipeline& pipeline,
                                         std::chrono::milliseconds replica_wait, Callback done) {
    if (replica_wait.count() <= 0)
        throw Error(ErrorCode::kInternal, "execute_replicated needs a positive replica wait");
    if (cluster_) return cluster_->execute(pipeline, std::move(done), replica_wait);
    impl_->execute(pipeline, std::move(done), true, replica_wait);
}

std::uint64_t AsyncConnection::writes() const {
    if (cluster_) return cluster_->writes();
    return impl_->writes.load(std::memory_order_relaxed);
}

asio::io_context& AsyncConnection::context() const {
    return cluster_ ? *cluster_->ioc : *impl_->ioc;
}

}  // namespace mq::redis
