#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// IP addresses, CIDR ranges and the special-purpose ranges a webhook created through the
/// API may not reach (docs/security.md, "Webhook destinations (SSRF)"). Pure: no I/O.
namespace mq {

/// An IPv4 or IPv6 address in network byte order (IPv4 in the first 4 bytes).
struct IpAddress {
    bool v6 = false;
    std::array<std::uint8_t, 16> bytes{};

    static IpAddress v4_from(std::uint32_t host_order);
    /// The IPv4 address of an IPv4-mapped (::ffff:a.b.c.d) or IPv4-compatible (::a.b.c.d,
    /// not :: or ::1) IPv6 address; nullopt for anything else.
    std::optional<IpAddress> embedded_v4() const;
    /// "127.0.0.1", "::1" (inet_ntop's spelling).
    std::string to_string() const;
    bool operator==(const IpAddress& o) const { return v6 == o.v6 && bytes == o.bytes; }
};

/// A canonical address: dotted-quad IPv4 or IPv6 text as inet_pton reads it (no brackets,
/// no zone id). nullopt otherwise.
std::optional<IpAddress> parse_ip(std::string_view text);

/// The legacy inet_aton spellings of IPv4 that browsers, curl and libc still accept: one to
/// four dot-separated parts, each decimal, octal (leading 0) or hex (0x), the last part
/// filling the remaining bytes: "2130706433", "0x7f.1", "017700000001", "127.1" are all
/// 127.0.0.1. A trailing dot is allowed. nullopt when `text` is not such a spelling or a
/// part overflows.
std::optional<IpAddress> parse_ipv4_any_spelling(std::string_view text);

/// True when the last dot-separated label of a host name is a number (decimal, 0x-hex or
/// octal digits): such a host is an IPv4 spelling or invalid, never a DNS name (the WHATWG
/// URL standard's "ends in a number").
bool ends_in_number(std::string_view host);

/// A range of addresses: "10.0.0.0/8", "fd00::/8", or one address ("127.0.0.1" = /32).
struct Cidr {
    IpAddress network;
    int prefix = 0;
    /// IPv4 ranges also contain the IPv4-mapped/compatible IPv6 spellings of their addresses.
    bool contains(const IpAddress& a) const;
    std::string to_string() const;
};

std::optional<Cidr> parse_cidr(std::string_view text);
/// A comma- (or space-) separated list of CIDRs; throws ValidationError naming `field`
/// and the bad entry. Empty text: an empty list.
std::vector<Cidr> parse_cidr_list(std::string_view text, const std::string& field);

/// Why `a` is no public unicast address ("loopback", "private", "link-local",
/// "carrier-grade NAT", "multicast", "unspecified", "broadcast", "reserved",
/// "documentation", "benchmarking", "unique local", "IPv4-mapped loopback"...); empty when
/// it is one. IPv4 embedded in IPv6 (mapped, compatible, NAT64 64:ff9b::/96, 6to4) is
/// judged by its IPv4 address. IPv6 outside 2000::/3 is "reserved".
std::string special_purpose(const IpAddress& a);

}  // namespace mq
