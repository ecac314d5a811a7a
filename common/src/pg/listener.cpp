#include "mq/pg/listener.hpp"

#include <pqxx/pqxx>

#include "mq/error.hpp"
#include "mq/pg/database.hpp"

namespace mq::pg {

namespace {

struct Receiver : pqxx::notification_receiver {
    Receiver(pqxx::connection_base& c, const std::string& channel, Listener::Handler& handler)
        : pqxx::notification_receiver(c, channel), handler_(handler) {}
    void operator()(const std::string& payload, int) override { handler_(payload); }
    Listener::Handler& handler_;
};

}  // namespace

// The receiver is destroyed before the connection: its destructor UNLISTENs on it.
struct Listener::Impl {
    Handler handler;
    std::unique_ptr<pqxx::connection> conn;
    std::unique_ptr<Receiver> receiver;
};

Listener::Listener(const std::string& url, const std::string& channel, Handler on_notify,
                   const std::string& hint)
    : impl_(std::make_unique<Impl>()) {
    impl_->handler = std::move(on_notify);
    const std::string conninfo = connection_string(url);  // ValidationError when unreadable
    try {
        impl_->conn = std::make_unique<pqxx::connection>(conninfo);
        impl_->receiver = std::make_unique<Receiver>(*impl_->conn, channel, impl_->handler);
    } catch (const std::exception& e) {
        impl_->receiver.reset();
        impl_->conn.reset();
        std::string detail = scrub(e.what(), url);
        if (auto nl = detail.find('\n'); nl != std::string::npos) detail.resize(nl);
        throw BackendUnavailable("cannot LISTEN on PostgreSQL at " + describe_url(url) + " (" +
                                 detail + ")" + (hint.empty() ? "" : "; " + hint));
    }
}

Listener::~Listener() {
    try {
        impl_->receiver.reset();
    } catch (...) {
        // The connection is already broken: there is nothing to UNLISTEN.
    }
    impl_->conn.reset();
}

int Listener::wait(std::chrono::microseconds timeout) {
    const auto us = timeout.count();
    const int n = impl_->conn->await_notification(static_cast<long>(us / 1000000),
                                                  static_cast<long>(us % 1000000));
    if (!impl_->conn->is_open()) throw pqxx::broken_connection("LISTEN connection closed");
    return n;
}

}  // namespace mq::pg
