#include "mq/publish/batch_file.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <unordered_set>

#include <unistd.h>

namespace mq {

namespace {

constexpr std::size_t kMaxReportedErrors = 100;

bool blank(const std::string& line) {
    return line.find_first_not_of(" \t\r") == std::string::npos;
}

// Parses one line into a request; throws ValidationError/Error describing the problem.
PublishRequest parse_line(const std::string& line, const PublishLimits& limits) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
        std::string what = e.what();
        // "[json.exception.parse_error.101] parse error at line 1, column 5: ..." -> tail
        auto pos = what.find("column");
        throw ValidationError("malformed JSON" +
                              (pos == std::string::npos ? std::string() : " at " + what.substr(pos)));
    }
    PublishRequest r = parse_publish_request(j);
    validate(r, limits);
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

BatchReport publish_json_lines(Publisher& publisher, const Queue& queue, const std::string& path,
                               const PublishLimits& limits, const BatchOptions& options) {
    BatchReport report;
    TempFile spool;
    std::string source = path;
    std::unordered_set<std::size_t> bad_lines;

    // Pass 1: validate every line (and spool standard input).
    {
        std::ifstream file;
        std::ofstream out;
        std::istream* in = &std::cin;
        if (path != "-") {
            file.open(path, std::ios::binary);
            if (!file) throw ValidationError("cannot read batch file '" + path + "'");
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
        std::string line;
        std::size_t number = 0;
        while (std::getline(*in, line)) {
            ++number;
            if (out.is_open()) out << line << '\n';
            if (blank(line)) continue;
            ++report.lines;
            try {
                parse_line(line, limits);
            } catch (const Error& e) {
                bad_lines.insert(number);
                if (report.invalid.size() < kMaxReportedErrors)
                    report.invalid.push_back({number, e.what()});
            }
        }
        if (out.is_open()) {
            out.close();
            if (!out) throw Error(ErrorCode::kInternal, "cannot spool standard input to " + source);
        }
    }
    if (!bad_lines.empty() && !options.skip_invalid) {
        const auto& first = report.invalid.front();
        nlohmann::json lines = nlohmann::json::array();
        for (const auto& e : report.invalid) lines.push_back({{"line", e.line}, {"error", e.message}});
        std::string more = bad_lines.size() > 1
                               ? " (and " + std::to_string(bad_lines.size() - 1) + " more bad lines)"
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
    std::vector<PublishRequest> chunk;
    std::vector<std::size_t> chunk_lines;
    chunk.reserve(options.chunk);
    auto flush = [&] {
        if (chunk.empty()) return;
        auto outcomes = publisher.publish_batch(queue, chunk);
        for (std::size_t i = 0; i < outcomes.size(); ++i) {
            switch (outcomes[i].status) {
                case PublishStatus::kAccepted: ++report.published; break;
                case PublishStatus::kDuplicate: ++report.duplicates; break;
                case PublishStatus::kRejected:
                    ++report.rejected;
                    if (report.first_rejected_line == 0) {
                        report.first_rejected_line = chunk_lines[i];
                        report.first_rejection = outcomes[i].error ? outcomes[i].error->what() : "";
                    }
                    break;
            }
        }
        progress.done += chunk.size();
        chunk.clear();
        chunk_lines.clear();
        if (options.on_progress) options.on_progress(progress);
    };
    std::string line;
    std::size_t number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (blank(line) || bad_lines.count(number)) continue;
        chunk.push_back(parse_line(line, limits));
        chunk_lines.push_back(number);
        if (chunk.size() >= options.chunk) flush();
    }
    flush();
    return report;
}

}  // namespace mq
