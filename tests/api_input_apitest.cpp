// Hostile and sloppy input over HTTP: malformed JSON, wrong types, unknown fields, deep
// nesting, oversized bodies (refused from the header alone, chunked too), the separate
// batch limit, odd queue names in paths and empty bodies. None of it may answer 5xx or
// stop the server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "api_process.hpp"
#include "harness.hpp"

using namespace mqtest;
using nlohmann::json;

namespace {

const std::string kQueues = "/api/v1/mq/queues";
const std::string kPublish = "/api/v1/mq/publish";

struct Session : ApiSession {
    using ApiSession::ApiSession;

    HttpResult post(const std::string& target, const std::string& body) const {
        return api.call("POST", target, body, token, {{"Content-Type", "application/json"}});
    }
    void create(const std::string& name) const {
        auto r = api.call_json("POST", kQueues, {{"name", name}}, token);
        REQUIRE(r.status == 201);
    }
    void still_serving(const std::string& queue) const {
        CHECK(api.call("GET", "/api/v1/mq/health").status == 200);
        CHECK(
            api.call_json("POST", kPublish, {{"queue", queue}, {"payload", "ok"}}, token).status ==
            201);
    }
};

/// A raw loopback connection: what a client that sends only part of a request sees.
class RawSocket {
  public:
    explicit RawSocket(int port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        timeval tv{};
        tv.tv_sec = 5;
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~RawSocket() { ::close(fd_); }
    RawSocket(const RawSocket&) = delete;
    RawSocket& operator=(const RawSocket&) = delete;

    /// Sends what it can; the server may close early, which is not an error here.
    void send(const std::string& data) {
        std::size_t off = 0;
        while (off < data.size()) {
            auto n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
            if (n <= 0) return;
            off += static_cast<std::size_t>(n);
        }
    }
    /// Reads until the head of a response and its Content-Length of body arrived, the peer
    /// closes or the receive timeout passes.
    std::string read_response() {
        std::string got;
        char buf[4096];
        for (;;) {
            auto head_end = got.find("\r\n\r\n");
            if (head_end != std::string::npos) {
                auto cl = got.find("Content-Length: ");
                if (cl == std::string::npos) cl = got.find("content-length: ");
                if (cl != std::string::npos && cl < head_end) {
                    auto len = std::stoul(got.substr(cl + 16));
                    if (got.size() >= head_end + 4 + len) return got;
                }
            }
            auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return got;
            got.append(buf, static_cast<std::size_t>(n));
        }
    }

  private:
    int fd_ = -1;
};

std::string nested(std::size_t depth) { return std::string(depth, '['); }

}  // namespace

TEST_CASE("api_input_malformed_json_wrong_types_and_unknown_fields_answer_400", "[api]") {
    Session s;
    s.create("inq");
    for (const std::string body : {"{", "{\"name\": }", "not json", "{\"name\": \"x\",}", "[1,2",
                                   "\"just a string\"", "[]", "42", "null"}) {
        INFO(body);
        auto q = s.post(kQueues, body);
        CHECK(q.status == 400);
        CHECK(q.error_code() == "MQ_VALIDATION_ERROR");
        auto p = s.post(kPublish, body);
        CHECK(p.status == 400);
        CHECK(p.error_code() == "MQ_VALIDATION_ERROR");
    }
    auto wrong_payload_key = s.post(kPublish, R"({"queue": "inq", "payload": "x", "key": 12})");
    CHECK(wrong_payload_key.status == 400);
    CHECK(wrong_payload_key.json()["error"]["details"]["field"] == "key");
    auto wrong_headers = s.post(kPublish, R"({"queue": "inq", "payload": "x", "headers": ["a"]})");
    CHECK(wrong_headers.status == 400);
    auto wrong_delay = s.post(kPublish, R"({"queue": "inq", "payload": "x", "delay_ms": "soon"})");
    CHECK(wrong_delay.status == 400);
    auto wrong_queue = s.post(kPublish, R"({"queue": 5, "payload": "x"})");
    CHECK(wrong_queue.status == 400);
    auto unknown = s.post(kPublish, R"({"queue": "inq", "payload": "x", "priority": 9})");
    CHECK(unknown.status == 400);
    CHECK(unknown.error_code() == "MQ_VALIDATION_ERROR");
    auto unknown_q = s.post(kQueues, R"({"name": "zz", "retention": 5})");
    CHECK(unknown_q.status == 400);
    CHECK(unknown_q.json()["error"]["details"]["field"] == "retention");
    auto wrong_bool = s.post(kQueues, R"({"name": "zz", "is_public": "yes"})");
    CHECK(wrong_bool.status == 400);
    CHECK(wrong_bool.json()["error"]["details"]["field"] == "is_public");

    auto stats = s.api.call("GET", kQueues + "/inq", "", s.token);
    REQUIRE(stats.status == 200);
    CHECK(stats.json()["stats"]["messages"] == 0);
    s.still_serving("inq");
}

TEST_CASE("api_input_empty_body_answers_400", "[api]") {
    Session s;
    s.create("emptyq");
    auto q = s.post(kQueues, "");
    CHECK(q.status == 400);
    CHECK(q.error_code() == "MQ_VALIDATION_ERROR");
    auto p = s.post(kPublish, "");
    CHECK(p.status == 400);
    auto b = s.post(kPublish + "/batch", "");
    CHECK(b.status == 400);
    auto u = s.api.call("PUT", kQueues + "/emptyq", "", s.token);
    CHECK(u.status == 400);
}

TEST_CASE("api_input_deep_nesting_answers_400_and_server_keeps_serving", "[api]") {
    Session s;
    s.create("deepq");
    auto q = s.post(kQueues, nested(100000));
    CHECK(q.status == 400);
    CHECK(q.error_code() == "MQ_VALIDATION_ERROR");
    auto qo = s.post(kQueues, "{\"name\": \"deep\", \"schema\": " + nested(100000) + "}");
    CHECK(qo.status == 400);
    auto p = s.post(kPublish, "{\"queue\": \"deepq\", \"payload\": " + nested(100000) + "}");
    CHECK(p.status == 400);
    CHECK(p.error_code() == "MQ_VALIDATION_ERROR");
    std::string balanced = nested(5000) + std::string(5000, ']');
    auto pb = s.post(kPublish, "{\"queue\": \"deepq\", \"payload\": " + balanced + "}");
    CHECK(pb.status >= 200);
    CHECK(pb.status < 500);
    auto b =
        s.post(kPublish + "/batch",
               "{\"queue\": \"deepq\", \"messages\": [{\"payload\": " + nested(100000) + "}]}");
    CHECK(b.status == 400);
    s.still_serving("deepq");
}

TEST_CASE("api_input_oversize_body_answers_413", "[api]") {
    ApiOptions options;
    options.env["MAX_MESSAGE_SIZE"] = "4096";
    options.env["MAX_BATCH_BODY_SIZE"] = "65536";
    Session s(options);
    s.create("bigq");
    auto big = s.api.call_json("POST", kPublish,
                               {{"queue", "bigq"}, {"payload", std::string(5000, 'x')}}, s.token);
    CHECK(big.status == 413);
    CHECK(big.error_code() == "MQ_PAYLOAD_TOO_LARGE");
    auto big_create = s.api.call_json(
        "POST", kQueues, {{"name", "q2"}, {"description", std::string(5000, 'd')}}, s.token);
    CHECK(big_create.status == 413);

    // A batch over the single-message limit but under the batch limit is fine.
    json messages = json::array();
    for (int i = 0; i < 5; ++i)
        messages.push_back({{"payload", std::string(2000, static_cast<char>('a' + i))}});
    auto batch = s.api.call_json("POST", kPublish + "/batch",
                                 {{"queue", "bigq"}, {"messages", messages}}, s.token);
    REQUIRE(batch.status == 200);
    CHECK(batch.json()["accepted"] == 5);
    // ... and one over the batch limit is not.
    json many = json::array();
    for (int i = 0; i < 40; ++i) many.push_back({{"payload", std::string(2000, 'z')}});
    auto too_many = s.api.call_json("POST", kPublish + "/batch",
                                    {{"queue", "bigq"}, {"messages", many}}, s.token);
    CHECK(too_many.status == 413);
    CHECK(too_many.error_code() == "MQ_PAYLOAD_TOO_LARGE");

    auto stats = s.api.call("GET", kQueues + "/bigq", "", s.token);
    REQUIRE(stats.status == 200);
    CHECK(stats.json()["stats"]["messages"] == 5);
    s.still_serving("bigq");
}

TEST_CASE("api_input_413_from_header_without_reading_the_body", "[api]") {
    ApiOptions options;
    options.env["MAX_MESSAGE_SIZE"] = "4096";
    Session s(options);
    s.create("hdrq");
    RawSocket sock(s.api.port());
    auto started = std::chrono::steady_clock::now();
    sock.send("POST /api/v1/mq/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
              s.token + "\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n");
    auto response = sock.read_response();
    auto elapsed = std::chrono::steady_clock::now() - started;
    INFO(response);
    CHECK(response.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(response.find("MQ_PAYLOAD_TOO_LARGE") != std::string::npos);
    CHECK(elapsed < std::chrono::seconds(2));
    s.still_serving("hdrq");
}

TEST_CASE("api_input_chunked_body_over_the_limit_answers_413", "[api]") {
    ApiOptions options;
    options.env["MAX_MESSAGE_SIZE"] = "4096";
    Session s(options);
    s.create("chunkq");
    RawSocket sock(s.api.port());
    std::string request =
        "POST /api/v1/mq/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + s.token +
        "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    std::string body = "{\"queue\": \"chunkq\", \"payload\": \"" + std::string(8000, 'c') + "\"}";
    for (std::size_t off = 0; off < body.size(); off += 1000) {
        auto part = body.substr(off, 1000);
        char size[16];
        std::snprintf(size, sizeof size, "%zx\r\n", part.size());
        request += size + part + "\r\n";
    }
    request += "0\r\n\r\n";
    sock.send(request);
    auto response = sock.read_response();
    INFO(response);
    CHECK(response.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(response.find("MQ_PAYLOAD_TOO_LARGE") != std::string::npos);

    auto stats = s.api.call("GET", kQueues + "/chunkq", "", s.token);
    REQUIRE(stats.status == 200);
    CHECK(stats.json()["stats"]["messages"] == 0);
    s.still_serving("chunkq");
}

TEST_CASE("api_input_odd_queue_names_in_paths_never_answer_5xx", "[api]") {
    Session s;
    s.create("realq");
    for (const std::string& name : std::vector<std::string>{
             "..%2F", "..%2F..%2Fetc", "%2e%2e", "has%20space", "a%00b", "%ff%fe",
             std::string(400, 'n'), "q%2Fsub", "%7B%7D", "x%3Cscript%3E"}) {
        for (const std::string method : {"GET", "DELETE", "PUT"}) {
            auto r = s.api.call(method, kQueues + "/" + name,
                                method == "PUT" ? "{\"partitions\": 2}" : "", s.token);
            INFO(method << ' ' << name << " -> " << r.status << ' ' << r.body);
            CHECK((r.status == 400 || r.status == 404));
        }
        auto purge = s.api.call("POST", kQueues + "/" + name + "/purge", "", s.token);
        INFO(name << " purge -> " << purge.status);
        CHECK((purge.status == 400 || purge.status == 404));
        auto topic = s.api.call_json("POST", "/api/v1/mq/topics/" + name + "/publish",
                                     {{"payload", "x"}}, s.token);
        INFO(name << " topic -> " << topic.status);
        CHECK((topic.status == 400 || topic.status == 404));
    }
    auto by_body =
        s.api.call_json("POST", kPublish, {{"queue", "../realq"}, {"payload", "x"}}, s.token);
    CHECK((by_body.status == 400 || by_body.status == 404));
    s.still_serving("realq");
}
