#include "mq/core/time.hpp"

#include <charconv>
#include <cstdio>
#include <ctime>

#include "mq/error.hpp"

namespace mq {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::chrono::milliseconds parse_duration(std::string_view text, std::string_view what) {
    auto fail = [&]() -> std::chrono::milliseconds {
        throw ValidationError("invalid " + std::string(what) + " '" + printable(text) +
                                  "': use a number with a unit, e.g. 500ms, 90s, 5m, 1h, 7d",
                              {{"field", what}, {"value", printable(text)}});
    };
    // from_chars would take a leading '-' (refused below anyway) and nothing else odd;
    // "+5s", " 5s", "0x10" all fail here.
    if (text.empty() || text[0] < '0' || text[0] > '9') return fail();
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || value < 0) return fail();
    std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
    std::int64_t scale;
    if (unit.empty() || unit == "ms")
        scale = 1;
    else if (unit == "s")
        scale = 1000;
    else if (unit == "m")
        scale = 60'000;
    else if (unit == "h")
        scale = 3'600'000;
    else if (unit == "d")
        scale = 86'400'000;
    else
        return fail();
    if (value > kMaxDuration.count() / scale) {
        throw ValidationError(
            "invalid " + std::string(what) + " '" + printable(text) + "': longer than 100 years",
            {{"field", what}, {"value", printable(text)}});
    }
    return std::chrono::milliseconds(value * scale);
}

std::string format_duration(std::chrono::milliseconds d) {
    std::int64_t ms = d.count();
    if (ms == 0) return "0s";
    if (ms % 1000 != 0) {
        // Not whole seconds: exact, in ms or in seconds with the fraction kept.
        if (ms < 1000) return std::to_string(ms) + "ms";
        std::string frac = std::to_string(1000 + ms % 1000).substr(1);
        while (frac.back() == '0') frac.pop_back();
        return std::to_string(ms / 1000) + "." + frac + "s";
    }
    std::int64_t s = ms / 1000;
    std::string out;
    const std::pair<std::int64_t, const char*> units[] = {
        {86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
    for (auto [size, name] : units) {
        if (s >= size) {
            out += std::to_string(s / size) + name;
            s %= size;
        }
    }
    return out;
}

namespace {
bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(int y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return static_cast<std::int64_t>(era) * 146097 + static_cast<std::int64_t>(doe) - 719468;
}
}  // namespace

std::int64_t parse_rfc3339(std::string_view s, std::string_view what) {
    auto fail = [&]() -> std::int64_t {
        throw ValidationError("invalid " + std::string(what) + " '" + printable(s) +
                                  "': use RFC 3339, e.g. 2026-11-21T10:00:00Z",
                              {{"field", what}, {"value", printable(s)}});
    };
    int y, mo, d, h, mi, sec;
    if (!digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mo) ||
        s[7] != '-' || !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
        !digits(s, 17, 2, sec))
        return fail();
    static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || sec > 60)
        return fail();
    std::size_t pos = 19;
    std::int64_t frac_ms = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        int n = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (n < 3) frac_ms = frac_ms * 10 + (s[pos] - '0');
            ++n;
            ++pos;
        }
        if (n == 0) return fail();
        for (int i = n; i < 3; ++i) frac_ms *= 10;
    }
    std::int64_t offset_s = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        int oh, om;
        if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
            !digits(s, pos + 4, 2, om) || oh > 23 || om > 59)
            return fail();
        offset_s = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
        pos += 6;
    } else {
        return fail();
    }
    if (pos != s.size()) return fail();
    std::int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
    std::int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    return secs * 1000 + frac_ms;
}

std::string format_rfc3339(std::int64_t unix_ms) {
    std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
    std::int64_t ms = unix_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        --secs;
    }
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<long long>(ms));
    return buf;
}

}  // namespace mq
