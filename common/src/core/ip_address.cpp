#include "mq/core/ip_address.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <cstring>

#include "mq/error.hpp"

namespace mq {

namespace {

std::uint32_t v4_value(const IpAddress& a) {
    return (std::uint32_t(a.bytes[0]) << 24) | (std::uint32_t(a.bytes[1]) << 16) |
           (std::uint32_t(a.bytes[2]) << 8) | std::uint32_t(a.bytes[3]);
}

// One part of an inet_aton spelling: 0x hex, leading-0 octal, else decimal. nullopt when
// not a number or above `max`.
std::optional<std::uint64_t> aton_part(std::string_view p, std::uint64_t max) {
    if (p.empty()) return std::nullopt;
    unsigned base = 10;
    if (p.size() >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p.remove_prefix(2);
        if (p.empty()) return 0;  // "0x" is 0 for inet_aton and WHATWG alike
    } else if (p.size() >= 2 && p[0] == '0') {
        base = 8;
        p.remove_prefix(1);
    }
    std::uint64_t v = 0;
    for (char c : p) {
        unsigned d;
        if (c >= '0' && c <= '9')
            d = static_cast<unsigned>(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = static_cast<unsigned>(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = static_cast<unsigned>(c - 'A' + 10);
        else
            return std::nullopt;
        if (d >= base) return std::nullopt;
        v = v * base + d;
        if (v > max) return std::nullopt;
    }
    return v;
}

std::vector<std::string_view> labels_of(std::string_view host) {
    std::vector<std::string_view> out;
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    while (true) {
        auto dot = host.find('.');
        out.push_back(host.substr(0, dot));
        if (dot == std::string_view::npos) break;
        host.remove_prefix(dot + 1);
    }
    return out;
}

bool in_v4(std::uint32_t a, std::uint32_t net, int prefix) {
    std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t(0) << (32 - prefix);
    return (a & mask) == (net & mask);
}

constexpr std::uint32_t ip4(unsigned a, unsigned b, unsigned c, unsigned d) {
    return (a << 24) | (b << 16) | (c << 8) | d;
}

std::string special_v4(std::uint32_t a) {
    struct Range {
        std::uint32_t net;
        int prefix;
        const char* why;
    };
    // RFC 6890 and the IANA IPv4 special-purpose registry; order: most specific first.
    static const Range kRanges[] = {
        {ip4(255, 255, 255, 255), 32, "broadcast"},
        {ip4(0, 0, 0, 0), 8, "unspecified (\"this network\")"},
        {ip4(10, 0, 0, 0), 8, "private"},
        {ip4(100, 64, 0, 0), 10, "carrier-grade NAT (shared)"},
        {ip4(127, 0, 0, 0), 8, "loopback"},
        {ip4(169, 254, 0, 0), 16, "link-local"},
        {ip4(172, 16, 0, 0), 12, "private"},
        {ip4(192, 0, 0, 0), 24, "IETF protocol assignments"},
        {ip4(192, 0, 2, 0), 24, "documentation"},
        {ip4(192, 31, 196, 0), 24, "AS112"},
        {ip4(192, 52, 193, 0), 24, "AMT"},
        {ip4(192, 88, 99, 0), 24, "6to4 relay anycast"},
        {ip4(192, 168, 0, 0), 16, "private"},
        {ip4(192, 175, 48, 0), 24, "AS112"},
        {ip4(198, 18, 0, 0), 15, "benchmarking"},
        {ip4(198, 51, 100, 0), 24, "documentation"},
        {ip4(203, 0, 113, 0), 24, "documentation"},
        {ip4(224, 0, 0, 0), 4, "multicast"},
        {ip4(240, 0, 0, 0), 4, "reserved"},
    };
    for (const auto& r : kRanges)
        if (in_v4(a, r.net, r.prefix)) return r.why;
    return "";
}

bool has_prefix(const IpAddress& a, std::initializer_list<std::uint8_t> head, int bits) {
    std::array<std::uint8_t, 16> net{};
    std::size_t i = 0;
    for (auto b : head) net[i++] = b;
    for (int bit = 0; bit < bits; ++bit) {
        int byte = bit / 8, shift = 7 - bit % 8;
        if (((a.bytes[static_cast<std::size_t>(byte)] >> shift) & 1) !=
            ((net[static_cast<std::size_t>(byte)] >> shift) & 1))
            return false;
    }
    return true;
}

std::string embedded_reason(const char* kind, std::uint32_t v4) {
    std::string why = special_v4(v4);
    if (why.empty()) return "";
    return std::string(kind) + " of a " + why + " address (" + IpAddress::v4_from(v4).to_string() +
           ")";
}

}  // namespace

IpAddress IpAddress::v4_from(std::uint32_t v) {
    IpAddress a;
    a.bytes[0] = static_cast<std::uint8_t>(v >> 24);
    a.bytes[1] = static_cast<std::uint8_t>(v >> 16);
    a.bytes[2] = static_cast<std::uint8_t>(v >> 8);
    a.bytes[3] = static_cast<std::uint8_t>(v);
    return a;
}

std::optional<IpAddress> IpAddress::embedded_v4() const {
    if (!v6) return std::nullopt;
    for (int i = 0; i < 10; ++i)
        if (bytes[static_cast<std::size_t>(i)] != 0) return std::nullopt;
    bool mapped = bytes[10] == 0xff && bytes[11] == 0xff;
    bool compatible = bytes[10] == 0 && bytes[11] == 0;
    if (!mapped && !compatible) return std::nullopt;
    IpAddress out;
    std::memcpy(out.bytes.data(), bytes.data() + 12, 4);
    // ::/128 and ::1/128 are IPv6's own unspecified and loopback, not 0.0.0.0 and 0.0.0.1.
    if (compatible && v4_value(out) <= 1) return std::nullopt;
    return out;
}

std::string IpAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {0};
    inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
    return buf;
}

std::optional<IpAddress> parse_ip(std::string_view text) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    std::string s(text);
    IpAddress a;
    if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
        a.v6 = true;
        return a;
    }
    return std::nullopt;
}

std::optional<IpAddress> parse_ipv4_any_spelling(std::string_view text) {
    if (text.empty()) return std::nullopt;
    auto parts = labels_of(text);
    if (parts.size() > 4) return std::nullopt;
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        bool last = i + 1 == parts.size();
        // The last part fills every byte left: 4 parts -> 1 byte, 1 part -> 4 bytes.
        std::uint64_t max = last ? (std::uint64_t(1) << (8 * (5 - parts.size()))) - 1 : 255;
        auto v = aton_part(parts[i], max);
        if (!v) return std::nullopt;
        if (last)
            value |= *v;
        else
            value |= *v << (8 * (3 - i));
    }
    return IpAddress::v4_from(static_cast<std::uint32_t>(value));
}

bool ends_in_number(std::string_view host) {
    auto labels = labels_of(host);
    std::string_view last = labels.back();
    if (last.empty()) return false;
    if (last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X')) {
        for (char c : last.substr(2))
            if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
        return true;
    }
    for (char c : last)
        if (c < '0' || c > '9') return false;
    return true;
}

bool Cidr::contains(const IpAddress& a) const {
    IpAddress x = a;
    if (!network.v6 && a.v6) {
        auto e = a.embedded_v4();
        if (!e) return false;
        x = *e;
    }
    if (x.v6 != network.v6) return false;
    for (int bit = 0; bit < prefix; ++bit) {
        auto byte = static_cast<std::size_t>(bit / 8);
        int shift = 7 - bit % 8;
        if (((x.bytes[byte] >> shift) & 1) != ((network.bytes[byte] >> shift) & 1)) return false;
    }
    return true;
}

std::string Cidr::to_string() const { return network.to_string() + "/" + std::to_string(prefix); }

std::optional<Cidr> parse_cidr(std::string_view text) {
    auto slash = text.find('/');
    auto ip = parse_ip(text.substr(0, slash));
    if (!ip) return std::nullopt;
    int max = ip->v6 ? 128 : 32;
    int prefix = max;
    if (slash != std::string_view::npos) {
        std::string_view p = text.substr(slash + 1);
        if (p.empty() || p.size() > 3) return std::nullopt;
        prefix = 0;
        for (char c : p) {
            if (c < '0' || c > '9') return std::nullopt;
            prefix = prefix * 10 + (c - '0');
        }
        if (prefix > max) return std::nullopt;
    }
    return Cidr{*ip, prefix};
}

std::vector<Cidr> parse_cidr_list(std::string_view text, const std::string& field) {
    std::vector<Cidr> out;
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t end = text.find_first_of(", \t", i);
        if (end == std::string_view::npos) end = text.size();
        std::string_view item = text.substr(i, end - i);
        i = end + 1;
        if (item.empty()) continue;
        auto c = parse_cidr(item);
        if (!c)
            throw ValidationError(field + ": '" + printable(item) +
                                      "' is not an IP range like 10.1.0.0/16 or fd00::/8",
                                  {{"field", field}});
        out.push_back(*c);
    }
    return out;
}

std::string special_purpose(const IpAddress& a) {
    if (!a.v6) return special_v4(v4_value(a));
    static const IpAddress kZero{true, {}};
    if (a == kZero) return "unspecified";
    IpAddress one{true, {}};
    one.bytes[15] = 1;
    if (a == one) return "loopback";
    if (auto e = a.embedded_v4()) {
        bool mapped = a.bytes[10] == 0xff;
        std::string why =
            embedded_reason(mapped ? "IPv4-mapped IPv6" : "IPv4-compatible IPv6", v4_value(*e));
        // A compatible address is deprecated (RFC 4291) whatever it embeds.
        if (why.empty() && !mapped) return "IPv4-compatible IPv6 (deprecated)";
        return why;
    }
    auto tail_v4 = [&](std::size_t at) {
        return (std::uint32_t(a.bytes[at]) << 24) | (std::uint32_t(a.bytes[at + 1]) << 16) |
               (std::uint32_t(a.bytes[at + 2]) << 8) | std::uint32_t(a.bytes[at + 3]);
    };
    // NAT64 (RFC 6052): the IPv4 address it reaches decides.
    if (has_prefix(a, {0x00, 0x64, 0xff, 0x9b}, 96)) return embedded_reason("NAT64", tail_v4(12));
    if (has_prefix(a, {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48)) return "local-use NAT64";
    if (has_prefix(a, {0x20, 0x02}, 16)) return embedded_reason("6to4", tail_v4(2));
    if (has_prefix(a, {0x20, 0x01, 0x0d, 0xb8}, 32)) return "documentation";
    if (has_prefix(a, {0x3f, 0xff}, 20)) return "documentation";
    if (has_prefix(a, {0x20, 0x01, 0x00, 0x00}, 32)) return "Teredo";
    if (has_prefix(a, {0x20, 0x01, 0x00, 0x02, 0x00, 0x00}, 48)) return "benchmarking";
    if (has_prefix(a, {0x20, 0x01, 0x00, 0x10}, 28)) return "ORCHID";
    if (has_prefix(a, {0x20, 0x01, 0x00, 0x20}, 28)) return "ORCHID";
    if (has_prefix(a, {0xff}, 8)) return "multicast";
    if (has_prefix(a, {0xfe, 0x80}, 10)) return "link-local";
    if (has_prefix(a, {0xfe, 0xc0}, 10)) return "site-local (deprecated)";
    if (has_prefix(a, {0xfc}, 7)) return "unique local (private)";
    if (has_prefix(a, {0x01, 0x00}, 64)) return "discard-only";
    // Global unicast is 2000::/3; everything else is reserved or unassigned.
    if (!has_prefix(a, {0x20}, 3)) return "reserved";
    return "";
}

}  // namespace mq
