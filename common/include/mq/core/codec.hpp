#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

/// Small byte codecs used across mq, in one place: hex, base64 (standard and url-safe),
/// SHA-1/SHA-256, HMAC-SHA256, constant-time comparison and JSON string escaping.
/// Digests and base64 run on OpenSSL; decoders are strict and return nullopt on
/// malformed input instead of guessing.
namespace mq::codec {

// ---- hex ---------------------------------------------------------------------------------

/// Lowercase hex of `bytes` (two digits per byte).
std::string hex_encode(std::string_view bytes);
/// Appends the two hex digits of one byte (lowercase, or uppercase for percent-encoding).
void append_hex_byte(std::string& out, unsigned char byte, bool uppercase = false);
/// Bytes of a hex text (either case). nullopt on odd length or a non-hex character.
std::optional<std::string> hex_decode(std::string_view text);

// ---- base64 ------------------------------------------------------------------------------

/// Standard base64 (RFC 4648 section 4) with '=' padding.
std::string base64_encode(std::string_view bytes);
/// Strict standard base64 with padding: length a multiple of 4, only the alphabet, '=' only
/// as the last one or two characters. "" decodes to "". nullopt when malformed.
std::optional<std::string> base64_decode(std::string_view text);
/// URL-safe base64 (RFC 4648 section 5: '-' and '_') without padding.
std::string base64url_encode(std::string_view bytes);
/// Strict URL-safe base64 without padding; unused trailing bits must be zero, so every value
/// has exactly one text. nullopt when malformed.
std::optional<std::string> base64url_decode(std::string_view text);

// ---- digests -----------------------------------------------------------------------------

/// SHA-256 digest of `data` (32 raw bytes).
std::string sha256(std::string_view data);
/// Lowercase hex of the SHA-256 digest (64 characters).
std::string sha256_hex(std::string_view data);
/// Lowercase hex of the SHA-1 digest (Redis script ids for EVALSHA).
std::string sha1_hex(std::string_view data);
/// HMAC-SHA256 of the concatenation of `parts` under `key` (32 raw bytes). The parts are fed
/// in order without being copied into one buffer.
std::string hmac_sha256(std::string_view key, std::initializer_list<std::string_view> parts);
inline std::string hmac_sha256(std::string_view key, std::string_view data) {
    return hmac_sha256(key, {data});
}

/// True when `a` and `b` are equal, in time that depends only on their lengths (for MACs
/// and secrets; different lengths answer false at once).
bool constant_time_equal(std::string_view a, std::string_view b);

// ---- JSON --------------------------------------------------------------------------------

/// Appends `text` as a JSON string literal: quotes, backslashes and control characters
/// escaped, well-formed UTF-8 copied, each byte of an invalid UTF-8 sequence replaced by
/// U+FFFD, so the output is always valid JSON.
void append_json_string(std::string& out, std::string_view text);
/// `text` as a JSON string literal (see append_json_string).
std::string json_string(std::string_view text);

}  // namespace mq::codec
