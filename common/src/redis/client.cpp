#include "mq/redis/client.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "cluster_router.hpp"
#include "mq/core/codec.hpp"
#include "mq/redis/cluster.hpp"
#include "mq/redis/server_version.hpp"
#include "mq/redis/tls.hpp"
#include "resp.hpp"
#include "sync_socket.hpp"

namespace mq::redis {

// ---- Endpoint --------------------------------------------------------------------------

std::string Endpoint::describe() const {
    if (cluster()) {
        std::string seeds;
        for (const auto& n : cluster_nodes) seeds += (seeds.empty() ? "" : ",") + n.describe();
        return "cluster " + seeds;
    }
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

namespace {

std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() &&
            std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            int v = 0;
            auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
            if (ec == std::errc() && p == s.data() + i + 3) {
                out += static_cast<char>(v);
                i += 2;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

bool parse_int(std::string_view s, int& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

// The URL as an error may show it: without its password, and with bytes a terminal or a
// log line would misread shown as \xNN.
std::string printable_url(std::string_view url) {
    std::string shown(url);
    if (auto at = shown.rfind('@'); at != std::string::npos) {
        auto scheme = shown.find("://");
        auto from = scheme == std::string::npos ? 0 : scheme + 3;
        if (at > from) shown.replace(from, at - from, "***");
    }
    std::string out;
    for (unsigned char c : shown) {
        if (c < 0x20 || c >= 0x7f) {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

bool valid_host(std::string_view host) {
    for (unsigned char c : host)
        if (c <= 0x20 || c >= 0x7f ||
            std::string_view("\"<>\\^`{|}%#?@/").find(static_cast<char>(c)) !=
                std::string_view::npos)
            return false;
    return true;
}

}  // namespace

Endpoint parse_url(std::string_view url) {
    auto fail = [&](const std::string& why) -> Endpoint {
        throw ValidationError(
            "invalid REDIS_URL '" + printable_url(url) + "': " + why +
            " (expected redis://[[user]:password@]host[:port][/db], rediss:// for TLS, or "
            "redis+cluster://[[user]:password@]host:port,host:port for a Redis Cluster)");
    };
    Endpoint ep;
    std::string_view rest;
    bool cluster = false;
    if (url.substr(0, 8) == "redis://") {
        rest = url.substr(8);
    } else if (url.substr(0, 9) == "rediss://") {
        rest = url.substr(9);
        ep.tls = true;
    } else if (url.substr(0, 16) == "redis+cluster://") {
        rest = url.substr(16);
        cluster = true;
    } else if (url.substr(0, 17) == "rediss+cluster://") {
        rest = url.substr(17);
        ep.tls = true;
        cluster = true;
    } else {
        return fail(
            "must start with redis:// (or rediss:// for TLS, redis+cluster:// for a "
            "Redis Cluster)");
    }
    if (auto at = rest.rfind('@'); at != std::string_view::npos) {
        std::string_view auth = rest.substr(0, at);
        rest = rest.substr(at + 1);
        if (auto colon = auth.find(':'); colon != std::string_view::npos) {
            ep.username = percent_decode(auth.substr(0, colon));
            ep.password = percent_decode(auth.substr(colon + 1));
        } else {
            ep.password = percent_decode(auth);  // redis://secret@host, as redis-cli reads it
        }
    }
    std::string_view hostport = rest;
    if (auto slash = rest.find('/'); slash != std::string_view::npos) {
        hostport = rest.substr(0, slash);
        std::string_view db = rest.substr(slash + 1);
        if (auto q = db.find('?'); q != std::string_view::npos) db = db.substr(0, q);
        if (!db.empty() && (!parse_int(db, ep.db) || ep.db < 0)) return fail("bad database number");
    }
    if (cluster) {
        // Seeds: host:port,host:port; a cluster has only database 0.
        if (ep.db != 0) return fail("a Redis Cluster has only database 0");
        try {
            ep.cluster_nodes = parse_node_list(hostport, "REDIS_URL");
        } catch (const ValidationError& e) {
            return fail(e.what());
        }
        ep.host = ep.cluster_nodes.front().host;
        ep.port = ep.cluster_nodes.front().port;
        return ep;
    }
    std::string_view port;
    if (!hostport.empty() && hostport.front() == '[') {
        auto close = hostport.find(']');
        if (close == std::string_view::npos) return fail("unclosed '[' in host");
        ep.host = std::string(hostport.substr(1, close - 1));
        std::string_view after = hostport.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return fail("garbage after host");
            port = after.substr(1);
        }
    } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
        ep.host = std::string(hostport.substr(0, colon));
        port = hostport.substr(colon + 1);
    } else {
        ep.host = std::string(hostport);
    }
    if (!valid_host(ep.host))
        return fail("the host may not contain spaces, control bytes or URL delimiters");
    if (ep.host.empty()) ep.host = "127.0.0.1";
    if (!port.empty() && (!parse_int(port, ep.port) || ep.port <= 0 || ep.port > 65535))
        return fail("bad port");
    return ep;
}

// ---- Reply -----------------------------------------------------------------------------

std::string_view Reply::error_code() const {
    if (type != Type::kError) return {};
    std::string_view s = str;
    return s.substr(0, s.find(' '));
}

bool is_try_again_code(std::string_view code) {
    static constexpr std::string_view kCodes[] = {"LOADING",    "BUSY",       "READONLY",
                                                  "MASTERDOWN", "TRYAGAIN",   "CLUSTERDOWN",
                                                  "OOM",        "NOREPLICAS", "MISCONF"};
    for (auto c : kCodes)
        if (code == c) return true;
    return false;
}

ErrorClass Reply::error_class() const {
    if (type != Type::kError) return ErrorClass::kNone;
    return is_try_again_code(error_code()) ? ErrorClass::kTryAgain : ErrorClass::kCommand;
}

Error reply_error(const Reply& reply, std::string_view command) {
    std::string text = "Redis " + std::string(command) + " failed: " + reply.str;
    if (reply.error_class() == ErrorClass::kTryAgain)
        return Error(ErrorCode::kBackendUnavailable, text + " (try again later)",
                     nlohmann::json::object(), kTryAgainAfterSeconds);
    return Error(ErrorCode::kInternal, text);
}

std::int64_t Reply::as_integer() const {
    if (type == Type::kInteger) return integer;
    if (type == Type::kString || type == Type::kStatus) {
        std::int64_t v = 0;
        auto [p, ec] = std::from_chars(str.data(), str.data() + str.size(), v);
        if (ec == std::errc() && p == str.data() + str.size()) return v;
    }
    throw Error(ErrorCode::kInternal, "unexpected Redis reply: expected an integer");
}

const std::string& Reply::as_string() const {
    if (type == Type::kString || type == Type::kStatus) return str;
    throw Error(ErrorCode::kInternal, "unexpected Redis reply: expected a string");
}

namespace {

Reply convert(const redisReply* r) {
    Reply out;
    switch (r->type) {
        case REDIS_REPLY_INTEGER:
            out.type = Reply::Type::kInteger;
            out.integer = r->integer;
            break;
        case REDIS_REPLY_STRING:
            out.type = Reply::Type::kString;
            out.str.assign(r->str, r->len);
            break;
        case REDIS_REPLY_STATUS:
            out.type = Reply::Type::kStatus;
            out.str.assign(r->str, r->len);
            break;
        case REDIS_REPLY_ERROR:
            out.type = Reply::Type::kError;
            out.str.assign(r->str, r->len);
            break;
        case REDIS_REPLY_ARRAY:
            out.type = Reply::Type::kArray;
            out.elements.reserve(r->elements);
            for (std::size_t i = 0; i < r->elements; ++i)
                out.elements.push_back(convert(r->element[i]));
            break;
        default:
            out.type = Reply::Type::kNil;
    }
    return out;
}

struct ReplyDeleter {
    void operator()(void* r) const { freeReplyObject(r); }
};

}  // namespace

namespace {

// hiredis' own reply functions, with createArray refusing huge announced lengths; copied
// once from the first reader (the defaults are not exported).
redisReplyObjectFunctions g_capped_functions;
void* (*g_create_array)(const redisReadTask*, int) = nullptr;

void* capped_create_array(const redisReadTask* task, int elements) {
    if (elements > kMaxReplyElements) return nullptr;  // the reader reports out of memory
    return g_create_array(task, elements);
}

}  // namespace

void cap_reply_arrays(void* reader) {
    auto* r = static_cast<redisReader*>(reader);
    if (!r || !r->fn || r->fn == &g_capped_functions) return;
    static const bool once = [r] {
        g_capped_functions = *r->fn;
        g_create_array = r->fn->createArray;
        g_capped_functions.createArray = capped_create_array;
        return true;
    }();
    (void)once;
    if (r->fn->createArray == g_create_array) r->fn = &g_capped_functions;
}

Reply reply_from_hiredis(const void* hiredis_reply) {
    return convert(static_cast<const redisReply*>(hiredis_reply));
}

// ---- Script ----------------------------------------------------------------------------

Script::Script(std::string source) : source_(std::move(source)) { sha_ = codec::sha1_hex(source_); }

// ---- Pipeline --------------------------------------------------------------------------

void Pipeline::add(std::vector<std::string> argv, const Script* script) {
    commands_.push_back(std::move(argv));
    scripts_.push_back(script);
}

void Pipeline::add_script(const Script& script, const std::vector<std::string>& keys,
                          const std::vector<std::string>& args) {
    std::vector<std::string> argv;
    argv.reserve(3 + keys.size() + args.size());
    argv.emplace_back("EVALSHA");
    argv.push_back(script.sha());
    argv.push_back(std::to_string(keys.size()));
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    commands_.push_back(std::move(argv));
    scripts_.push_back(&script);
}

void Pipeline::clear() {
    commands_.clear();
    scripts_.clear();
}

// ---- Connection ------------------------------------------------------------------------

namespace {
// What Connection::connect() is doing while it checks a new TLS session by a PING.
constexpr std::string_view kTlsSessionCheck = "checking the TLS session";
}  // namespace

void Connection::ReaderDeleter::operator()(redisReader* r) const { redisReaderFree(r); }

Connection::Connection(Endpoint endpoint, ConnectOptions options)
    : endpoint_(std::move(endpoint)), options_(options) {
    load_tls(endpoint_);
    if (endpoint_.cluster()) {
        cluster_ = std::make_unique<ClusterRouter>(endpoint_, options_);
        return;
    }
    connect();
}

Connection::~Connection() = default;
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;

void Connection::fail_io(std::string_view doing) {
    std::string where = "Redis at " + endpoint_.describe();
    std::string msg;
    using F = SyncSocket::Failure;
    F failure = socket_ ? socket_->failure() : F::kIo;
    std::string detail = socket_ ? socket_->detail() : "no connection";
    if (doing == "reading a reply" && reader_ && reader_->err)
        msg = "unreadable reply from " + where + " (" + reader_->errstr + ")";
    else if (failure == F::kHandshake)
        msg = "TLS handshake with " + where + " failed (" + detail + "); " + kTlsHint;
    else if (failure == F::kTimeout && doing == "connecting")
        msg = endpoint_.tls ? "cannot reach " + where + ": no TLS session within " +
                                  std::to_string(options_.connect_timeout.count()) +
                                  " ms; is it running, and is it a TLS port (rediss://)?"
                            : "cannot reach " + where + " (Connection timed out after " +
                                  std::to_string(options_.connect_timeout.count()) +
                                  " ms); is it running? set REDIS_URL";
    else if (failure == F::kTimeout)
        msg = where + " did not answer within " + std::to_string(options_.command_timeout.count()) +
              " ms while " + std::string(doing) + "; is it overloaded or blocked?";
    else if (doing == "connecting")
        msg = "cannot reach " + where + " (" + detail + "); is it running? set REDIS_URL";
    else if (doing == kTlsSessionCheck)
        msg = "TLS session with " + where + " failed (" + detail + "); " + kTlsHint;
    else
        msg = "lost connection to " + where + " while " + std::string(doing) + " (" + detail +
              "); the command may or may not have run";
    socket_.reset();  // reconnect on next use
    reader_.reset();
    out_.clear();
    loaded_scripts_.clear();
    outstanding_ = 0;
    stash_.clear();
    throw BackendUnavailable(msg);
}

void Connection::connect() {
    loaded_scripts_.clear();
    outstanding_ = 0;
    stash_.clear();
    out_.clear();
    reader_.reset(redisReaderCreate());
    cap_reply_arrays(reader_.get());
    socket_ = std::make_unique<SyncSocket>();
    if (!socket_->connect(endpoint_, endpoint_.tls ? endpoint_.tls_context.get() : nullptr,
                          options_.connect_timeout))
        fail_io("connecting");
    auto setup = [&](const std::vector<std::string>& argv, const char* what) {
        Reply r = command_raw(argv);
        if (r.is_error()) {
            socket_.reset();
            throw BackendUnavailable("Redis at " + endpoint_.describe() + " refused " + what +
                                     ": " + r.str + "; check REDIS_URL");
        }
    };
    if (!endpoint_.password.empty()) {
        if (endpoint_.username.empty())
            setup({"AUTH", endpoint_.password}, "authentication");
        else
            setup({"AUTH", endpoint_.username, endpoint_.password}, "authentication");
    } else if (endpoint_.tls) {
        // With TLS 1.3 a server that wants a client certificate says so only after our side
        // of the handshake is done; a round trip now makes that a connect error.
        append({"PING"});
        Reply r = read_reply(kTlsSessionCheck);
        if (r.is_error()) {
            socket_.reset();
            throw BackendUnavailable("Redis at " + endpoint_.describe() +
                                     " refused a PING: " + r.str + "; check REDIS_URL");
        }
    }
    if (endpoint_.db != 0) setup({"SELECT", std::to_string(endpoint_.db)}, "SELECT");
}

void Connection::ensure_connected() {
    if (!connected()) connect();
}

void Connection::set_command_timeout(std::chrono::milliseconds timeout) {
    options_.command_timeout = timeout;
    if (cluster_) cluster_->set_command_timeout(timeout);
}

std::vector<NodeAddress> Connection::masters() {
    if (cluster_) return cluster_->masters();
    return {NodeAddress{endpoint_.host, endpoint_.port}};
}

Connection& Connection::node(const NodeAddress& address) {
    if (cluster_) return cluster_->node(address);
    return *this;
}

NodeAddress Connection::node_of(std::string_view key) {
    if (cluster_) return cluster_->node_of(key);
    return NodeAddress{endpoint_.host, endpoint_.port};
}

void Connection::wait_for_replica(const Pipeline& written, std::chrono::milliseconds timeout) {
    std::vector<NodeAddress> nodes;
    for (const auto& argv : written.commands()) {
        NodeAddress n = node_of(routing_key(argv).value_or(""));
        if (std::find(nodes.begin(), nodes.end(), n) == nodes.end()) nodes.push_back(n);
    }
    // A command sent on after an ASK ran on the importing node, not the one the map names.
    if (cluster_)
        for (const auto& n : cluster_->take_asked())
            if (std::find(nodes.begin(), nodes.end(), n) == nodes.end()) nodes.push_back(n);
    for (const auto& n : nodes) {
        // WAIT numreplicas timeout: counts the replicas that acknowledged every write made
        // on this connection so far.
        Reply r = node(n).command_raw({"WAIT", "1", std::to_string(timeout.count())});
        if (r.type != Reply::Type::kInteger || r.integer < 1)
            throw BackendUnavailable(
                "no replica of Redis at " + n.describe() + " confirmed the write within " +
                std::to_string(timeout.count()) + " ms (" +
                (r.is_error() ? r.str : "WAIT answered " + std::to_string(r.integer)) +
                "); it may or may not be kept: retry, or check the replicas");
    }
}

void Connection::append(const std::vector<std::string>& argv) {
    resp::append_command(out_, argv);
    ++outstanding_;
}

void Connection::flush(std::string_view doing) {
    if (out_.empty()) return;
    if (!socket_->write_all(out_, options_.command_timeout)) fail_io(doing);
    out_.clear();
}

Reply Connection::read_reply(std::string_view doing) {
    flush(doing);
    char buf[16 * 1024];
    for (;;) {
        void* raw = nullptr;
        if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) fail_io("reading a reply");
        if (raw) {
            std::unique_ptr<void, ReplyDeleter> guard(raw);
            if (outstanding_ > 0) --outstanding_;  // a subscriber's pushed messages answer none
            return convert(static_cast<redisReply*>(raw));
        }
        std::size_t n = 0;
        if (!socket_->read_some(buf, sizeof buf, n, options_.command_timeout)) fail_io(doing);
        if (redisReaderFeed(reader_.get(), buf, n) != REDIS_OK) fail_io("reading a reply");
    }
}

Reply Connection::next_reply(std::string_view doing) {
    if (stash_.empty()) return read_reply(doing);
    Reply r = std::move(stash_.front());
    stash_.pop_front();
    return r;
}

void Connection::drain() {
    while (outstanding_ > 0) stash_.push_back(read_reply("reading pipelined replies"));
}

Reply Connection::command_raw(const std::vector<std::string>& argv) {
    if (cluster_) return cluster_->command(argv);
    ensure_connected();
    drain();  // a pipeline in flight keeps its replies for its receive()
    append(argv);
    return read_reply(argv.empty() ? "running a command" : "running " + argv.front());
}

Reply Connection::command(const std::vector<std::string>& argv) {
    Reply r = command_raw(argv);
    if (r.is_error()) throw reply_error(r, argv.empty() ? std::string() : argv.front());
    return r;
}

void Connection::write(const std::vector<std::string>& argv) {
    if (cluster_) return cluster_->write(argv);
    ensure_connected();
    drain();
    append(argv);
    flush("sending a command");
}

Reply Connection::read() {
    if (cluster_) return cluster_->read();
    return next_reply("waiting for a message");
}

void Connection::load_script(const Script& script) {
    Reply r = command_raw({"SCRIPT", "LOAD", script.source()});
    if (r.is_error()) throw reply_error(r, "SCRIPT LOAD");
    loaded_scripts_.insert(script.sha());
}

Reply Connection::eval(const Script& script, const std::vector<std::string>& keys,
                       const std::vector<std::string>& args) {
    Pipeline p;
    p.add_script(script, keys, args);
    Reply r = std::move(execute(p).front());
    if (r.is_error()) throw reply_error(r, "script");
    return r;
}

std::vector<Reply> Connection::execute(const Pipeline& pipeline) {
    send(pipeline);
    return receive(pipeline);
}

void Connection::send(const Pipeline& pipeline) {
    if (cluster_) return cluster_->send(pipeline);
    ensure_connected();
    for (const Script* s : pipeline.scripts_)
        if (s && !loaded_scripts_.count(s->sha())) load_script(*s);
    for (const auto& argv : pipeline.commands_) append(argv);
    // Push the bytes out now, so the server starts while the caller does other work.
    flush("sending a pipeline");
}

std::vector<Reply> Connection::receive(const Pipeline& pipeline) {
    if (cluster_) return cluster_->receive(pipeline);
    std::vector<Reply> replies;
    replies.reserve(pipeline.commands_.size());
    for (std::size_t i = 0; i < pipeline.commands_.size(); ++i)
        replies.push_back(next_reply("reading pipelined replies"));
    // NOSCRIPT means the server lost its script cache (SCRIPT FLUSH, restart); the script
    // did not run, so loading it and running that command again is safe.
    for (std::size_t i = 0; i < replies.size(); ++i) {
        if (pipeline.scripts_[i] && replies[i].error_code() == "NOSCRIPT") {
            load_script(*pipeline.scripts_[i]);  // drains later pipelines' replies first
            append(pipeline.commands_[i]);
            replies[i] = read_reply("re-running a script");
        }
    }
    return replies;
}

void Connection::check_server_policy() {
    if (cluster_) return cluster_->check_server_policy();
    const auto info = parse_info(command({"INFO", "memory"}).as_string());
    auto it = info.find("maxmemory_policy");
    if (it == info.end()) return;  // a server that does not report it cannot evict
    const std::string& policy = it->second;
    if (policy != "noeviction")
        throw Error(ErrorCode::kBackendUnavailable,
                    "Redis at " + endpoint_.describe() + " has maxmemory-policy " + policy +
                        ", which evicts keys and would silently drop messages; set "
                        "'maxmemory-policy noeviction' in redis.conf (CONFIG SET "
                        "maxmemory-policy noeviction)");
}

}  // namespace mq::redis
