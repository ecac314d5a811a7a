#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "mq/publish/publisher.hpp"

namespace mq {

/// A line of a JSON-lines batch that could not be used.
struct BatchLineError {
    std::size_t line = 0;
    std::string message;
};

struct BatchProgress {
    std::size_t done = 0;   ///< lines handled so far (published, duplicate or rejected)
    std::size_t total = 0;  ///< valid lines in the input
};

struct BatchOptions {
    /// Publish the valid lines and report the bad ones, instead of refusing the batch.
    bool skip_invalid = false;
    /// Messages sent per pipelined round trip.
    std::size_t chunk = 2000;
    /// Called after each round trip.
    std::function<void(const BatchProgress&)> on_progress;
    /// The queue's own rules for each message. `check` runs in the first pass (a payload
    /// that fails its schema is a bad line: it refuses the batch, or is skipped with
    /// skip_invalid); `seal` runs in the second, just before the message is sent
    /// (encryption). Either throws mq::Error.
    std::function<void(const PublishRequest&)> check;
    std::function<void(PublishRequest&)> seal;
};

struct BatchReport {
    std::size_t lines = 0;  ///< non-blank lines read
    std::size_t published = 0;
    std::size_t duplicates = 0;
    std::size_t rejected = 0;             ///< refused by the queue (e.g. full)
    std::size_t skipped = 0;              ///< invalid lines left out (skip_invalid)
    std::size_t first_rejected_line = 0;  ///< 0 when none
    std::string first_rejection;          ///< why the first one was refused
    std::vector<BatchLineError> invalid;  ///< at most 100, in line order
};

/// The first pass of publish_json_lines, without Redis: parses and validates every line of
/// `in` (copying each line to `spool` when given), counting non-blank lines in
/// `report.lines` and recording bad ones in `report.invalid`. Returns the numbers of the
/// bad lines (all of them; `report.invalid` keeps the first 100).
std::set<std::size_t> check_json_lines(std::istream& in, const PublishLimits& limits,
                                       const BatchOptions& options, BatchReport& report,
                                       std::ostream* spool = nullptr);

/// Throws ValidationError (field "batch") when `path` is a directory or cannot be read;
/// `-` (standard input) always passes. Needs no backend, so callers check before connecting.
void check_batch_source(const std::string& path);

/// Publishes a JSON-lines file (`-` is standard input) in two passes: the first parses and
/// validates every line, so a malformed line refuses the whole batch before anything is
/// published (ValidationError naming the line) unless `skip_invalid`; the second
/// publishes in pipelined chunks. Standard input is spooled to a temporary file during
/// the first pass, so memory stays flat for any input size.
BatchReport publish_json_lines(Publisher& publisher, const Queue& queue, const std::string& path,
                               const PublishLimits& limits, const BatchOptions& options);

}  // namespace mq
