#include "http_sink.hpp"

#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace mqtest {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

constexpr std::uint64_t kBodyLimit = 64 * 1024 * 1024;

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

}  // namespace

std::string RecordedRequest::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (iequals(n, name)) return v;
    return "";
}

bool RecordedRequest::has_header(std::string_view name) const {
    for (const auto& h : headers)
        if (iequals(h.first, name)) return true;
    return false;
}

struct HttpSink::State {
    net::io_context io;  // gives sockets an executor; every operation here is synchronous
    tcp::acceptor acceptor{io};
    std::thread accept_thread;

    mutable std::mutex mutex;
    mutable std::condition_variable changed;  // a request arrived, or the sink is stopping
    bool stopping = false;
    std::deque<SinkResponse> script;
    std::function<SinkResponse(const RecordedRequest&)> handler;
    SinkResponse default_response{200, {}, "ok", {}, false, false};
    std::vector<RecordedRequest> requests;
    int accepted = 0;
    std::map<int, tcp::socket*> live;    // open connections, cut by the destructor
    std::map<int, std::thread> threads;  // one per connection
    std::vector<int> finished;           // connection threads ready to be joined

    void accept_loop() {
        for (;;) {
            tcp::socket socket(io);
            boost::system::error_code ec;
            acceptor.accept(socket, ec);
            std::lock_guard lock(mutex);
            if (stopping) return;
            if (ec) continue;  // e.g. the peer reset before we accepted
            socket.set_option(tcp::no_delay(true), ec);
            for (int id : finished) {
                threads[id].join();
                threads.erase(id);
            }
            finished.clear();
            int id = ++accepted;
            threads[id] =
                std::thread([this, id, s = std::move(socket)]() mutable { serve(id, s); });
        }
    }

    SinkResponse answer_for(const RecordedRequest& request) {
        std::unique_lock lock(mutex);
        if (!script.empty()) {
            SinkResponse r = std::move(script.front());
            script.pop_front();
            return r;
        }
        if (handler) {
            auto h = handler;
            lock.unlock();
            return h(request);
        }
        return default_response;
    }

    void serve(int id, tcp::socket& socket) {
        {
            std::lock_guard lock(mutex);
            if (stopping) return finish(id, socket);
            live[id] = &socket;
        }
        boost::beast::flat_buffer buffer;
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.body_limit(kBodyLimit);
            boost::system::error_code ec;
            http::read(socket, buffer, parser, ec);
            if (ec) break;
            const auto& req = parser.get();
            RecordedRequest rec;
            rec.method = std::string(req.method_string());
            rec.target = std::string(req.target());
            for (const auto& field : req)
                rec.headers.emplace_back(std::string(field.name_string()),
                                         std::string(field.value()));
            rec.body = req.body();
            rec.received = std::chrono::steady_clock::now();
            rec.connection = id;
            {
                std::lock_guard lock(mutex);
                requests.push_back(rec);
            }
            changed.notify_all();

            SinkResponse answer = answer_for(rec);
            if (answer.delay.count() > 0) {
                std::unique_lock lock(mutex);
                if (changed.wait_for(lock, answer.delay, [this] { return stopping; })) break;
            }
            if (answer.drop) break;
            http::response<http::string_body> res;
            res.version(req.version());
            res.result(static_cast<unsigned>(answer.status));
            res.set(http::field::server, "mqtest-http-sink");
            for (const auto& [name, value] : answer.headers) res.set(name, value);
            res.body() = answer.body;
            res.keep_alive(req.keep_alive() && !answer.close);
            res.prepare_payload();
            http::write(socket, res, ec);
            if (ec || !res.keep_alive()) break;
        }
        finish(id, socket);
    }

    void finish(int id, tcp::socket& socket) {
        std::lock_guard lock(mutex);
        live.erase(id);
        boost::system::error_code ec;
        socket.shutdown(tcp::socket::shutdown_both, ec);
        socket.close(ec);
        finished.push_back(id);
    }
};

HttpSink::HttpSink() : state_(std::make_unique<State>()) {
    tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), 0);
    state_->acceptor.open(endpoint.protocol());
    state_->acceptor.set_option(net::socket_base::reuse_address(true));
    state_->acceptor.bind(endpoint);
    state_->acceptor.listen(net::socket_base::max_listen_connections);
    port_ = state_->acceptor.local_endpoint().port();
    state_->accept_thread = std::thread([s = state_.get()] { s->accept_loop(); });
}

HttpSink::~HttpSink() {
    State& s = *state_;
    {
        std::lock_guard lock(s.mutex);
        s.stopping = true;
    }
    s.changed.notify_all();
    // shutdown() on a listening socket wakes a blocked accept() on Linux.
    ::shutdown(s.acceptor.native_handle(), SHUT_RDWR);
    s.accept_thread.join();
    std::map<int, std::thread> threads;
    {
        std::lock_guard lock(s.mutex);
        for (auto& [id, socket] : s.live) ::shutdown(socket->native_handle(), SHUT_RDWR);
        threads = std::move(s.threads);
    }
    for (auto& [id, t] : threads) t.join();
    boost::system::error_code ec;
    s.acceptor.close(ec);
}

std::string HttpSink::url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

void HttpSink::respond_with(SinkResponse response) {
    std::lock_guard lock(state_->mutex);
    state_->script.push_back(std::move(response));
}

void HttpSink::respond_with(int status, std::map<std::string, std::string> headers,
                            std::string body, std::chrono::milliseconds delay) {
    SinkResponse r;
    r.status = status;
    r.headers = std::move(headers);
    r.body = std::move(body);
    r.delay = delay;
    respond_with(std::move(r));
}

void HttpSink::set_handler(std::function<SinkResponse(const RecordedRequest&)> handler) {
    std::lock_guard lock(state_->mutex);
    state_->handler = std::move(handler);
}

void HttpSink::set_default(SinkResponse response) {
    std::lock_guard lock(state_->mutex);
    state_->default_response = std::move(response);
}

std::vector<RecordedRequest> HttpSink::requests() const {
    std::lock_guard lock(state_->mutex);
    return state_->requests;
}

std::size_t HttpSink::request_count() const {
    std::lock_guard lock(state_->mutex);
    return state_->requests.size();
}

bool HttpSink::wait_for(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(state_->mutex);
    return state_->changed.wait_for(lock, timeout, [&] { return state_->requests.size() >= n; });
}

int HttpSink::connections_accepted() const {
    std::lock_guard lock(state_->mutex);
    return state_->accepted;
}

void HttpSink::clear() {
    std::lock_guard lock(state_->mutex);
    state_->requests.clear();
}

}  // namespace mqtest
