#pragma once

// A small HTTP/1.1 server on 127.0.0.1 for tests of things that call webhooks: it records
// every request and answers as the test scripts it. Thread per connection, keep-alive.

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mqtest {

/// One request as the sink received it.
struct RecordedRequest {
    std::string method;
    std::string target;                                        ///< path and query, as sent
    std::vector<std::pair<std::string, std::string>> headers;  ///< in order, names as sent
    std::string body;
    std::chrono::steady_clock::time_point received;  ///< when the whole request was read
    int connection = 0;  ///< 1 for the first accepted TCP connection, 2 for the next...

    /// Value of the first header called `name` (case-insensitive); "" when absent.
    std::string header(std::string_view name) const;
    bool has_header(std::string_view name) const;
};

/// How the sink answers one request.
struct SinkResponse {
    int status = 200;
    std::map<std::string, std::string> headers;
    std::string body;
    /// Wait this long before answering (to run into a client's timeout). Cut short when
    /// the sink stops.
    std::chrono::milliseconds delay{0};
    /// Close the connection after answering.
    bool close = false;
    /// Close the connection without answering at all.
    bool drop = false;
};

/// The server. Answers, in order of precedence: the next scripted response
/// (respond_with), else the handler (set_handler), else the default (200, "ok").
class HttpSink {
  public:
    /// Listens on 127.0.0.1 on an ephemeral port and starts accepting.
    HttpSink();
    /// Stops accepting, cuts open connections and pending delays, joins every thread.
    ~HttpSink();
    HttpSink(const HttpSink&) = delete;
    HttpSink& operator=(const HttpSink&) = delete;

    int port() const { return port_; }
    /// "http://127.0.0.1:<port><path>"
    std::string url(std::string_view path = "/") const;

    /// Queues one answer; queued answers are used once each, first in first out.
    void respond_with(SinkResponse response);
    void respond_with(int status, std::map<std::string, std::string> headers = {},
                      std::string body = "", std::chrono::milliseconds delay = {});
    /// Answers computed from the request; called on the connection's thread.
    void set_handler(std::function<SinkResponse(const RecordedRequest&)> handler);
    void set_default(SinkResponse response);

    /// Every request so far, in the order they were completely read.
    std::vector<RecordedRequest> requests() const;
    std::size_t request_count() const;
    /// Waits until at least `n` requests have arrived; false on timeout.
    bool wait_for(std::size_t n, std::chrono::milliseconds timeout) const;
    /// TCP connections accepted so far (keep-alive tests count these).
    int connections_accepted() const;
    /// Forgets recorded requests (connection numbering goes on).
    void clear();

  private:
    struct State;  // Boost.Asio stays out of this header
    std::unique_ptr<State> state_;
    int port_ = 0;
};

}  // namespace mqtest
