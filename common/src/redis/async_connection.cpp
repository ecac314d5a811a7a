#include "mq/redis/async_connection.hpp"

#include <hiredis/hiredis.h>

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
#include <string>
#include <unordered_set>

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

    void execute(const Pipeline& pipeline, Callback done, bool retry_noscript) {
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
            done = [weak = weak_from_this(), &pipeline, done = std::move(done)](
                       std::vector<Reply> replies, std::exception_ptr error) mutable {
                auto self = weak.lock();
                if (error || !self) return done(std::move(replies), std::move(error));
                self->rerun_noscript(pipeline, std::move(replies), std::move(done));
            };
        }
        push_call(pipeline.size(), std::move(done));
        schedule_flush();
    }

    // Runs the commands that got NOSCRIPT once more (their scripts are loaded first),
    // then calls done with every reply.
    void rerun_noscript(const Pipeline& pipeline, std::vector<Reply> replies, Callback done) {
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
            false);
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

    void flush() {
        if (writing || out.empty() || state != State::kOpen) return;
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

AsyncConnection::AsyncConnection(std::shared_ptr<asio::io_context> ioc, Endpoint endpoint,
                                 ConnectOptions options)
    : impl_(std::make_shared<Impl>(std::move(ioc), std::move(endpoint), options)) {}

AsyncConnection::~AsyncConnection() {
    impl_->close();
    impl_->calls.clear();
}

void AsyncConnection::execute(const Pipeline& pipeline, Callback done) {
    impl_->execute(pipeline, std::move(done), true);
}

std::uint64_t AsyncConnection::writes() const {
    return impl_->writes.load(std::memory_order_relaxed);
}

asio::io_context& AsyncConnection::context() const { return *impl_->ioc; }

}  // namespace mq::redis
