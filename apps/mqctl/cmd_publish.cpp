#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>

#include "commands.hpp"
#include "mq/core/input_file.hpp"
#include "mq/core/names.hpp"
#include "mq/core/time.hpp"
#include "mq/core/trace_context.hpp"
#include "mq/publish/batch_file.hpp"
#include "mq/publish/envelope.hpp"
#include "mq/publish/publish_use_case.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/queue/catalog.hpp"
#include "output.hpp"

namespace mqctl {

struct PublishOptions {
    std::string queue;
    std::optional<std::string> payload;
    std::string file;
    std::string key;
    std::vector<std::string> headers;
    std::string idempotency_key;
    std::string content_type;
    std::string delay;
    std::string at;
    std::string batch;
    std::string traceparent;
    std::string tracestate;
    bool skip_invalid = false;
};

namespace {

mq::PublishRequest request_from_flags(const PublishOptions& o) {
    mq::PublishRequest r;
    r.key = o.key;
    r.idempotency_key = o.idempotency_key;
    r.content_type = o.content_type;
    for (const auto& h : o.headers) {
        auto eq = h.find('=');
        if (eq == std::string::npos || eq == 0)
            throw mq::ValidationError("--header '" + h + "' must look like name=value");
        r.headers[h.substr(0, eq)] = h.substr(eq + 1);
    }
    if (!o.delay.empty()) r.delay = mq::parse_duration(o.delay, "--delay");
    if (!o.at.empty()) r.deliver_at_ms = mq::parse_rfc3339(o.at, "--at");
    // An operator's typo is refused here (exit 2); mq-api ignores a malformed header instead,
    // as W3C Trace Context asks of a service.
    if (!o.tracestate.empty() && o.traceparent.empty())
        throw mq::ValidationError("--tracestate needs --traceparent");
    if (!o.traceparent.empty()) {
        if (!mq::trace::parse_traceparent(o.traceparent))
            throw mq::ValidationError(
                "--traceparent '" + mq::printable(o.traceparent) +
                    "' is not a W3C traceparent (00-<32 hex trace id>-<16 hex parent id>-<2 hex "
                    "flags>, lowercase, ids not all zero)",
                {{"field", "traceparent"}});
        if (!o.tracestate.empty() && !mq::trace::parse_tracestate(o.tracestate))
            throw mq::ValidationError(
                "--tracestate is not a W3C tracestate (key=value,... with "
                "at most 32 members and 512 characters)",
                {{"field", "tracestate"}});
        mq::apply_trace_context(r, o.traceparent, o.tracestate);
    }
    return r;
}

// The publish use case for one queue, as an operator runs it: no quota, the keyring of
// MQ_KEYRING_FILE loaded only when the queue is encrypted.
mq::PublishUseCase use_case_for(const mq::Queue& q, Context& ctx, const mq::PublishLimits& limits) {
    return mq::PublishUseCase(limits, mq::keyring_for(ctx.config().keyring_file, {&q}), nullptr);
}

void run_single(const PublishOptions& o, Context& ctx, const mq::PublishLimits& limits) {
    mq::PublishRequest r = request_from_flags(o);
    int sources = (o.payload ? 1 : 0) + (o.file.empty() ? 0 : 1);
    if (sources > 1)
        throw mq::ValidationError("give the payload as an argument or --filename, not both");
    // Reads are bounded by the message size limit: `-f /dev/zero` or an endless pipe is
    // refused (exit 2) instead of filling memory.
    const auto max = static_cast<std::size_t>(limits.max_message_size);
    // A payload over the limit is MQ_PAYLOAD_TOO_LARGE however it arrives (argument or file).
    auto read_payload = [&](const std::string& path, const char* what) {
        try {
            return mq::read_input_file(path, what, max);
        } catch (const mq::ValidationError& e) {
            if (!e.details().contains("limit")) throw;
            throw mq::Error(mq::ErrorCode::kPayloadTooLarge,
                            std::string("the ") + what + " is over the limit of " +
                                std::to_string(max) + " bytes (MAX_MESSAGE_SIZE)",
                            {{"limit", max}});
        }
    };
    if (o.payload) {
        r.payload = *o.payload;
    } else if (!o.file.empty()) {
        r.payload = read_payload(o.file, "payload file");
    } else {
        if (isatty(STDIN_FILENO))
            throw mq::ValidationError(
                "no payload: give it as an argument, with --filename FILE, or on standard input");
        r.payload = read_payload("-", "standard input");
        // From cron, stdin is /dev/null: an implicit read that finds nothing is a mistake,
        // not an empty message. `-f -` asks for stdin explicitly and may be empty.
        if (r.payload.empty())
            throw mq::ValidationError(
                "no payload: standard input was empty; give the payload as an argument, with "
                "--filename FILE, or '-f -' to publish an empty message from standard input");
    }
    mq::validate(r, limits);  // before any connection: bad input is exit 2 even with Redis down
    mq::Catalog catalog(ctx.db());
    mq::Queue q = catalog.get_queue(ctx.tenant(), o.queue);
    use_case_for(q, ctx, limits).admit(q, r);
    if (const char* user = std::getenv("USER"); user && *user)
        r.producer = std::string("mqctl:") + user;
    else
        r.producer = "mqctl";
    mq::Publisher publisher(ctx.redis(), ctx.keys(), limits);
    auto out = publisher.publish(q, r);
    bool dup = out.status == mq::PublishStatus::kDuplicate;
    if (ctx.json()) {
        print_json({{"id", out.message_id},
                    {"partition", out.partition},
                    {"duplicate", dup},
                    {"delayed", out.delayed},
                    {"stream_id", out.stream_id}});
        return;
    }
    std::cout << out.message_id;
    if (dup)
        std::cout << " (duplicate: already published within the dedup window)";
    else if (out.delayed)
        std::cout << " (delayed)";
    std::cout << '\n';
}

void run_batch(const PublishOptions& o, Context& ctx, const mq::PublishLimits& limits) {
    if (o.payload || !o.file.empty() || !o.key.empty() || !o.headers.empty() ||
        !o.idempotency_key.empty() || !o.delay.empty() || !o.at.empty() || !o.traceparent.empty() ||
        !o.tracestate.empty())
        throw mq::ValidationError(
            "--batch reads every message (with its key, headers, delay...) from JSON lines; "
            "do not combine it with a payload or per-message flags");
    // A file that cannot be read is bad input (exit 2) even while a backend is down.
    mq::check_batch_source(o.batch);
    mq::Catalog catalog(ctx.db());
    mq::Queue q = catalog.get_queue(ctx.tenant(), o.queue);
    mq::Publisher publisher(ctx.redis(), ctx.keys(), limits);
    auto use_case = use_case_for(q, ctx, limits);

    const bool tty = isatty(STDERR_FILENO);
    const auto start = std::chrono::steady_clock::now();
    auto last = start;
    bool printed = false;
    mq::BatchOptions bo;
    bo.skip_invalid = o.skip_invalid;
    use_case.attach(q, bo);
    bo.on_progress = [&](const mq::BatchProgress& p) {
        if (p.total < 10000) return;  // small inputs finish before a progress line helps
        auto now = std::chrono::steady_clock::now();
        if (now - last < (tty ? std::chrono::milliseconds(250) : std::chrono::milliseconds(5000)) &&
            p.done < p.total)
            return;
        last = now;
        double secs = std::chrono::duration<double>(now - start).count();
        char line[160];
        std::snprintf(line, sizeof line, "published %zu/%zu (%.0f%%, %.0f msg/s)", p.done, p.total,
                      100.0 * static_cast<double>(p.done) / static_cast<double>(p.total),
                      secs > 0 ? static_cast<double>(p.done) / secs : 0.0);
        std::cerr << (tty ? "\r" : "") << line << (tty ? "" : "\n") << std::flush;
        printed = true;
    };
    auto report = mq::publish_json_lines(publisher, q, o.batch, limits, bo);
    if (printed && tty) std::cerr << '\n';
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    if (ctx.json()) {
        nlohmann::json invalid = nlohmann::json::array();
        for (const auto& e : report.invalid)
            invalid.push_back({{"line", e.line}, {"error", e.message}});
        print_json({{"lines", report.lines},
                    {"published", report.published},
                    {"duplicates", report.duplicates},
                    {"rejected", report.rejected},
                    {"skipped", report.skipped},
                    {"first_rejected_line", report.first_rejected_line},
                    {"invalid", invalid},
                    {"seconds", secs}});
    } else {
        for (const auto& e : report.invalid)
            std::cerr << "skipped line " << e.line << ": " << e.message << '\n';
        std::cout << "published " << report.published << " of " << report.lines << " message(s) to "
                  << q.name << " in " << std::fixed << std::setprecision(2) << secs << " s";
        if (report.duplicates) std::cout << ", " << report.duplicates << " duplicate(s)";
        if (report.skipped) std::cout << ", " << report.skipped << " invalid line(s) skipped";
        if (report.rejected) std::cout << ", " << report.rejected << " rejected";
        std::cout << '\n';
    }
    if (report.rejected)
        throw mq::Error(
            mq::ErrorCode::kQueueFull,
            std::to_string(report.rejected) + " message(s) were not published, from line " +
                std::to_string(report.first_rejected_line) + ": " + report.first_rejection);
}

}  // namespace

void run_publish(const PublishOptions& o, Context& ctx) {
    mq::validate_name("queue name", o.queue);  // bad input is exit 2 even with backends down
    mq::PublishLimits limits;
    limits.max_message_size = ctx.config().max_message_size;
    if (!o.batch.empty())
        run_batch(o, ctx, limits);
    else
        run_single(o, ctx, limits);
}

void setup_publish(CLI::App& app, Context& ctx) {
    auto o = std::make_shared<PublishOptions>();
    auto* cmd =
        app.add_subcommand("publish", "Publish a message (or a JSON-lines batch) to a queue");
    cmd->add_option("queue", o->queue, "Queue name")->required();
    cmd->add_option("payload", o->payload, "Payload; omit to read --filename or standard input");
    cmd->add_option("-f,--filename", o->file,
                    "Read the payload from a file ('-' for standard input)");
    cmd->add_option("--file", o->file)->group("");  // before 0.2: kept for scripts
    cmd->add_option("-k,--key", o->key, "Message key: same key, same partition, kept in order");
    cmd->add_option("-H,--header", o->headers, "Header name=value (repeatable)")
        ->allow_extra_args(false);  // `-H a=b PAYLOAD`: the payload is not a second header
    cmd->add_option("-i,--idempotency-key", o->idempotency_key,
                    "Publish once per key within the queue's dedup window");
    cmd->add_option("--content-type", o->content_type, "Content type of the payload");
    cmd->add_option("--delay", o->delay, "Deliver after this long: 500ms, 90s, 5m, 1h");
    cmd->add_option("--at", o->at, "Deliver at this RFC 3339 time, e.g. 2026-12-01T09:00:00Z");
    cmd->add_option("--traceparent", o->traceparent,
                    "W3C traceparent to store with the message: 00-<trace id>-<parent id>-<flags>");
    cmd->add_option("--tracestate", o->tracestate, "W3C tracestate to go with --traceparent");
    cmd->add_option("--batch", o->batch,
                    "Publish JSON lines from FILE ('-' for standard input): "
                    "{\"payload\":...,\"key\":...,\"headers\":{},\"idempotency_key\":...,"
                    "\"delay\":\"5m\",\"deliver_at\":\"...\"}");
    cmd->add_flag("--skip-invalid", o->skip_invalid,
                  "With --batch: publish valid lines, report bad ones");
    cmd->callback([o, &ctx] { run_publish(*o, ctx); });
}

}  // namespace mqctl
