#include "mq/core/trace_context.hpp"

#include <algorithm>
#include <random>
#include <vector>

#include "mq/core/message.hpp"

namespace mq::trace {

namespace {

bool lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool all_lower_hex(std::string_view s) { return std::all_of(s.begin(), s.end(), lower_hex); }

bool all_zero(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

int hex_value(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

bool lcalpha(char c) { return c >= 'a' && c <= 'z'; }
bool digit(char c) { return c >= '0' && c <= '9'; }
bool key_char(char c) {
    return lcalpha(c) || digit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}

// key = simple-key / multi-tenant-key (W3C §3.3.1.3.1):
//   simple-key       = lcalpha 0*255( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
//   multi-tenant-key = tenant-id "@" system-id
//   tenant-id        = ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
//   system-id        = lcalpha 0*13( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
bool valid_key(std::string_view key) {
    auto rest_ok = [](std::string_view s) { return std::all_of(s.begin(), s.end(), key_char); };
    std::size_t at = key.find('@');
    if (at == std::string_view::npos)
        return !key.empty() && key.size() <= 256 && lcalpha(key[0]) && rest_ok(key.substr(1));
    std::string_view tenant = key.substr(0, at), system = key.substr(at + 1);
    return !tenant.empty() && tenant.size() <= 241 && (lcalpha(tenant[0]) || digit(tenant[0])) &&
           rest_ok(tenant.substr(1)) && !system.empty() && system.size() <= 14 &&
           lcalpha(system[0]) && rest_ok(system.substr(1));
}

// value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
bool valid_value(std::string_view value) {
    if (value.empty() || value.size() > 256 || value.back() == ' ') return false;
    return std::all_of(value.begin(), value.end(),
                       [](char c) { return c >= 0x20 && c <= 0x7e && c != ',' && c != '='; });
}

std::mt19937_64& rng() {
    thread_local std::mt19937_64 gen{std::random_device{}()};
    return gen;
}

}  // namespace

std::optional<TraceParent> parse_traceparent(std::string_view header) {
    std::string_view h = trim_ows(header);
    // version "-" trace-id "-" parent-id "-" trace-flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55
    if (h.size() < 55) return std::nullopt;
    std::string_view version = h.substr(0, 2);
    if (!all_lower_hex(version) || version == "ff") return std::nullopt;
    if (version == "00" && h.size() != 55) return std::nullopt;
    if (h.size() > 55 && h[55] != '-') return std::nullopt;  // a future version's next field
    if (h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
    std::string_view trace_id = h.substr(3, 32), parent_id = h.substr(36, 16),
                     flags = h.substr(53, 2);
    if (!all_lower_hex(trace_id) || !all_lower_hex(parent_id) || !all_lower_hex(flags))
        return std::nullopt;
    if (all_zero(trace_id) || all_zero(parent_id)) return std::nullopt;
    // Only the sampled bit means something in version 00; other bits are not passed on.
    bool sampled = (hex_value(flags[1]) & 1) != 0;
    return TraceParent{std::string(trace_id), std::string(parent_id), sampled ? "01" : "00"};
}

std::optional<std::string> parse_tracestate(std::string_view header) {
    // A header longer than any valid one (32 members of 256 + 1 + 256 characters plus
    // separators and white space) is not read further.
    if (header.size() > 32 * 1024) return std::nullopt;
    std::vector<std::string_view> keys;
    std::string out;
    std::size_t start = 0;
    while (start <= header.size()) {
        std::size_t comma = header.find(',', start);
        if (comma == std::string_view::npos) comma = header.size();
        std::string_view member = trim_ows(header.substr(start, comma - start));
        start = comma + 1;
        if (member.empty()) continue;  // empty list members are allowed and dropped
        std::size_t eq = member.find('=');
        if (eq == std::string_view::npos) return std::nullopt;
        std::string_view key = member.substr(0, eq), value = member.substr(eq + 1);
        if (!valid_key(key) || !valid_value(value)) return std::nullopt;
        if (std::find(keys.begin(), keys.end(), key) != keys.end()) return std::nullopt;
        keys.push_back(key);
        if (keys.size() > kMaxTraceStateMembers) return std::nullopt;
        if (!out.empty()) out += ',';
        out += member;
        if (out.size() > kMaxTraceStateChars) return std::nullopt;
    }
    if (out.empty()) return std::nullopt;
    return out;
}

bool is_trace_id(std::string_view s) { return s.size() == 32 && all_lower_hex(s) && !all_zero(s); }

std::optional<std::string> w3c_trace_id(std::string_view stored) {
    std::string digits;
    if (stored.size() == 32) {
        digits = std::string(stored);
    } else if (stored.size() == 36 && stored[8] == '-' && stored[13] == '-' && stored[18] == '-' &&
               stored[23] == '-') {
        for (std::size_t i = 0; i < stored.size(); ++i)
            if (i != 8 && i != 13 && i != 18 && i != 23) digits += stored[i];
    } else {
        return std::nullopt;
    }
    for (char& c : digits)
        if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!is_trace_id(digits)) return std::nullopt;
    return digits;
}

std::string new_span_id() {
    static constexpr char kHex[] = "0123456789abcdef";
    std::uint64_t v = 0;
    while (v == 0) v = rng()();
    std::string s(16, '0');
    for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = kHex[v & 0xf];
    return s;
}

std::string format_traceparent(std::string_view trace_id, std::string_view span_id,
                               std::string_view flags) {
    std::string s;
    s.reserve(55);
    s += "00-";
    s += trace_id;
    s += '-';
    s += span_id;
    s += '-';
    s += flags;
    return s;
}

Handoff handoff(const Message& m) {
    Handoff h;
    if (m.trace_id.empty()) return h;
    auto id = w3c_trace_id(m.trace_id);
    if (!id) return h;
    std::string_view flags = m.trace_flags == "00" || m.trace_flags == "01"
                                 ? std::string_view(m.trace_flags)
                                 : std::string_view("01");
    h.traceparent = format_traceparent(*id, new_span_id(), flags);
    h.tracestate = m.trace_state;
    return h;
}

}  // namespace mq::trace
