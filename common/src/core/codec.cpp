#include "mq/core/codec.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <memory>

#include "mq/error.hpp"

namespace mq::codec {

namespace {

constexpr char kLowerHex[] = "0123456789abcdef";
constexpr char kUpperHex[] = "0123456789ABCDEF";
constexpr std::string_view kUrlAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const unsigned char* bytes_of(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool is_base64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

std::string digest(std::string_view data, const EVP_MD* md, const char* name) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) != 1)
        throw Error(ErrorCode::kInternal, std::string(name) + " failed (OpenSSL EVP_Digest)");
    return std::string(reinterpret_cast<const char*>(out.data()), len);
}

EVP_MAC* hmac_algorithm() {
    // Fetched once: EVP_MAC objects are reference-counted and safe to share between threads.
    static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (!mac) throw Error(ErrorCode::kInternal, "OpenSSL has no HMAC implementation");
    return mac;
}

struct MacCtxDeleter {
    void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};

}  // namespace

// ---- hex ---------------------------------------------------------------------------------

void append_hex_byte(std::string& out, unsigned char byte, bool uppercase) {
    const char* digits = uppercase ? kUpperHex : kLowerHex;
    out += digits[byte >> 4];
    out += digits[byte & 0x0F];
}

std::string hex_encode(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) append_hex_byte(out, c);
    return out;
}

std::optional<std::string> hex_decode(std::string_view text) {
    if (text.size() % 2 != 0) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 2);
    for (std::size_t i = 0; i < text.size(); i += 2) {
        int hi = hex_value(text[i]), lo = hex_value(text[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi << 4 | lo);
    }
    return out;
}

// ---- base64 ------------------------------------------------------------------------------

std::string base64_encode(std::string_view bytes) {
    // EVP_EncodeBlock writes 4 characters per started 3 bytes plus a NUL.
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes_of(bytes),
                            static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    if (text.empty()) return std::string();
    // EVP_DecodeBlock skips leading/trailing whitespace and accepts '=' anywhere in the last
    // quantum; check the shape first so one value has one text.
    std::size_t pad = text.back() == '=' ? (text[text.size() - 2] == '=' ? 2 : 1) : 0;
    for (std::size_t i = 0; i < text.size() - pad; ++i)
        if (!is_base64_char(text[i])) return std::nullopt;
    std::string out(text.size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes_of(text),
                            static_cast<int>(text.size()));
    if (n < 0 || static_cast<std::size_t>(n) < pad) return std::nullopt;
    // EVP_DecodeBlock counts padding as zero bytes.
    out.resize(static_cast<std::size_t>(n) - pad);
    return out;
}

std::string base64url_encode(std::string_view bytes) {
    std::string out = base64_encode(bytes);
    while (!out.empty() && out.back() == '=') out.pop_back();
    for (char& c : out) {
        if (c == '+')
            c = '-';
        else if (c == '/')
            c = '_';
    }
    return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
    if (text.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 4 * 3 + 2);
    unsigned acc = 0;
    int bits = 0;
    for (char c : text) {
        auto pos = kUrlAlphabet.find(c);
        if (pos == std::string_view::npos) return std::nullopt;
        acc = (acc << 6) | static_cast<unsigned>(pos);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) return std::nullopt;  // non-zero unused bits: a second text for one value
    return out;
}

// ---- digests -----------------------------------------------------------------------------

std::string sha256(std::string_view data) { return digest(data, EVP_sha256(), "SHA-256"); }

std::string sha256_hex(std::string_view data) { return hex_encode(sha256(data)); }

std::string sha1_hex(std::string_view data) {
    return hex_encode(digest(data, EVP_sha1(), "SHA-1"));
}

std::string hmac_sha256(std::string_view key, std::initializer_list<std::string_view> parts) {
    std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx(EVP_MAC_CTX_new(hmac_algorithm()));
    char digest_name[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
                           OSSL_PARAM_construct_end()};
    // An empty key is a valid HMAC key; OpenSSL wants a non-null pointer for it.
    static const unsigned char kEmpty = 0;
    const unsigned char* key_bytes = key.empty() ? &kEmpty : bytes_of(key);
    bool ok = ctx && EVP_MAC_init(ctx.get(), key_bytes, key.size(), params) == 1;
    for (auto part : parts) ok = ok && EVP_MAC_update(ctx.get(), bytes_of(part), part.size()) == 1;
    unsigned char out[EVP_MAX_MD_SIZE];
    std::size_t out_len = 0;
    ok = ok && EVP_MAC_final(ctx.get(), out, &out_len, sizeof out) == 1;
    if (!ok) throw Error(ErrorCode::kInternal, "HMAC-SHA256 failed in OpenSSL");
    return std::string(reinterpret_cast<const char*>(out), out_len);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    if (a.empty()) return true;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---- JSON --------------------------------------------------------------------------------

void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    while (p < end) {
        // A run of bytes that need nothing goes out in one append.
        const auto* run = p;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') ++p;
        out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
        if (p == end) break;
        unsigned char c = *p;
        if (c < 0x80) {
            switch (c) {
                case '"':
                    out += "\\\"";
                    break;
                case '\\':
                    out += "\\\\";
                    break;
                case '\n':
                    out += "\\n";
                    break;
                case '\r':
                    out += "\\r";
                    break;
                case '\t':
                    out += "\\t";
                    break;
                case '\b':
                    out += "\\b";
                    break;
                case '\f':
                    out += "\\f";
                    break;
                default:
                    out += "\\u00";
                    append_hex_byte(out, c);
            }
            ++p;
            continue;
        }
        // A UTF-8 sequence: copied when well-formed (no overlongs, surrogates or > U+10FFFF).
        std::size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                          : c >= 0xe0 && c <= 0xef ? 3
                          : c >= 0xf0 && c <= 0xf4 ? 4
                                                   : 0;
        bool ok = len > 0 && static_cast<std::size_t>(end - p) >= len;
        for (std::size_t i = 1; ok && i < len; ++i) ok = (p[i] & 0xc0) == 0x80;
        if (ok && len == 3) ok = !(c == 0xe0 && p[1] < 0xa0) && !(c == 0xed && p[1] >= 0xa0);
        if (ok && len == 4) ok = !(c == 0xf0 && p[1] < 0x90) && !(c == 0xf4 && p[1] >= 0x90);
        if (ok) {
            out.append(reinterpret_cast<const char*>(p), len);
            p += len;
        } else {
            out += "\xef\xbf\xbd";
            ++p;
        }
    }
    out.push_back('"');
}

std::string json_string(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    append_json_string(out, text);
    return out;
}

}  // namespace mq::codec
