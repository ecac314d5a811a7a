#include "server.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "mq/core/codec.hpp"
#include "mq/core/uuid.hpp"

namespace mqapi {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
// One io_context per I/O thread: a connection lives on one thread from accept to close,
// so its handlers need no strand, and the Redis connection of that thread (see
// mq::PublishPipeline) is reached without a hand-off.
using Executor = asio::io_context::executor_type;
using Stream = beast::basic_stream<tcp, Executor>;
using Socket = Stream::socket_type;

namespace {

bool sane_request_id(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
            return false;
    return true;
}

std::string_view bearer_token(std::string_view authorization) {
    constexpr std::string_view kScheme = "Bearer ";
    if (authorization.size() <= kScheme.size()) return {};
    for (std::size_t i = 0; i < kScheme.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
            std::tolower(static_cast<unsigned char>(kScheme[i])))
            return {};
    auto token = authorization.substr(kScheme.size());
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    return token;
}

bool same_secret(std::string_view a, std::string_view b) {
    return mq::codec::constant_time_equal(a, b);
}

}  // namespace

class Session;

// An io_context for one thread whose queued handlers can be destroyed on demand: the
// contexts may outlive the server (mq::PublishPipeline holds them), the sessions those
// handlers own must not.
struct Context : asio::io_context {
    Context() : asio::io_context(1) {}
    void destroy_pending_handlers() { shutdown(); }
};

struct Server::Impl {
    const Router& router;
    ServerOptions options;
    Authenticate authenticate;
    std::string service_token;
    // Handlers still queued when the server stops own sessions, whose destructors erase
    // themselves from this map: ~Server destroys those handlers while the map exists.
    std::mutex sessions_mutex;
    std::map<Session*, std::weak_ptr<Session>> sessions;
    std::vector<std::shared_ptr<asio::io_context>> contexts;
    // Keeps the I/O threads running while a drain has closed the acceptor and the only
    // work left is on the blocking pool (a long-poll pull): its reply is posted back here.
    std::vector<asio::executor_work_guard<Executor>> keep_running;
    std::optional<tcp::acceptor> acceptor;
    std::size_t next_context = 0;  // accept thread only
    std::atomic<std::size_t> next_timer{0};
    std::optional<asio::thread_pool> blocking;
    std::vector<std::thread> threads;
    std::atomic<bool> draining{false};
    std::atomic<int> in_flight{0};
    int bound_port = 0;
    bool stopped = false;

    Impl(const Router& r, ServerOptions o, Authenticate a, std::string t)
        : router(r),
          options(std::move(o)),
          authenticate(std::move(a)),
          service_token(std::move(t)) {
        for (int i = 0; i < std::max(1, options.threads); ++i) {
            contexts.push_back(std::make_shared<Context>());
            keep_running.push_back(asio::make_work_guard(*contexts.back()));
        }
        acceptor.emplace(*contexts.front());
    }

    void accept();
    void close_idle_sessions();
    void stop_threads() {
        if (stopped) return;
        stopped = true;
        for (auto& c : contexts) c->stop();
        for (auto& t : threads) t.join();
        threads.clear();
        if (blocking) blocking->join();
    }
};

class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(Socket socket, Server::Impl& server) : stream_(std::move(socket)), server_(server) {}

    void start() {
        {
            std::lock_guard lock(server_.sessions_mutex);
            server_.sessions[this] = weak_from_this();
        }
        read_header(server_.options.header_timeout);
    }
    ~Session() {
        std::lock_guard lock(server_.sessions_mutex);
        server_.sessions.erase(this);
    }

    /// Closes the connection if it is waiting for a request (used by drain).
    void close_if_idle() {
        asio::post(stream_.get_executor(), [self = shared_from_this()] {
            if (!self->busy_) {
                beast::error_code ec;
                self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
                self->stream_.close();
            }
        });
    }

  private:
    void read_header(std::chrono::seconds timeout) {
        busy_ = false;
        parser_.emplace();
        parser_->header_limit(16 * 1024);
        // No limit while reading the header: Beast would fail the header read on a larger
        // Content-Length (no 413 sent, and the batch routes' larger limit never applied).
        // on_header checks the route's limit and sets it before the body is read. Not
        // boost::none: Beast 1.74 compares the length with the optional, and none is smaller.
        parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
        stream_.expires_after(timeout);
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                    self->on_header(ec);
                                });
    }

    void on_header(beast::error_code ec) {
        if (ec) return close();  // timeout, client gone, malformed header
        busy_ = true;
        started_ = Clock::now();
        server_.in_flight.fetch_add(1);
        counted_ = true;
        const auto& req = parser_->get();
        auto target = std::string_view(req.target().data(), req.target().size());
        auto q = target.find('?');
        request_.path = std::string(target.substr(0, q));
        request_.query = q == std::string_view::npos ? std::map<std::string, std::string>{}
                                                     : parse_query(target.substr(q + 1));
        request_.method = req.method();
        auto id = req["X-Request-Id"];
        request_.request_id = sane_request_id(std::string_view(id.data(), id.size()))
                                  ? std::string(id.data(), id.size())
                                  : mq::new_uuid_v7();
        match_ = server_.router.match(req.method(), request_.path);
        std::size_t limit = server_.options.body_limit;
        if (match_.route && match_.route->body_limit) limit = match_.route->body_limit;
        if (auto length = parser_->content_length(); length && *length > limit) {
            // Refused from the header alone: the body is never read, so the connection
            // cannot be reused.
            keep_alive_ = false;
            return respond(error_response(mq::Error(mq::ErrorCode::kPayloadTooLarge,
                                                    "request body of " + std::to_string(*length) +
                                                        " bytes is over the limit of " +
                                                        std::to_string(limit) + " bytes",
                                                    {{"limit", limit}, {"size", *length}})));
        }
        parser_->body_limit(limit);
        limit_ = limit;
        stream_.expires_after(server_.options.request_timeout);
        http::async_read(
            stream_, buffer_, *parser_,
            [self = shared_from_this()](beast::error_code e, std::size_t) { self->on_body(e); });
    }

    void on_body(beast::error_code ec) {
        if (ec == http::error::body_limit) {
            keep_alive_ = false;
            return respond(error_response(
                mq::Error(mq::ErrorCode::kPayloadTooLarge,
                          "request body is over the limit of " + std::to_string(limit_) + " bytes",
                          {{"limit", limit_}})));
        }
        if (ec) return close();
        stream_.expires_never();
        request_msg_ = parser_->release();
        request_.raw = &request_msg_;
        keep_alive_ = request_msg_.keep_alive() && !server_.draining.load();
        dispatch();
    }

    void dispatch() {
        if (!match_.route) {
            if (match_.path_known) {
                return respond(error_response(405, "MQ_METHOD_NOT_ALLOWED",
                                              std::string(http::to_string(request_.method)) +
                                                  " is not allowed on " + request_.path));
            }
            return respond(error_response(404, "MQ_NOT_FOUND", "no route " + request_.path));
        }
        const Route& route = *match_.route;
        request_.params = std::move(match_.params);
        try {
            if (route.auth == Auth::kBearer) {
                auto token = bearer_token(request_.header("Authorization"));
                if (token.empty())
                    throw mq::Error(mq::ErrorCode::kUnauthorized,
                                    "missing bearer token (Authorization: Bearer <token>)");
                request_.principal = server_.authenticate(token);
                if (!request_.principal)
                    throw mq::Error(mq::ErrorCode::kUnauthorized,
                                    "invalid, expired or revoked token");
            } else if (route.auth == Auth::kService) {
                auto token = request_.header("X-Service-Token");
                if (server_.service_token.empty())
                    throw mq::Error(
                        mq::ErrorCode::kUnauthorized,
                        "internal routes are disabled (INTERNAL_SERVICE_TOKEN is not set)");
                if (token.empty() || !same_secret(token, server_.service_token))
                    throw mq::Error(mq::ErrorCode::kUnauthorized,
                                    "missing or wrong X-Service-Token");
            }
        } catch (const mq::Error& e) {
            return respond(error_response(e));
        } catch (const std::exception& e) {
            spdlog::error("{} authentication failed: {}", request_.request_id, e.what());
            return respond(error_response(mq::Error(mq::ErrorCode::kInternal, "internal error")));
        }

        auto self = shared_from_this();
        Reply reply = [self](Response r) {
            asio::post(self->stream_.get_executor(),
                       [self, r = std::move(r)]() mutable { self->respond(std::move(r)); });
        };
        if (route.runs == Runs::kInline) {
            try {
                route.async(request_, std::move(reply));
            } catch (const mq::Error& e) {
                respond(error_response(e));
            } catch (const std::exception& e) {
                spdlog::error("{} {} failed: {}", request_.request_id, route.pattern, e.what());
                respond(error_response(mq::Error(mq::ErrorCode::kInternal, "internal error")));
            }
            return;
        }
        asio::post(*server_.blocking, [self, &route, reply = std::move(reply)] {
            Response r;
            try {
                r = route.sync(self->request_);
            } catch (const mq::Error& e) {
                r = error_response(e);
            } catch (const std::exception& e) {
                spdlog::error("{} {} failed: {}", self->request_.request_id, route.pattern,
                              e.what());
                r = error_response(mq::Error(mq::ErrorCode::kInternal, "internal error"));
            }
            reply(std::move(r));
        });
    }

    void respond(Response r) {
        redact_answer(r, request_.request_id);  // no backend text leaves (router.hpp)
        auto res = std::make_shared<http::response<http::string_body>>();
        res->version(11);
        res->result(static_cast<http::status>(r.status));
        res->set(http::field::server, "mq-api");
        res->set(http::field::content_type, r.content_type);
        res->set("X-Request-Id", request_.request_id);
        for (auto& [k, v] : r.headers) res->set(k, v);
        if (r.status == 401) res->set(http::field::www_authenticate, "Bearer");
        if (server_.draining.load()) keep_alive_ = false;
        res->keep_alive(keep_alive_);
        res->body() = std::move(r.body);
        res->prepare_payload();
        status_ = r.status;
        stream_.expires_after(server_.options.request_timeout);
        http::async_write(stream_, *res,
                          [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                              self->on_written(ec);
                          });
    }

    void on_written(beast::error_code ec) {
        finish_request();
        if (ec || !keep_alive_) {
            beast::error_code ignored;
            stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
            // Closing with unread request bytes (a refused body) would send a reset that
            // can destroy the answer before the client reads it: read and drop what the
            // client still sends, for a short while, then close.
            if (!ec) discard_until_closed();
            return;
        }
        request_ = Request{};
        request_msg_ = {};
        match_ = {};
        read_header(server_.options.idle_timeout);
    }

    void discard_until_closed() {
        if (discarded_ == 0) stream_.expires_after(std::chrono::seconds(2));
        scratch_.resize(64 * 1024);
        stream_.async_read_some(asio::buffer(scratch_),
                                [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                                    self->discarded_ += n;
                                    if (!ec && self->discarded_ < kMaxDiscard)
                                        self->discard_until_closed();
                                });
    }
    static constexpr std::size_t kMaxDiscard = 64 * 1024 * 1024;

    void finish_request() {
        if (!counted_) return;
        counted_ = false;
        auto micros =
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_).count();
        if (match_.route) match_.route->stats->record(status_, static_cast<std::uint64_t>(micros));
        if (server_.options.access_log)
            spdlog::info("{} {} {} {} {} {:.3f}ms", request_.request_id,
                         request_.principal ? request_.principal->tenant : "-",
                         std::string(http::to_string(request_.method)),
                         match_.route ? match_.route->pattern : request_.path, status_,
                         static_cast<double>(micros) / 1000.0);
        server_.in_flight.fetch_sub(1);
    }

    void close() {
        finish_request();
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    }

    Stream stream_;
    Server::Impl& server_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    http::request<http::string_body> request_msg_;
    Request request_;
    Router::Match match_;
    std::size_t limit_ = 0;
    std::vector<char> scratch_;
    std::size_t discarded_ = 0;
    bool keep_alive_ = true;
    bool busy_ = false;
    bool counted_ = false;
    int status_ = 0;
    Clock::time_point started_;
};

void Server::Impl::accept() {
    auto& context = *contexts[next_context++ % contexts.size()];
    acceptor->async_accept(context, [this](beast::error_code ec, Socket socket) {
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
            spdlog::warn("accept failed: {}", ec.message());
        } else {
            beast::error_code ignored;
            socket.set_option(tcp::no_delay(true), ignored);
            std::make_shared<Session>(std::move(socket), *this)->start();
        }
        if (acceptor->is_open()) accept();
    });
}

void Server::Impl::close_idle_sessions() {
    std::vector<std::shared_ptr<Session>> live;
    {
        std::lock_guard lock(sessions_mutex);
        for (auto& [p, w] : sessions)
            if (auto s = w.lock()) live.push_back(std::move(s));
    }
    for (auto& s : live) s->close_if_idle();
}

Server::Server(const Router& router, ServerOptions options, Authenticate authenticate,
               std::string service_token)
    : impl_(std::make_unique<Impl>(router, std::move(options), std::move(authenticate),
                                   std::move(service_token))) {}

Server::~Server() {
    impl_->stop_threads();
    impl_->acceptor.reset();
    for (auto& c : impl_->contexts) static_cast<Context&>(*c).destroy_pending_handlers();
}

void Server::start() {
    auto& im = *impl_;
    beast::error_code ec;
    auto address = asio::ip::make_address(im.options.address, ec);
    if (ec) throw mq::ValidationError("invalid listen address '" + im.options.address + "'");
    tcp::endpoint ep(address, static_cast<unsigned short>(im.options.port));
    im.acceptor->open(ep.protocol(), ec);
    if (!ec) im.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) im.acceptor->bind(ep, ec);
    if (!ec) im.acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw mq::Error(mq::ErrorCode::kInternal, "cannot listen on " + im.options.address + ":" +
                                                      std::to_string(im.options.port) + ": " +
                                                      ec.message());
    im.bound_port = im.acceptor->local_endpoint().port();
    im.blocking.emplace(static_cast<std::size_t>(std::max(1, im.options.blocking_threads)));
    im.accept();
    for (auto& context : im.contexts) im.threads.emplace_back([context] { context->run(); });
}

int Server::port() const { return impl_->bound_port; }

const std::vector<std::shared_ptr<asio::io_context>>& Server::contexts() const {
    return impl_->contexts;
}

bool Server::draining() const { return impl_->draining.load(); }

void Server::post_blocking(std::function<void()> fn) {
    asio::post(*impl_->blocking, std::move(fn));
}

void Server::post_after(std::chrono::milliseconds delay, std::function<void()> fn) {
    auto& context = *impl_->contexts[impl_->next_timer++ % impl_->contexts.size()];
    auto timer = std::make_shared<asio::steady_timer>(context, delay);
    timer->async_wait([timer, fn = std::move(fn)](beast::error_code) { fn(); });
}

int Server::drain(std::chrono::milliseconds deadline) {
    auto& im = *impl_;
    im.draining = true;
    asio::post(*im.contexts.front(), [&im] {
        beast::error_code ignored;
        im.acceptor->close(ignored);
    });
    auto until = Clock::now() + deadline;
    while (Clock::now() < until) {
        im.close_idle_sessions();
        if (im.in_flight.load() == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    int cut = im.in_flight.load();
    im.stop_threads();
    return cut;
}

}  // namespace mqapi
