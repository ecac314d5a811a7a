#include "mq/schedule/cron.hpp"

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

#include <array>
#include <cctype>
#include <vector>

#include "mq/error.hpp"

namespace mq {

struct CronSchedule::Zone {
    cctz::time_zone tz;
};

namespace {

struct FieldSpec {
    const char* name;
    int lo;
    int hi;
    const char* const* names;  // nullptr or `hi - lo + 1` three-letter names from lo
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kWeekdayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

constexpr std::array<FieldSpec, 5> kFields{{
    {"minute", 0, 59, nullptr},
    {"hour", 0, 23, nullptr},
    {"day-of-month", 1, 31, nullptr},
    {"month", 1, 12, kMonthNames},
    {"day-of-week", 0, 7, kWeekdayNames},  // 7 is Sunday too
}};

// A search for the next fire time gives up after this many calendar years: Feb 29 recurs
// at most 8 years apart (2096 -> 2104), so a valid expression always fires within it.
constexpr int kHorizonYears = 9;

[[noreturn]] void bad(std::string_view expr, std::string_view field, std::size_t pos,
                      const std::string& what) {
    throw ValidationError(
        "invalid cron expression '" + printable(expr) + "': " + std::string(field) +
            " field at position " + std::to_string(pos + 1) + ": " + what,
        {{"field", "cron"}, {"cron_field", std::string(field)}, {"position", pos + 1}});
}

class FieldParser {
  public:
    FieldParser(std::string_view expr, std::string_view text, std::size_t offset,
                const FieldSpec& spec)
        : expr_(expr), text_(text), offset_(offset), spec_(spec) {}

    std::vector<bool> parse() {
        std::vector<bool> out(static_cast<std::size_t>(spec_.hi + 1), false);
        std::size_t start = 0;
        while (true) {
            std::size_t comma = text_.find(',', start);
            std::string_view item =
                text_.substr(start, comma == std::string_view::npos ? comma : comma - start);
            item_(item, start, out);
            if (comma == std::string_view::npos) break;
            start = comma + 1;
        }
        return out;
    }

  private:
    void item_(std::string_view item, std::size_t at, std::vector<bool>& out) {
        if (item.empty()) bad(expr_, spec_.name, offset_ + at, "empty list item");
        int lo = spec_.lo, hi = spec_.hi, step = 1;
        // Sunday as 7 is only an alias; `*` covers 0..6.
        if (spec_.hi == 7) hi = 6;
        std::size_t slash = item.find('/');
        std::string_view range = item.substr(0, slash);
        if (range == "*") {
            // whole range
        } else {
            std::size_t dash = range.find('-', 1);
            lo = value_(range.substr(0, dash), at);
            if (dash != std::string_view::npos) {
                hi = value_(range.substr(dash + 1), at + dash + 1);
                if (hi < lo)
                    bad(expr_, spec_.name, offset_ + at,
                        "range " + std::string(range) + " runs backwards (write " +
                            std::to_string(hi) + "-" + std::to_string(lo) + " or a list)");
            } else if (slash == std::string_view::npos) {
                hi = lo;
            } else {
                hi = spec_.hi == 7 ? 6 : spec_.hi;  // "a/n": from a to the end
            }
        }
        if (slash != std::string_view::npos) {
            std::string_view s = item.substr(slash + 1);
            std::size_t spos = at + slash + 1;
            if (s.empty() || s.size() > 3)
                bad(expr_, spec_.name, offset_ + spos,
                    "step must be a number from 1 to " + std::to_string(spec_.hi));
            step = 0;
            for (char c : s) {
                if (!std::isdigit(static_cast<unsigned char>(c)))
                    bad(expr_, spec_.name, offset_ + spos,
                        "step '" + printable(s) + "' is not a number");
                step = step * 10 + (c - '0');
            }
            if (step < 1 || step > spec_.hi)
                bad(expr_, spec_.name, offset_ + spos,
                    "step must be from 1 to " + std::to_string(spec_.hi));
        }
        for (int v = lo; v <= hi; v += step) out[static_cast<std::size_t>(v)] = true;
    }

    int value_(std::string_view v, std::size_t at) {
        if (v.empty()) bad(expr_, spec_.name, offset_ + at, "missing value");
        if (std::isalpha(static_cast<unsigned char>(v[0]))) {
            if (spec_.names && v.size() == 3) {
                std::string lower;
                for (char c : v)
                    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                int count = spec_.hi == 7 ? 7 : spec_.hi - spec_.lo + 1;
                for (int i = 0; i < count; ++i)
                    if (lower == spec_.names[i]) return spec_.lo + i;
            }
            bad(expr_, spec_.name, offset_ + at,
                "unknown name '" + printable(v) + "'" +
                    (spec_.names ? std::string(spec_.hi == 7 ? " (use sun..sat or 0-7)"
                                                             : " (use jan..dec or 1-12)")
                                 : std::string(" (this field takes numbers only)")));
        }
        if (v.size() > 2)
            bad(expr_, spec_.name, offset_ + at, "value '" + printable(v) + "' out of range");
        int n = 0;
        for (char c : v) {
            if (!std::isdigit(static_cast<unsigned char>(c)))
                bad(expr_, spec_.name, offset_ + at,
                    "'" + printable(v) + "' is not a number or name");
            n = n * 10 + (c - '0');
        }
        if (n < spec_.lo || n > spec_.hi)
            bad(expr_, spec_.name, offset_ + at,
                "value " + std::to_string(n) + " out of range " + std::to_string(spec_.lo) + "-" +
                    std::to_string(spec_.hi));
        return n;
    }

    std::string_view expr_;
    std::string_view text_;
    std::size_t offset_;
    const FieldSpec& spec_;
};

std::string_view expand_macro(std::string_view expr) {
    struct Macro {
        std::string_view name, value;
    };
    static constexpr Macro kMacros[] = {{"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
                                        {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
                                        {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
                                        {"@hourly", "0 * * * *"}};
    for (const auto& m : kMacros)
        if (m.name == expr) return m.value;
    throw ValidationError(
        "invalid cron expression '" + printable(expr) +
            "': unknown macro (use @hourly, @daily, @weekly, @monthly, @yearly or @annually)",
        {{"field", "cron"}, {"position", 1}});
}

cctz::time_zone load_zone(std::string_view tz) {
    if (tz.empty() || tz == "UTC") return cctz::utc_time_zone();
    // Names reach a path under /usr/share/zoneinfo: letters, digits, '_', '-', '+' and
    // '/', no '..', no leading '/'.
    bool ok = tz.size() <= 64 && tz[0] != '/' && tz.find("..") == std::string_view::npos;
    for (char c : tz)
        ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
                    c == '+' || c == '/');
    cctz::time_zone zone;
    if (!ok || !cctz::load_time_zone(std::string(tz), &zone))
        throw ValidationError(
            "unknown time zone '" + printable(tz) +
                "': use an IANA name such as Europe/Berlin, America/New_York or UTC",
            {{"field", "tz"}});
    return zone;
}

}  // namespace

void validate_time_zone(std::string_view tz) { load_zone(tz); }

std::string format_in_zone(std::int64_t unix_ms, std::string_view tz) {
    auto t = std::chrono::time_point_cast<std::chrono::seconds>(
        std::chrono::system_clock::time_point(std::chrono::milliseconds(unix_ms)));
    return cctz::format("%Y-%m-%d %H:%M:%S %Z", t, load_zone(tz));
}

CronSchedule::CronSchedule(std::string_view expression, std::string_view tz)
    : expression_(expression), tz_name_(tz.empty() ? "UTC" : std::string(tz)) {
    if (expression.size() > 256)
        throw ValidationError("cron expression is too long (" + std::to_string(expression.size()) +
                                  " characters, at most 256)",
                              {{"field", "cron"}});
    std::string_view expr = expression;
    // Leading/trailing blanks are ignored; positions still count from the start.
    std::size_t first = expr.find_first_not_of(" \t");
    if (first == std::string_view::npos)
        throw ValidationError("cron expression is empty", {{"field", "cron"}});
    std::string_view body = expr.substr(first, expr.find_last_not_of(" \t") - first + 1);
    std::size_t base = first;
    if (body[0] == '@') {
        body = expand_macro(body);
        expr = body;
        base = 0;
    }
    std::vector<std::pair<std::size_t, std::string_view>> parts;
    std::size_t i = 0;
    while (i < body.size()) {
        while (i < body.size() && (body[i] == ' ' || body[i] == '\t')) ++i;
        std::size_t start = i;
        while (i < body.size() && body[i] != ' ' && body[i] != '\t') ++i;
        if (i > start) parts.emplace_back(base + start, body.substr(start, i - start));
    }
    if (parts.size() != 5)
        throw ValidationError(
            "invalid cron expression '" + printable(expression) + "': expected 5 fields " +
                "(minute hour day-of-month month day-of-week), got " + std::to_string(parts.size()),
            {{"field", "cron"}});
    std::array<std::vector<bool>, 5> sets;
    for (std::size_t f = 0; f < 5; ++f)
        sets[f] = FieldParser(expression_, parts[f].second, parts[f].first, kFields[f]).parse();
    for (std::size_t v = 0; v < 60; ++v) fields_.minutes[v] = sets[0][v];
    for (std::size_t v = 0; v < 24; ++v) fields_.hours[v] = sets[1][v];
    for (std::size_t v = 1; v < 32; ++v) fields_.days[v] = sets[2][v];
    for (std::size_t v = 1; v < 13; ++v) fields_.months[v] = sets[3][v];
    for (std::size_t v = 0; v < 7; ++v) fields_.weekdays[v] = sets[4][v];
    if (sets[4][7]) fields_.weekdays[0] = true;
    fields_.day_star = parts[2].second[0] == '*';
    fields_.weekday_star = parts[4].second[0] == '*';

    zone_ = std::make_shared<Zone>(Zone{load_zone(tz)});
    // "0 0 30 2 *" parses but never fires: refuse it now rather than never tick.
    if (!next_after(std::chrono::system_clock::from_time_t(0)))
        throw ValidationError(
            "cron expression '" + printable(expression) + "' never fires (no such date)",
            {{"field", "cron"}});
}

std::optional<CronSchedule::TimePoint> CronSchedule::next_after(TimePoint t) const {
    const cctz::time_zone& tz = zone_->tz;
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
    if (secs > t) secs -= std::chrono::seconds(1);  // floor for times before the epoch
    const cctz::civil_second now_civil = cctz::convert(secs, tz);
    cctz::civil_minute m = cctz::civil_minute(now_civil) + 1;
    // In a fall-back overlap (t in the second pass of the repeated hour) the candidates of
    // that hour resolve to their first occurrence, before t, so the `> t` test drops them.
    const auto limit_year = now_civil.year() + kHorizonYears;
    const auto wday = [](const cctz::civil_day& d) {
        switch (cctz::get_weekday(d)) {
            case cctz::weekday::sunday:
                return 0;
            case cctz::weekday::monday:
                return 1;
            case cctz::weekday::tuesday:
                return 2;
            case cctz::weekday::wednesday:
                return 3;
            case cctz::weekday::thursday:
                return 4;
            case cctz::weekday::friday:
                return 5;
            case cctz::weekday::saturday:
                return 6;
        }
        return 0;
    };
    while (m.year() <= limit_year) {
        if (!fields_.months[static_cast<std::size_t>(m.month())]) {
            m = cctz::civil_minute(cctz::civil_month(m) + 1);
            continue;
        }
        const cctz::civil_day d(m);
        const bool dom = fields_.days[static_cast<std::size_t>(d.day())];
        const bool dow = fields_.weekdays[static_cast<std::size_t>(wday(d))];
        // Vixie cron: either field starting with '*' means both must match ("*/2" in
        // day-of-month still restricts); both restricted means either may match.
        const bool day_ok =
            (fields_.day_star || fields_.weekday_star) ? (dom && dow) : (dom || dow);
        if (!day_ok) {
            m = cctz::civil_minute(d + 1);
            continue;
        }
        if (!fields_.hours[static_cast<std::size_t>(m.hour())]) {
            m = cctz::civil_minute(cctz::civil_hour(m) + 1);
            continue;
        }
        if (!fields_.minutes[static_cast<std::size_t>(m.minute())]) {
            m += 1;
            continue;
        }
        const auto look = tz.lookup(cctz::civil_second(m));
        // Skipped local time: the first instant after the gap. Repeated: the first one.
        const auto at = look.kind == cctz::time_zone::civil_lookup::SKIPPED ? look.trans : look.pre;
        if (at > t) return std::chrono::time_point_cast<std::chrono::system_clock::duration>(at);
        m += 1;
    }
    return std::nullopt;
}

}  // namespace mq
