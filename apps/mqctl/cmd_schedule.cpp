// mqctl schedule create|list|show|update|pause|resume|delete: cron schedules that publish
// a message to a queue at every tick (docs/schedules.md). Rules live in common/schedule.
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "confirm.hpp"
#include "mq/core/input_file.hpp"
#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/schedule/cron.hpp"
#include "mq/schedule/schedule_catalog.hpp"
#include "output.hpp"

namespace mqctl {

struct ScheduleOptions {
    std::string name;
    std::string queue;
    std::string cron;
    std::string tz;
    std::optional<std::string> payload;
    std::string payload_file;
    std::optional<std::string> key;
    std::vector<std::string> headers;
    bool no_headers = false;
    std::optional<std::string> content_type;
    std::string misfire;
    bool paused = false;
    int next = 5;
    bool yes = false;
};

namespace {

std::map<std::string, std::string> parse_headers(const std::vector<std::string>& list) {
    std::map<std::string, std::string> out;
    for (const auto& h : list) {
        auto eq = h.find('=');
        if (eq == std::string::npos || eq == 0)
            throw mq::ValidationError(
                "--header '" + mq::printable(h) + "' must look like name=value",
                {{"field", "headers"}});
        out[h.substr(0, eq)] = h.substr(eq + 1);
    }
    return out;
}

// --payload TEXT or --filename FILE ('-' for standard input); nullopt when neither.
std::optional<std::string> payload_of(const ScheduleOptions& o) {
    if (o.payload && !o.payload_file.empty())
        throw mq::ValidationError("give --payload or --filename, not both", {{"field", "payload"}});
    if (o.payload) return o.payload;
    if (o.payload_file.empty()) return std::nullopt;
    // Bounded: /dev/zero or an endless pipe is refused, not read into memory.
    return mq::read_input_file(o.payload_file, "payload file");
}

mq::PublishLimits limits_of(Context& ctx) {
    mq::PublishLimits limits;
    limits.max_message_size = ctx.config().max_message_size;
    return limits;
}

std::string when(const std::optional<std::int64_t>& ms, const std::string& tz) {
    if (!ms) return "-";
    return mq::format_rfc3339(*ms) + " (" + mq::format_in_zone(*ms, tz) + ")";
}

std::string headers_text(const std::map<std::string, std::string>& headers) {
    std::string out;
    for (const auto& [k, v] : headers) out += (out.empty() ? "" : ", ") + k + "=" + v;
    return out.empty() ? "-" : out;
}

void print_schedule(const mq::Schedule& s, Context& ctx, int next) {
    auto fires = next > 0 && s.status == "active" ? mq::next_fire_times(s, mq::now_ms(), next)
                                                  : std::vector<std::int64_t>{};
    if (ctx.json()) {
        auto j = mq::to_json(s);
        j["next_fires"] = nlohmann::json::array();
        for (auto ms : fires) j["next_fires"].push_back(mq::format_rfc3339(ms));
        print_json(j);
        return;
    }
    print_fields(
        {{"name", s.name},
         {"queue", s.queue},
         {"cron", s.cron},
         {"time zone", s.tz},
         {"status", s.status},
         {"misfire", s.misfire},
         {"key", s.key.empty() ? "-" : s.key},
         {"content type", s.content_type.empty() ? "-" : s.content_type},
         {"headers", headers_text(s.headers)},
         {"payload",
          mq::printable(s.payload.size() > 200 ? s.payload.substr(0, 200) + "..." : s.payload)},
         {"last tick", when(s.last_tick_ms, s.tz)},
         {"last message", s.last_message_id.empty() ? "-" : s.last_message_id},
         {"last error", s.last_error.empty() ? "-" : s.last_error},
         {"created", s.created_at},
         {"updated", s.updated_at}});
    if (fires.empty()) return;
    std::cout << "next fire times:\n";
    for (auto ms : fires)
        std::cout << "  " << mq::format_rfc3339(ms) << "  " << mq::format_in_zone(ms, s.tz) << '\n';
}

}  // namespace

void run_schedule_create(const ScheduleOptions& o, Context& ctx) {
    mq::ScheduleSpec spec;
    spec.name = o.name;
    spec.queue = o.queue;
    spec.cron = o.cron;
    if (!o.tz.empty()) spec.tz = o.tz;
    auto payload = payload_of(o);
    if (!payload)
        throw mq::ValidationError("give the message with --payload TEXT or --filename FILE",
                                  {{"field", "payload"}});
    spec.payload = *payload;
    spec.key = o.key.value_or("");
    spec.content_type = o.content_type.value_or("");
    spec.headers = parse_headers(o.headers);
    if (!o.misfire.empty()) spec.misfire = o.misfire;
    spec.paused = o.paused;
    auto limits = limits_of(ctx);
    mq::validate(spec, limits);  // before connecting: bad input is exit 2 even with backends down
    auto s = mq::create_schedule(ctx.db(), ctx.tenant(), spec, limits, mq::now_ms());
    if (!ctx.json()) std::cout << "created schedule " << s.name << '\n';
    print_schedule(s, ctx, o.next);
}

void run_schedule_update(const ScheduleOptions& o, Context& ctx) {
    mq::validate_name("schedule name", o.name);
    mq::ScheduleChanges c;
    if (!o.queue.empty()) c.queue = o.queue;
    if (!o.cron.empty()) c.cron = o.cron;
    if (!o.tz.empty()) c.tz = o.tz;
    c.payload = payload_of(o);
    c.key = o.key;
    c.content_type = o.content_type;
    if (!o.headers.empty() && o.no_headers)
        throw mq::ValidationError("give --header or --no-headers, not both",
                                  {{"field", "headers"}});
    if (!o.headers.empty()) c.headers = parse_headers(o.headers);
    if (o.no_headers) c.headers = std::map<std::string, std::string>{};
    if (!o.misfire.empty()) c.misfire = o.misfire;
    if (c.empty())
        throw mq::ValidationError(
            "nothing to update: give --queue, --cron, --tz, --payload, --filename, --key, "
            "--content-type, "
            "--header, --no-headers or --misfire");
    auto limits = limits_of(ctx);
    mq::validate(c, limits);
    auto s = mq::update_schedule(ctx.db(), ctx.tenant(), o.name, c, limits, mq::now_ms());
    if (!ctx.json()) std::cout << "updated schedule " << s.name << '\n';
    print_schedule(s, ctx, o.next);
}

void run_schedule_list(Context& ctx) {
    auto list = mq::ScheduleCatalog(ctx.db()).list(ctx.tenant());
    if (ctx.json()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& s : list) out.push_back(mq::to_json(s));
        print_json(out);
        return;
    }
    Table t({"NAME", "QUEUE", "CRON", "TZ", "STATUS", "NEXT TICK", "LAST ERROR"});
    for (const auto& s : list)
        t.add({s.name, s.queue, s.cron, s.tz, s.status,
               s.status == "active" && s.next_tick_ms ? mq::format_rfc3339(*s.next_tick_ms) : "-",
               s.last_error.empty() ? "-" : s.last_error});
    t.print();
}

void run_schedule_show(const ScheduleOptions& o, Context& ctx) {
    mq::validate_name("schedule name", o.name);
    if (o.next < 0 || o.next > 100)
        throw mq::ValidationError("--next must be from 0 to 100", {{"field", "next"}});
    print_schedule(mq::ScheduleCatalog(ctx.db()).get(ctx.tenant(), o.name), ctx, o.next);
}

void run_schedule_pause(const ScheduleOptions& o, Context& ctx, bool paused) {
    mq::validate_name("schedule name", o.name);
    auto s = mq::ScheduleCatalog(ctx.db()).set_paused(ctx.tenant(), o.name, paused, mq::now_ms());
    if (ctx.json()) {
        print_json(mq::to_json(s));
        return;
    }
    std::cout << (paused ? "paused" : "resumed") << " schedule " << s.name;
    if (!paused && s.next_tick_ms)
        std::cout << "; next tick " << mq::format_rfc3339(*s.next_tick_ms);
    std::cout << '\n';
}

void run_schedule_delete(const ScheduleOptions& o, Context& ctx) {
    mq::validate_name("schedule name", o.name);
    mq::ScheduleCatalog schedules(ctx.db());
    schedules.get(ctx.tenant(), o.name);  // not found before asking anything
    confirm("Delete schedule '" + o.name + "'?", o.yes);
    schedules.remove(ctx.tenant(), o.name);
    if (ctx.json())
        print_json({{"deleted", o.name}});
    else
        std::cout << "deleted schedule " << o.name << '\n';
}

void setup_schedule(CLI::App& app, Context& ctx) {
    auto* sched = app.add_subcommand("schedule",
                                     "Cron schedules: publish a message to a queue at every tick");
    sched->require_subcommand(1);
    auto o = std::make_shared<ScheduleOptions>();
    auto message_flags = [o](CLI::App* c) {
        c->add_option("--tz", o->tz,
                      "IANA time zone of the cron expression (default UTC), e.g. Europe/Berlin");
        c->add_option("--payload", o->payload, "The message payload");
        c->add_option("-f,--filename", o->payload_file,
                      "Read the payload from FILE ('-' for standard input)");
        c->add_option("--payload-file", o->payload_file)->group("");  // before 0.2
        c->add_option("-k,--key", o->key, "Message key (partition and order)");
        c->add_option("-H,--header", o->headers, "Header name=value (repeatable)")
            ->allow_extra_args(false);
        c->add_option("--content-type", o->content_type, "Content type of the payload");
        c->add_option(
            "--misfire", o->misfire,
            "Ticks missed while mq was down: once (publish one message, default) or skip");
        c->add_option("--next", o->next, "Fire times to print (default 5)");
    };

    auto* create = sched->add_subcommand("create", "Create a schedule");
    create->add_option("name", o->name, "Schedule name")->required();
    create->add_option("-q,--queue", o->queue, "Queue to publish to")->required();
    create->add_option("--cron", o->cron, "Cron expression: \"*/5 * * * *\", @hourly, @daily ...")
        ->required();
    message_flags(create);
    create->add_flag("--paused", o->paused, "Create it paused");
    create->callback([o, &ctx] { run_schedule_create(*o, ctx); });

    auto* update = sched->add_subcommand(
        "update", "Change a schedule (a new cron or zone restarts its ticks)");
    update->add_option("name", o->name, "Schedule name")->required();
    update->add_option("-q,--queue", o->queue, "Queue to publish to");
    update->add_option("--cron", o->cron, "Cron expression");
    message_flags(update);
    update->add_flag("--no-headers", o->no_headers, "Remove every header");
    update->callback([o, &ctx] { run_schedule_update(*o, ctx); });

    sched->add_subcommand("list", "List the tenant's schedules")->callback([&ctx] {
        run_schedule_list(ctx);
    });

    auto* show = sched->add_subcommand("show", "Show a schedule and its next fire times");
    show->add_option("name", o->name, "Schedule name")->required();
    show->add_option("--next", o->next, "Fire times to print (default 5)");
    show->callback([o, &ctx] { run_schedule_show(*o, ctx); });

    auto* pause = sched->add_subcommand("pause", "Stop a schedule's ticks");
    pause->add_option("name", o->name, "Schedule name")->required();
    pause->callback([o, &ctx] { run_schedule_pause(*o, ctx, true); });

    auto* resume = sched->add_subcommand(
        "resume", "Tick again from now (ticks during the pause are not sent)");
    resume->add_option("name", o->name, "Schedule name")->required();
    resume->callback([o, &ctx] { run_schedule_pause(*o, ctx, false); });

    auto* del = sched->add_subcommand("delete", "Delete a schedule");
    del->add_option("name", o->name, "Schedule name")->required();
    del->add_flag("-y,--yes", o->yes, "Do not ask for confirmation");
    del->callback([o, &ctx] { run_schedule_delete(*o, ctx); });
}

}  // namespace mqctl
