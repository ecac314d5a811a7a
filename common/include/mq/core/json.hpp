#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace mq {

/// Nesting refused by parse_json: deep enough for any real document, shallow enough that
/// recursive code over the result (dump, valijson, our walkers) cannot run out of stack.
inline constexpr std::size_t kMaxJsonDepth = 64;

/// Bounds for parse_json.
struct JsonLimits {
    std::size_t max_depth = kMaxJsonDepth;  ///< objects and arrays nested deeper are refused
    std::size_t max_bytes = 0;              ///< 0: no size limit (the caller bounded the read)
};

/// The one parser for untrusted JSON (API bodies, mqctl files and flags, batch lines):
/// nlohmann's non-recursive SAX parser building the value, refusing nesting deeper than
/// `limits.max_depth` before it is built, numbers out of range (1e400), invalid UTF-8 and
/// trailing garbage. Throws ValidationError whose message names `what` (e.g. "request
/// body", "schema file 'x.json'") and the field being read ("messages[2].payload"), with
/// details {"field": <path or what>}.
nlohmann::json parse_json(std::string_view text, std::string_view what = "JSON",
                          const JsonLimits& limits = {});

/// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past
/// U+10FFFF): the test for text that will be stored as PostgreSQL text or JSON.
bool is_valid_utf8(std::string_view text);
/// Bytes of the well-formed UTF-8 sequence starting at text[at] (1 for ASCII), or 0 when
/// none starts there (at < text.size()).
std::size_t utf8_sequence_length(std::string_view text, std::size_t at);

/// `key` as one JSON Pointer token (RFC 6901: "~" as "~0", "/" as "~1").
std::string json_pointer_token(std::string_view key);

}  // namespace mq
