#include "mq/publish/batch_file.hpp"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "mq/publish/envelope.hpp"

namespace mq {

namespace {

constexpr std::size_t kMaxReportedErrors = 100;

// A line may hold a payload of max_message_size escaped as JSON (\u0000 is 6 bytes per
// byte) plus its envelope fields; anything longer is not a batch line (e.g. /dev/zero).
std::size_t max_line_bytes(const PublishLimits& limits) {
    return limits.max_message_size * 6 + 64 * 1024;
}

// std::getline with a bound: a line over `max` bytes refuses the whole input, since what
// follows it cannot be found without reading the rest of an endless line.
bool read_line(std::istream& in, std::string& line, std::size_t max, std::size_t number) {
    line.clear();
    std::streambuf* buf = in.rdbuf();
    for (;;) {
        int c = buf->sbumpc();
        if (c == std::char_traits<char>::eof()) {
            in.setstate(std::ios::eofbit);
            return !line.empty();
        }
        if (c == '\n') return true;
        if (line.size() >= max)
            throw ValidationError("line " + std::to_string(number) + " is longer than " +
                                      std::to_string(max) + " bytes; nothing was published",
                                  {{"line", number}, {"field", "batch"}});
        line.push_back(static_cast<char>(c));
    }
}

bool blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

// Parses one line into a request; throws ValidationError/Error describing the problem.
PublishRequest parse_line(EnvelopeParser& parser, const std::string& line,
                          const PublishLimits& limits, const BatchOptions& options) {
    PublishRequest r = parser.parse(line);
    validate(r, limits);
    if (options.check) options.check(r);
    return r;
}

// Removes the spool file whatever happens.
struct TempFile {
    std::filesystem::path path;
    ~TempFile() {
        if (!path.empty()) {
            std::error_code ec;
            std::filesystem::remove(path, ec);
        }
    }
};

}  // namespace

std::set<std::size_t> check_json_lines(std::istream& in, const PublishLimits& limits,
                                       const BatchOptions& options, BatchReport& report,
                                       std::ostream* spool) {
    EnvelopeParser parser;
    std::set<std::size_t> bad_lines;
    std::string line;
    std::size_t number = 0;
    const std::size_t max = max_line_bytes(limits);
    while (read_line(in, line, max, number + 1)) {
        ++number;
        if (spool) *spool << line << '\n';
        if (blank(line)) continue;
        ++report.lines;
        try {
            parse_line(parser, line, limits, options);
        } catch (const Error& e) {
            bad_lines.insert(number);
            if (report.invalid.size() < kMaxReportedErrors)
                report.invalid.push_back({number, e.what()});
        }
    }
    return bad_lines;
}

void check_batch_source(const std::string& path) {
    if (path == "-") return;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw ValidationError("batch file '" + printable(path) + "' is a directory",
                              {{"field", "batch"}});
    if (std::ifstream probe(path, std::ios::binary); !probe)
        throw ValidationError("cannot read batch file '" + printable(path) + "'",
                              {{"field", "batch"}});
}

BatchReport publish_json_lines(Publisher& publisher, const Queue& queue, const std::string& path,
                               const PublishLimits& limits, const BatchOptions& options) {
    BatchReport report;
    EnvelopeParser parser;
    TempFile spool;
    std::string source = path;
    std::set<std::size_t> bad_lines;

    // Pass 1: validate every line (and spool standard input).
    {
        std::ifstream file;
        std::ofstream out;
        std::istream* in = &std::cin;
        if (path != "-") {
            check_batch_source(path);
            file.open(path, std::ios::binary);
            if (!file)
                throw ValidationError("cannot read batch file '" + printable(path) + "'",
                                      {{"field", "batch"}});
            in = &file;
        } else {
            char tmpl[] = "/tmp/mqctl-batch-XXXXXX";
            int fd = mkstemp(tmpl);
            if (fd < 0) throw Error(ErrorCode::kInternal, "cannot create a temporary file in /tmp");
            close(fd);
            spool.path = tmpl;
            source = tmpl;
            out.open(spool.path, std::ios::binary | std::ios::trunc);
        }
        bad_lines = check_json_lines(*in, limits, options, report, out.is_open() ? &out : nullptr);
        if (out.is_open()) {
            out.close();
            if (!out) throw Error(ErrorCode::kInternal, "cannot spool standard input to " + source);
        }
    }
    if (!bad_lines.empty() && !options.skip_invalid) {
        const auto& first = report.invalid.front();
        nlohmann::json lines = nlohmann::json::array();
        for (const auto& e : report.invalid)
            lines.push_back({{"line", e.line}, {"error", e.message}});
        std::string more = bad_lines.size() > 1 ? " (and " + std::to_string(bad_lines.size() - 1) +
                                                      " more bad lines)"
                                                : "";
        throw ValidationError("line " + std::to_string(first.line) + ": " + first.message + more +
                                  "; nothing was published (use --skip-invalid to publish the "
                                  "valid lines)",
                              {{"invalid_lines", lines}, {"invalid_count", bad_lines.size()}});
    }
    report.skipped = bad_lines.size();

    // Pass 2: publish the valid lines in pipelined chunks.
    std::ifstream in(source, std::ios::binary);
    if (!in) throw Error(ErrorCode::kInternal, "cannot re-read batch input '" + source + "'");
    BatchProgress progress{0, report.lines - report.skipped};
    // Two chunks in flight: while Redis stores one, the next is parsed and encoded.
    struct InFlight {
        Publisher::Prepared batch;
        std::vector<std::size_t> lines;
    };
    std::optional<InFlight> in_flight;
    auto settle = [&](InFlight& f) {
        auto outcomes = publisher.finish(queue, f.batch);
        for (std::size_t i = 0; i < outcomes.size(); ++i) {
            switch (outcomes[i].status) {
                case PublishStatus::kAccepted:
                    ++report.published;
                    break;
                case PublishStatus::kDuplicate:
                    ++report.duplicates;
                    break;
                case PublishStatus::kRejected:
                    ++report.rejected;
                    if (report.first_rejected_line == 0) {
                        report.first_rejected_line = f.lines[i];
                        report.first_rejection = outcomes[i].error ? outcomes[i].error->what() : "";
                    }
                    break;
            }
        }
        progress.done += outcomes.size();
        if (options.on_progress) options.on_progress(progress);
    };
    std::vector<PublishRequest> chunk;
    std::vector<std::size_t> chunk_lines;
    chunk.reserve(options.chunk);
    auto flush = [&] {
        if (chunk.empty()) return;
        InFlight next{publisher.prepare(queue, chunk), std::move(chunk_lines)};
        publisher.send(next.batch);
        if (in_flight) settle(*in_flight);
        in_flight = std::move(next);
        chunk.clear();
        chunk_lines = {};
    };
    std::string line;
    std::size_t number = 0;
    const std::size_t max = max_line_bytes(limits);
    while (read_line(in, line, max, number + 1)) {
        ++number;
        if (blank(line) || bad_lines.count(number)) continue;
        chunk.push_back(parse_line(parser, line, limits, options));
        if (options.seal) options.seal(chunk.back());
        chunk_lines.push_back(number);
        if (chunk.size() >= options.chunk) flush();
    }
    flush();
    if (in_flight) settle(*in_flight);
    return report;
}

}  // namespace mq
