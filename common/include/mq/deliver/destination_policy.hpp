#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mq/core/ip_address.hpp"

namespace mq {

/// Resolves a host name to its addresses (empty: no answer).
using HostResolver = std::function<std::vector<IpAddress>(const std::string& host)>;

/// The host (brackets removed from an IPv6 literal) and port (the scheme's default when
/// none is given) of an absolute http(s) URL, as libcurl reads it; nullopt when it cannot.
struct UrlTarget {
    std::string host;
    int port = 0;
};
std::optional<UrlTarget> url_target(const std::string& url);

/// getaddrinfo(3) for TCP, IPv4 and IPv6; empty when the name does not resolve.
std::vector<IpAddress> system_resolve(const std::string& host);

/// Where a webhook whose URL came through the API may connect (docs/security.md,
/// "Webhook destinations (SSRF)"): public unicast addresses only, plus the ranges an
/// operator allows (WEBHOOK_ALLOWED_CIDRS). Checked twice: on the URL when it is stored
/// (check_url) and on the address libcurl actually connects to (refusal(), called from the
/// webhook handler's open-socket callback), so a name that resolves elsewhere later (DNS
/// rebinding) gains nothing. Thread-safe (immutable after construction).
class DestinationPolicy {
  public:
    /// `resolver` empty: check_url uses system_resolve and the webhook handler lets
    /// libcurl resolve. Set (a test seam): both use it, and the handler pins libcurl to the
    /// addresses it returns (CURLOPT_RESOLVE), still checking each at connect time.
    explicit DestinationPolicy(std::vector<Cidr> allowed = {}, HostResolver resolver = {});

    /// Why a connection to `a` is refused ("loopback", "private"...); empty when allowed.
    std::string refusal(const IpAddress& a) const;

    /// The check of a webhook URL at creation: only http and https, no userinfo, no IPv6
    /// zone id, no percent-encoded or numeric-looking host that is no valid address;
    /// literal addresses in any spelling (0x7f.1, 2130706433, [::ffff:127.0.0.1]) and
    /// "localhost" names are judged directly, other names by every address they resolve
    /// to now (a name that does not resolve passes: the connect-time check still holds).
    /// Throws Error(kWebhookDestinationForbidden) with details {"field": "url", "reason"}.
    void check_url(const std::string& url) const;

    /// The addresses of `host` by the configured resolver (or system_resolve).
    std::vector<IpAddress> resolve(const std::string& host) const;
    bool has_custom_resolver() const { return static_cast<bool>(resolver_); }
    const std::vector<Cidr>& allowed() const { return allowed_; }

  private:
    std::vector<Cidr> allowed_;
    HostResolver resolver_;
};

}  // namespace mq
