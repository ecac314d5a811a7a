#include "mq/deliver/destination_policy.hpp"

#include <curl/curl.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>

#include "mq/error.hpp"

namespace mq {

namespace {

struct UrlDeleter {
    void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

struct AddrInfoDeleter {
    void operator()(addrinfo* a) const { freeaddrinfo(a); }
};

[[noreturn]] void forbidden(const std::string& url, const std::string& reason) {
    throw Error(ErrorCode::kWebhookDestinationForbidden,
                "webhook url '" + printable(url) + "' is not an allowed destination: " + reason +
                    ". Webhooks created through the API must reach a public address; an operator "
                    "can allow ranges with WEBHOOK_ALLOWED_CIDRS",
                {{"field", "url"}, {"reason", reason}});
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// One part of a parsed URL; empty when absent.
std::string url_part(CURLU* u, CURLUPart what) {
    char* part = nullptr;
    std::string out;
    if (curl_url_get(u, what, &part, 0) == CURLUE_OK && part) out = part;
    curl_free(part);
    return out;
}

UrlHandle parse(const std::string& url) {
    UrlHandle u(curl_url());
    if (!u) throw Error(ErrorCode::kInternal, "out of memory parsing a URL");
    if (curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return nullptr;
    return u;
}

std::string strip_brackets(std::string host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    return host;
}

}  // namespace

std::optional<UrlTarget> url_target(const std::string& url) {
    auto u = parse(url);
    if (!u) return std::nullopt;
    UrlTarget t;
    t.host = strip_brackets(url_part(u.get(), CURLUPART_HOST));
    char* port = nullptr;
    if (curl_url_get(u.get(), CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK && port)
        t.port = std::atoi(port);
    curl_free(port);
    if (t.host.empty() || t.port <= 0) return std::nullopt;
    return t;
}

std::vector<IpAddress> system_resolve(const std::string& host) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return {};
    std::unique_ptr<addrinfo, AddrInfoDeleter> guard(res);
    std::vector<IpAddress> out;
    for (addrinfo* a = res; a; a = a->ai_next) {
        IpAddress ip;
        if (a->ai_family == AF_INET) {
            const auto* sin = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
            std::memcpy(ip.bytes.data(), &sin->sin_addr, 4);
        } else if (a->ai_family == AF_INET6) {
            const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
            ip.v6 = true;
            std::memcpy(ip.bytes.data(), &sin6->sin6_addr, 16);
        } else {
            continue;
        }
        if (std::find(out.begin(), out.end(), ip) == out.end()) out.push_back(ip);
    }
    return out;
}

DestinationPolicy::DestinationPolicy(std::vector<Cidr> allowed, HostResolver resolver)
    : allowed_(std::move(allowed)), resolver_(std::move(resolver)) {}

std::string DestinationPolicy::refusal(const IpAddress& a) const {
    for (const auto& c : allowed_)
        if (c.contains(a)) return "";
    std::string why = special_purpose(a);
    if (why.empty()) return "";
    return a.to_string() + " is " + why;
}

std::vector<IpAddress> DestinationPolicy::resolve(const std::string& host) const {
    return resolver_ ? resolver_(host) : system_resolve(host);
}

void DestinationPolicy::check_url(const std::string& url) const {
    for (char c : url)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            forbidden(url, "it contains spaces or control characters");
    auto u = parse(url);
    if (!u) forbidden(url, "it is not a valid absolute http(s) URL");
    std::string scheme = lower(url_part(u.get(), CURLUPART_SCHEME));
    if (scheme != "http" && scheme != "https")
        forbidden(url, "only http and https are allowed, not '" + printable(scheme) + "'");
    if (!url_part(u.get(), CURLUPART_USER).empty() ||
        !url_part(u.get(), CURLUPART_PASSWORD).empty() ||
        !url_part(u.get(), CURLUPART_OPTIONS).empty())
        forbidden(url,
                  "user information (user:password@) is not allowed in the URL; send "
                  "credentials in a header");
    if (!url_part(u.get(), CURLUPART_ZONEID).empty())
        forbidden(url, "an IPv6 zone id names a local interface");
    std::string host = lower(strip_brackets(url_part(u.get(), CURLUPART_HOST)));
    if (host.empty()) forbidden(url, "it has no host");
    if (host.find('%') != std::string::npos) forbidden(url, "the host must not be percent-encoded");

    auto judge = [&](const IpAddress& ip, const std::string& what) {
        std::string why = refusal(ip);
        if (!why.empty()) forbidden(url, what + why);
    };
    if (auto ip = parse_ip(host)) return judge(*ip, "");
    if (ends_in_number(host)) {
        // 2130706433, 0x7f.1, 017700000001, 127.1: IPv4 in a legacy spelling.
        auto ip = parse_ipv4_any_spelling(host);
        if (!ip) forbidden(url, "'" + printable(host) + "' is neither a host name nor an address");
        return judge(*ip, "'" + printable(host) + "' is " + ip->to_string() + "; ");
    }
    std::string name = host;
    if (!name.empty() && name.back() == '.') name.pop_back();
    if (name == "localhost" || (name.size() > 10 && name.substr(name.size() - 10) == ".localhost"))
        forbidden(url, "'" + printable(host) + "' is loopback");
    for (const auto& ip : resolve(name)) judge(ip, "'" + printable(host) + "' resolves to ");
}

}  // namespace mq
