#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mq {

/// Optimal string alignment distance (Levenshtein plus swapping two neighbours), so
/// "queu" -> "queue" and "qeueu" -> "queue" are both small.
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` for a "did you mean" hint: within a distance of 1 for
/// short words and about a third of the length for longer ones, or a candidate that
/// `word` is a prefix of (at least 3 characters); case does not count. None when nothing is
/// close.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

}  // namespace mq
