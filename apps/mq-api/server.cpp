#include "server.hpp"

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "mq/audit/audit_log.hpp"
#include "mq/auth/auth_failures.hpp"
#include "mq/core/codec.hpp"
#include "mq/core/log_context.hpp"
#include "mq/core/throttled_log.hpp"
#include "mq/core/uuid.hpp"

namespace mqapi {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
// One io_context per I/O thread: a connection lives on one thread from accept to close,
// so its handlers need no strand, and the Redis connection of that thread (see
// mq::PublishPipeline) is reached without a hand-off.
using Executor = asio::io_context::executor_type;
using PlainStream = beast::basic_stream<tcp, Executor>;
using TlsStream = beast::ssl_stream<PlainStream>;
using Socket = PlainStream::socket_type;

Overloaded::Overloaded(const std::string& what)
    : mq::Error(mq::ErrorCode::kBackendUnavailable, what, nlohmann::json::object(), 1) {}

namespace {

bool sane_request_id(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
            return false;
    return true;
}

// What a request's log lines are about: its request id, and its tenant once authenticated.
// For the JSON format only: mq-api's text lines already start with the request id, and the
// access line names the tenant. Set on every thread the request runs on (its I/O thread,
// a blocking-pool thread).
class RequestLogScope {
  public:
    explicit RequestLogScope(const Request& r)
        : scope_(mq::LogScope::Show::kJsonOnly, {{"request_id", r.request_id}}) {
        if (r.principal) scope_.add({"tenant", r.principal->tenant}, mq::LogScope::Show::kJsonOnly);
    }

  private:
    mq::LogScope scope_;
};

// Who the audit log names for an admin action of this request (docs/audit.md): the
// token's principal and id, or "service" for X-Service-Token routes.
mq::audit::Actor request_actor(const Request& r, const Route& route) {
    if (r.principal) return {r.principal->name, r.principal->token_id, "api", r.request_id};
    return {route.auth == Auth::kService ? "service" : "anonymous", "", "api", r.request_id};
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

// The key of a client for the failed-authentication limit: its IPv4 address, or the /64
// of an IPv6 address (one host usually holds a whole /64).
std::string client_key(const Socket& socket) {
    beast::error_code ec;
    auto endpoint = socket.remote_endpoint(ec);
    if (ec) return "?";
    auto address = endpoint.address();
    if (address.is_v6()) {
        auto v6 = address.to_v6();
        if (v6.is_v4_mapped())
            return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
        auto bytes = v6.to_bytes();
        std::fill(bytes.begin() + 8, bytes.end(), 0);
        return asio::ip::address_v6(bytes).to_string() + "/64";
    }
    return address.to_string();
}

bool out_of_resources(const beast::error_code& ec) {
    if (ec.category() != boost::system::system_category()) return false;
    int v = ec.value();
    return v == EMFILE || v == ENFILE || v == ENOBUFS || v == ENOMEM;
}

int retry_after_seconds(std::chrono::milliseconds wait) {
    return static_cast<int>(std::max<std::int64_t>(1, (wait.count() + 999) / 1000));
}

Response overloaded_response(const std::string& message) {
    return error_response(
        mq::Error(mq::ErrorCode::kOverloaded, message, nlohmann::json::object(), 1));
}

// Set while a route's async handler runs for a request being admitted: post_blocking
// may then refuse (the request is answered 503); a continuation may not.
thread_local bool admitting = false;

// Repeated warnings of the server, each written at most once per interval.
mq::ThrottledLog accept_failures;
mq::ThrottledLog refused_connections;
mq::ThrottledLog overload_warnings;
mq::ThrottledLog auth_errors;
mq::ThrottledLog handshake_failures;

// A complete HTTP/1.1 answer that closes the connection, as one constant string.
std::string closing_answer(std::string_view status, std::string_view content_type,
                           std::string_view extra_headers, std::string_view body) {
    return "HTTP/1.1 " + std::string(status) +
           "\r\nServer: mq-api\r\nContent-Type: " + std::string(content_type) + "\r\n" +
           std::string(extra_headers) +
           "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
           std::string(body);
}

// Written to a connection refused at the limit.
const std::string& busy_answer() {
    static const std::string answer = closing_answer(
        "503 Service Unavailable", "application/json", "Retry-After: 1\r\n",
        mq::Error(mq::ErrorCode::kOverloaded, "too many connections", nlohmann::json::object(), 1)
            .to_json()
            .dump());
    return answer;
}

// Written to a client that speaks plain HTTP to the TLS port.
const std::string& https_only_answer() {
    static const std::string answer = closing_answer(
        "400 Bad Request", "application/json", "",
        mq::Error(mq::ErrorCode::kHttpsRequired, "this port speaks HTTPS, not plain HTTP")
            .to_json()
            .dump());
    return answer;
}

}  // namespace

class SessionBase;

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
    mq::Authenticator& authenticator;
    std::string service_token;
    mq::AuthFailureLimiter auth_failures;
    // Handlers still queued when the server stops own sessions, whose destructors erase
    // themselves from this map: ~Server destroys those handlers while the map exists.
    std::mutex sessions_mutex;
    std::map<SessionBase*, std::weak_ptr<SessionBase>> sessions;
    std::vector<std::shared_ptr<asio::io_context>> contexts;
    // Keeps the I/O threads running while a drain has closed the acceptor and the only
    // work left is on the blocking pool (a long-poll pull): its reply is posted back here.
    std::vector<asio::executor_work_guard<Executor>> keep_running;
    std::optional<tcp::acceptor> acceptor;
    std::optional<asio::steady_timer> accept_pause;  // back-off after a failed accept
    std::optional<asio::steady_timer> trim_timer;
    static constexpr std::chrono::seconds kTrimEvery{30};
    std::size_t next_context = 0;  // accept thread only
    std::atomic<std::size_t> next_timer{0};
    std::optional<asio::thread_pool> blocking;
    std::optional<asio::thread_pool> lookups;
    std::atomic<std::size_t> blocking_waiting{0};  // posted, not started
    std::atomic<std::size_t> lookups_waiting{0};
    std::atomic<std::size_t> connections{0};
    std::size_t max_connections = 0;
    std::vector<std::thread> threads;
    std::atomic<bool> draining{false};
    std::atomic<int> in_flight{0};
    int bound_port = 0;
    bool stopped = false;
    // The TLS context new connections get (options.tls until a reload replaces it). A
    // connection's SSL holds a reference to its SSL_CTX, so one made from a replaced
    // context keeps working after the context object is gone.
    std::mutex tls_mutex;
    std::shared_ptr<ssl::context> tls_now;

    Impl(const Router& r, ServerOptions o, mq::Authenticator& a, std::string t)
        : router(r),
          options(std::move(o)),
          authenticator(a),
          service_token(std::move(t)),
          auth_failures(options.auth_failure_limit, options.auth_failure_window),
          tls_now(options.tls) {
        for (int i = 0; i < std::max(1, options.threads); ++i) {
            contexts.push_back(std::make_shared<Context>());
            keep_running.push_back(asio::make_work_guard(*contexts.back()));
        }
        acceptor.emplace(*contexts.front());
        accept_pause.emplace(*contexts.front());
        trim_timer.emplace(*contexts.front());
    }

    void accept();
    /// Every kTrimEvery, returns the allocator's free memory to the system (on the
    /// blocking pool: trimming a large heap takes milliseconds).
    void schedule_trim();
    void on_accept(beast::error_code ec, Socket socket);
    void refuse(Socket& socket);
    void close_idle_sessions();
    /// Queues `fn` on the blocking pool; refused (Overloaded) when `bounded` and full.
    void post_blocking(std::function<void()> fn, bool bounded);
    void spawn_lookup(std::function<void()> task);
    void stop_threads() {
        if (stopped) return;
        stopped = true;
        for (auto& c : contexts) c->stop();
        for (auto& t : threads) t.join();
        threads.clear();
        if (lookups) lookups->join();
        if (blocking) blocking->join();
    }
};

// What every session shares whatever its stream: registration for drain, the count of
// connections, the client's address.
class SessionBase {
  public:
    SessionBase(Server::Impl& server, std::string client)
        : server_(server), client_(std::move(client)) {
        server_.connections.fetch_add(1);
    }
    virtual ~SessionBase() {
        {
            std::lock_guard lock(server_.sessions_mutex);
            server_.sessions.erase(this);
        }
        server_.connections.fetch_sub(1);
    }
    /// Closes the connection if it is waiting for a request (used by drain).
    virtual void close_if_idle() = 0;

  protected:
    Server::Impl& server_;
    std::string client_;
};

/// One connection: the same code over a plain TCP stream and over TLS.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
    static constexpr bool kTls = !std::is_same_v<Stream, PlainStream>;

  public:
    template <class... Args>
    Session(Server::Impl& server, std::string client, Socket socket, Args&... args)
        : SessionBase(server, std::move(client)), stream_(std::move(socket), args...) {}

    void start() {
        {
            std::lock_guard lock(server_.sessions_mutex);
            server_.sessions[this] = this->weak_from_this();
        }
        if constexpr (kTls) {
            lowest().expires_after(server_.options.handshake_timeout);
            // Look at the first bytes: a client speaking plain HTTP here gets a short
            // plain answer instead of a failed handshake it cannot read.
            beast::async_detect_ssl(
                lowest(), buffer_,
                [self = this->shared_from_this()](beast::error_code ec, bool is_tls) {
                    self->on_detected(ec, is_tls);
                });
        } else {
            read_header(server_.options.header_timeout);
        }
    }

    void close_if_idle() override {
        asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
            if (!self->busy_) self->close_socket();
        });
    }

  private:
    PlainStream& lowest() { return beast::get_lowest_layer(stream_); }

    void on_detected(beast::error_code ec, bool is_tls) {
        if (ec) return close_socket();
        if (!is_tls) {
            asio::async_write(lowest(), asio::buffer(https_only_answer()),
                              [self = this->shared_from_this()](beast::error_code, std::size_t) {
                                  beast::error_code ignored;
                                  self->lowest().socket().shutdown(tcp::socket::shutdown_send,
                                                                   ignored);
                                  self->discard_until_closed();
                              });
            return;
        }
        if constexpr (kTls) {
            stream_.async_handshake(
                ssl::stream_base::server, buffer_.data(),
                [self = this->shared_from_this()](beast::error_code e, std::size_t used) {
                    if (e) {
                        handshake_failures.log(spdlog::level::info,
                                               "TLS handshake from {} failed: {}", self->client_,
                                               e.message());
                        return self->close_socket();
                    }
                    self->buffer_.consume(used);
                    self->read_header(self->server_.options.header_timeout);
                });
        }
    }

    void read_header(std::chrono::milliseconds timeout) {
        busy_ = false;
        parser_.emplace();
        parser_->header_limit(16 * 1024);
        // No limit while reading the header: Beast would fail the header read on a larger
        // Content-Length (no 413 sent, and the batch routes' larger limit never applied).
        // on_header checks the route's limit and sets it before the body is read. Not
        // boost::none: Beast 1.74 compares the length with the optional, and none is smaller.
        parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
        // A deadline for the whole header, not for each byte: a client that sends a byte
        // every few seconds (slowloris) is cut off all the same.
        lowest().expires_after(timeout);
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = this->shared_from_this()](
                                    beast::error_code ec, std::size_t) { self->on_header(ec); });
    }

    // Keep-alive: wait up to the idle timeout for the next request's first byte, then
    // give its header the header timeout.
    void wait_for_next_request() {
        busy_ = false;
        if (buffer_.size() > 0) return read_header(server_.options.header_timeout);
        // An idle connection keeps no large buffer (10,000 idle clients x 64 KiB adds up).
        if (buffer_.capacity() > kIdleBufferBytes) buffer_.shrink_to_fit();
        lowest().expires_after(server_.options.idle_timeout);
        stream_.async_read_some(
            buffer_.prepare(kIdleBufferBytes),
            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                if (ec) return self->close_socket();
                self->buffer_.commit(n);
                self->read_header(self->server_.options.header_timeout);
            });
    }
    static constexpr std::size_t kIdleBufferBytes = 4096;

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
        lowest().expires_after(server_.options.body_timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = this->shared_from_this()](beast::error_code e, std::size_t) {
                             self->on_body(e);
                         });
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
        lowest().expires_never();
        request_msg_ = parser_->release();
        parser_.reset();
        request_.raw = &request_msg_;
        keep_alive_ = request_msg_.keep_alive() && !server_.draining.load();
        RequestLogScope log_scope(request_);
        dispatch();
    }

    void dispatch() {
        if (!match_.route) {
            if (match_.path_known) {
                // RFC 9110 15.5.6: a 405 lists the methods the target has.
                std::string allow;
                for (auto m : match_.allowed) {
                    if (!allow.empty()) allow += ", ";
                    allow += std::string(http::to_string(m));
                }
                Response refusal = error_response(mq::Error(
                    mq::ErrorCode::kMethodNotAllowed,
                    std::string(http::to_string(request_.method)) + " is not allowed on " +
                        request_.path + " (allowed: " + allow + ")",
                    {{"allow", allow}}));
                refusal.headers.emplace_back("Allow", allow);
                return respond(std::move(refusal));
            }
            return respond(
                error_response(mq::Error(mq::ErrorCode::kNotFound, "no route " + request_.path)));
        }
        const Route& route = *match_.route;
        request_.params = std::move(match_.params);
        if (route.auth == Auth::kBearer) return authenticate();
        if (route.auth == Auth::kService) {
            auto token = request_.header("X-Service-Token");
            if (server_.service_token.empty())
                return respond(error_response(
                    mq::Error(mq::ErrorCode::kUnauthorized,
                              "internal routes are disabled (INTERNAL_SERVICE_TOKEN is not set)")));
            // A guessed service token counts against the same failed-authentication limit
            // (the right one is cheap to check and always works).
            if (token.empty() || !same_secret(token, server_.service_token)) {
                if (auto wait = server_.auth_failures.blocked(client_))
                    return refuse_over_limit(*wait);
                server_.auth_failures.record_failure(client_);
                return respond(error_response(
                    mq::Error(mq::ErrorCode::kUnauthorized, "missing or wrong X-Service-Token")));
            }
        }
        run_route();
    }

    // A client over its failed-authentication limit: 429 without a lookup, held back for
    // AUTH_FAILURE_DELAY_MS (a tarpit, so a keep-alive flood gets one 429 per connection
    // per delay instead of taking every core: bench/abuse). The connection count stays
    // bounded by MAX_CONNECTIONS.
    void refuse_over_limit(std::chrono::milliseconds wait) {
        overload_warnings.warn("client {} is over its failed-authentication limit", client_);
        int seconds = retry_after_seconds(wait);
        Response refusal = error_response(
            mq::Error(mq::ErrorCode::kTooManyAuthFailures,
                      "too many failed authentications from this address; retry in " +
                          std::to_string(seconds) + " s",
                      nlohmann::json::object(), seconds));
        const auto delay = server_.options.auth_failure_delay;
        if (delay.count() <= 0) return respond(std::move(refusal));
        auto timer = std::make_shared<asio::steady_timer>(stream_.get_executor(), delay);
        timer->async_wait([self = this->shared_from_this(), timer, refusal = std::move(refusal)](
                              beast::error_code) mutable { self->respond(std::move(refusal)); });
    }

    // A cached answer is used on this thread; a token that needs PostgreSQL is looked up
    // on the lookup threads (one lookup per token at a time), and the request continues
    // here with the answer. A client over its failed-authentication limit is answered 429
    // without a lookup (a token it used successfully before still works).
    void authenticate() {
        auto token = bearer_token(request_.header("Authorization"));
        if (token.empty())
            return respond(
                error_response(mq::Error(mq::ErrorCode::kUnauthorized,
                                         "missing bearer token (Authorization: Bearer <token>)")));
        auto cached = server_.authenticator.cached(token);
        if (cached && cached->principal) return authenticated(std::move(cached->principal));
        if (auto wait = server_.auth_failures.blocked(client_)) return refuse_over_limit(*wait);
        if (cached) return authenticated(std::nullopt);
        auto self = this->shared_from_this();
        auto& impl = server_;
        server_.authenticator.authenticate_async(
            token,
            [self](std::optional<mq::Principal> principal, std::exception_ptr error) {
                asio::post(self->stream_.get_executor(),
                           [self, principal = std::move(principal), error]() mutable {
                               RequestLogScope log_scope(self->request_);
                               if (error) return self->respond_error(error, "authentication");
                               self->authenticated(std::move(principal));
                           });
            },
            [&impl](std::function<void()> task) { impl.spawn_lookup(std::move(task)); });
    }

    void authenticated(std::optional<mq::Principal> principal) {
        if (!principal) {
            server_.auth_failures.record_failure(client_);
            return respond(error_response(
                mq::Error(mq::ErrorCode::kUnauthorized, "invalid, expired or revoked token")));
        }
        request_.principal = std::move(principal);
        run_route();
    }

    void respond_error(std::exception_ptr error, const char* what) {
        try {
            std::rethrow_exception(error);
        } catch (const Overloaded& e) {
            respond(overloaded_response(e.what()));
        } catch (const mq::Error& e) {
            respond(error_response(e));
        } catch (const std::exception& e) {
            auth_errors.error("{} {} failed: {}", request_.request_id, what, e.what());
            respond(error_response(mq::Error(mq::ErrorCode::kInternal, "internal error")));
        }
    }

    void run_route() {
        const Route& route = *match_.route;
        auto self = this->shared_from_this();
        Reply reply = [self](Response r) {
            asio::post(self->stream_.get_executor(),
                       [self, r = std::move(r)]() mutable { self->respond(std::move(r)); });
        };
        if (route.runs == Runs::kInline) {
            admitting = true;
            try {
                route.async(request_, std::move(reply));
            } catch (const Overloaded& e) {
                respond(overloaded_response(e.what()));
            } catch (const mq::Error& e) {
                respond(error_response(e));
            } catch (const std::exception& e) {
                spdlog::error("{} {} failed: {}", request_.request_id, route.pattern, e.what());
                respond(error_response(mq::Error(mq::ErrorCode::kInternal, "internal error")));
            }
            admitting = false;
            return;
        }
        try {
            server_.post_blocking(
                [self, &route, reply = std::move(reply)] {
                    RequestLogScope log_scope(self->request_);
                    mq::audit::ActingAs acting(request_actor(self->request_, route));
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
                },
                /*bounded=*/true);
        } catch (const Overloaded& e) {
            respond(overloaded_response(e.what()));
        }
    }

    void respond(Response r) {
        RequestLogScope log_scope(request_);
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
        lowest().expires_after(server_.options.write_timeout);
        http::async_write(stream_, *res,
                          [self = this->shared_from_this(), res](
                              beast::error_code ec, std::size_t) { self->on_written(ec); });
    }

    void on_written(beast::error_code ec) {
        finish_request();
        if (ec || !keep_alive_) {
            if (ec) return close_socket();
            if constexpr (kTls) {
                // close_notify, then wait (briefly) for the client's before closing.
                lowest().expires_after(std::chrono::seconds(2));
                stream_.async_shutdown(
                    [self = this->shared_from_this()](beast::error_code) { self->close_socket(); });
            } else {
                beast::error_code ignored;
                lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
                // Closing with unread request bytes (a refused body) would send a reset
                // that can destroy the answer before the client reads it: read and drop
                // what the client still sends, for a short while, then close.
                discard_until_closed();
            }
            return;
        }
        request_ = Request{};
        request_msg_ = {};
        match_ = {};
        wait_for_next_request();
    }

    void discard_until_closed() {
        if (discarded_ == 0) lowest().expires_after(std::chrono::seconds(2));
        scratch_.resize(16 * 1024);
        lowest().async_read_some(asio::buffer(scratch_), [self = this->shared_from_this()](
                                                             beast::error_code ec, std::size_t n) {
            self->discarded_ += n;
            if (!ec && self->discarded_ < kMaxDiscard) self->discard_until_closed();
        });
    }
    static constexpr std::size_t kMaxDiscard = 64 * 1024 * 1024;

    void finish_request() {
        if (!counted_) return;
        counted_ = false;
        auto micros =
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_).count();
        if (match_.route) match_.route->stats->record(status_, static_cast<std::uint64_t>(micros));
        if (server_.options.access_log) {
            // The columns of the text line, as fields of the JSON line.
            const std::string method(http::to_string(request_.method));
            const double ms = static_cast<double>(micros) / 1000.0;
            mq::LogScope fields(mq::LogScope::Show::kJsonOnly, {{"request_id", request_.request_id},
                                                                {"method", method},
                                                                {"path", request_.path},
                                                                {"status", status_},
                                                                {"duration_ms", ms}});
            if (request_.principal)
                fields.add({"tenant", request_.principal->tenant}, mq::LogScope::Show::kJsonOnly);
            if (match_.route)
                fields.add({"route", match_.route->pattern}, mq::LogScope::Show::kJsonOnly);
            spdlog::info("{} {} {} {} {} {:.3f}ms", request_.request_id,
                         request_.principal ? request_.principal->tenant : "-", method,
                         match_.route ? match_.route->pattern : request_.path, status_, ms);
        }
        server_.in_flight.fetch_sub(1);
    }

    void close() {
        finish_request();
        close_socket();
    }

    void close_socket() {
        beast::error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
        lowest().close();
    }

    Stream stream_;
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
    acceptor->async_accept(
        context, [this](beast::error_code ec, Socket socket) { on_accept(ec, std::move(socket)); });
}

void Server::Impl::on_accept(beast::error_code ec, Socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
    if (ec) {
        // Out of descriptors (or memory): the pending connection stays in the backlog and
        // accepting again at once would fail again at once, a busy loop. Pause instead.
        auto pause =
            out_of_resources(ec) ? std::chrono::milliseconds(100) : std::chrono::milliseconds(10);
        accept_failures.warn("accept failed: {}; pausing accepts for {} ms ({} connections open)",
                             ec.message(), pause.count(), connections.load());
        accept_pause->expires_after(pause);
        accept_pause->async_wait([this](beast::error_code e) {
            if (!e && acceptor->is_open()) accept();
        });
        return;
    }
    if (connections.load() >= max_connections) {
        refuse(socket);
    } else {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto client = client_key(socket);
        if (options.tls) {
            std::shared_ptr<ssl::context> tls;
            {
                std::lock_guard lock(tls_mutex);
                tls = tls_now;
            }
            std::make_shared<Session<TlsStream>>(*this, std::move(client), std::move(socket), *tls)
                ->start();
        } else
            std::make_shared<Session<PlainStream>>(*this, std::move(client), std::move(socket))
                ->start();
    }
    accept();
}

void Server::Impl::schedule_trim() {
    trim_timer->expires_after(kTrimEvery);
    trim_timer->async_wait([this](beast::error_code ec) {
        if (ec || draining.load()) return;
        post_blocking([] { malloc_trim(0); }, /*bounded=*/false);
        schedule_trim();
    });
}

void Server::Impl::refuse(Socket& socket) {
    refused_connections.warn("connection limit of {} reached; refusing new connections",
                             max_connections);
    beast::error_code ignored;
    // One non-blocking write of a constant answer (plain HTTP only: a TLS client could
    // not read it), then close: nothing about this connection waits or stays.
    if (!options.tls) {
        socket.non_blocking(true, ignored);
        socket.send(asio::buffer(busy_answer()), 0, ignored);
    }
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
}

void Server::Impl::post_blocking(std::function<void()> fn, bool bounded) {
    if (bounded && blocking_waiting.load() >= options.blocking_queue_limit) {
        overload_warnings.warn("blocking pool queue full ({} waiting); answering 503",
                               blocking_waiting.load());
        throw Overloaded("the server is busy; retry shortly");
    }
    blocking_waiting.fetch_add(1);
    asio::post(*blocking, [this, fn = std::move(fn)] {
        blocking_waiting.fetch_sub(1);
        fn();
    });
}

void Server::Impl::spawn_lookup(std::function<void()> task) {
    if (lookups_waiting.load() >= options.lookup_queue_limit) {
        overload_warnings.warn("token lookup queue full ({} waiting); answering 503",
                               lookups_waiting.load());
        throw Overloaded("the server is busy; retry shortly");
    }
    lookups_waiting.fetch_add(1);
    asio::post(*lookups, [this, task = std::move(task)] {
        lookups_waiting.fetch_sub(1);
        task();
    });
}

void Server::Impl::close_idle_sessions() {
    std::vector<std::shared_ptr<SessionBase>> live;
    {
        std::lock_guard lock(sessions_mutex);
        for (auto& [p, w] : sessions)
            if (auto s = w.lock()) live.push_back(std::move(s));
    }
    for (auto& s : live) s->close_if_idle();
}

Server::Server(const Router& router, ServerOptions options, mq::Authenticator& authenticator,
               std::string service_token)
    : impl_(std::make_unique<Impl>(router, std::move(options), authenticator,
                                   std::move(service_token))) {}

Server::~Server() {
    impl_->stop_threads();
    impl_->accept_pause.reset();
    impl_->trim_timer.reset();
    impl_->acceptor.reset();
    for (auto& c : impl_->contexts) static_cast<Context&>(*c).destroy_pending_handlers();
}

namespace {

// Connections admitted at most: the configured number, never more than the descriptors
// allow (raising the soft RLIMIT_NOFILE towards the hard one when that helps).
std::size_t connection_limit(std::size_t wanted) {
    constexpr std::size_t kDefault = 10000;
    const std::size_t reserve = ServerOptions::kReservedDescriptors;
    std::size_t target = (wanted ? wanted : kDefault) + reserve;
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return wanted ? wanted : kDefault;
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < target) {
        rlimit raised = limit;
        raised.rlim_cur =
            limit.rlim_max == RLIM_INFINITY ? target : std::min<rlim_t>(target, limit.rlim_max);
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
    }
    std::size_t usable = limit.rlim_cur == RLIM_INFINITY
                             ? target - reserve
                             : (limit.rlim_cur > reserve + 16 ? limit.rlim_cur - reserve : 16);
    std::size_t max = std::min(wanted ? wanted : kDefault, usable);
    if (wanted && max < wanted)
        spdlog::warn(
            "MAX_CONNECTIONS={} is more than the open-file limit allows ({} minus {} kept for "
            "backends); admitting {} connections",
            wanted, static_cast<std::uint64_t>(limit.rlim_cur), reserve, max);
    return max;
}

}  // namespace

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
    im.max_connections = connection_limit(im.options.max_connections);
    im.blocking.emplace(static_cast<std::size_t>(std::max(1, im.options.blocking_threads)));
    im.lookups.emplace(static_cast<std::size_t>(std::max(1, im.options.lookup_threads)));
    im.accept();
    im.schedule_trim();
    for (auto& context : im.contexts) im.threads.emplace_back([context] { context->run(); });
}

int Server::port() const { return impl_->bound_port; }

std::size_t Server::max_connections() const { return impl_->max_connections; }

const std::vector<std::shared_ptr<asio::io_context>>& Server::contexts() const {
    return impl_->contexts;
}

bool Server::draining() const { return impl_->draining.load(); }

void Server::replace_tls(std::shared_ptr<boost::asio::ssl::context> tls) {
    if (!impl_->options.tls || !tls)
        throw mq::Error(mq::ErrorCode::kValidation,
                        "switching between HTTP and HTTPS needs a restart");
    std::lock_guard lock(impl_->tls_mutex);
    impl_->tls_now = std::move(tls);
}

void Server::post_blocking(std::function<void()> fn) {
    impl_->post_blocking(std::move(fn), /*bounded=*/admitting);
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
        im.accept_pause->cancel();
        im.trim_timer->cancel();
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
