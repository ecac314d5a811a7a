#include "mq/crypto/keyring.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <memory>

#include "mq/config/yaml_json.hpp"
#include "mq/core/codec.hpp"
#include "mq/error.hpp"

namespace mq {

namespace {

constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;
static_assert(kSealOverhead == kNonceBytes + kTagBytes);

struct CipherCtxDeleter {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

CipherCtx new_ctx() {
    CipherCtx ctx(EVP_CIPHER_CTX_new());
    if (!ctx) throw Error(ErrorCode::kInternal, "cannot allocate an OpenSSL cipher context");
    return ctx;
}

const unsigned char* bytes(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

// Strict standard base64 (with padding); whitespace is ignored so keys may wrap.
std::optional<std::string> decode_base64(std::string_view text) {
    std::string in;
    for (char c : text)
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') in += c;
    if (in.empty()) return std::nullopt;
    return codec::base64_decode(in);
}

std::string id_of(const nlohmann::json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_integer()) return v.dump();  // `id: 1` in YAML
    return {};
}

}  // namespace

Keyring Keyring::from_json(const nlohmann::json& doc, const std::string& source) {
    auto bad = [&](const std::string& what) {
        return ValidationError("keyring " + source + ": " + what, {{"file", source}});
    };
    if (!doc.is_object()) throw bad("expected a mapping with 'current' and 'keys'");
    for (const auto& [k, v] : doc.items())
        if (k != "current" && k != "keys")
            throw bad("unknown field '" + k + "' (expected current, keys)");
    auto keys = doc.find("keys");
    if (keys == doc.end() || !keys->is_array() || keys->empty())
        throw bad("'keys' must be a non-empty list of {id, key}");
    Keyring ring;
    std::size_t i = 0;
    for (const auto& entry : *keys) {
        std::string where = "keys[" + std::to_string(i++) + "]";
        if (!entry.is_object() || !entry.contains("id") || !entry.contains("key"))
            throw bad(where + " must have 'id' and 'key'");
        std::string id = id_of(entry["id"]);
        if (id.empty() || id.size() > 64)
            throw bad(where + ".id must be a string of 1-64 characters");
        if (!entry["key"].is_string()) throw bad(where + ".key must be a base64 string");
        auto raw = decode_base64(entry["key"].get<std::string>());
        if (!raw) throw bad(where + " (id '" + id + "'): key is not valid base64");
        if (raw->size() != kKeyBytes)
            throw bad(where + " (id '" + id +
                      "'): key must be 32 bytes (base64 of 32 random bytes, e.g. "
                      "`openssl rand -base64 32`), got " +
                      std::to_string(raw->size()));
        if (!ring.keys_.emplace(id, std::move(*raw)).second)
            throw bad("duplicate key id '" + id + "'");
    }
    auto current = doc.find("current");
    if (current == doc.end())
        throw bad("'current' (the id of the key new messages use) is missing");
    ring.current_ = id_of(*current);
    if (!ring.keys_.count(ring.current_))
        throw bad("current key '" + current->dump() + "' is not one of the listed keys");
    return ring;
}

Keyring Keyring::load(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        throw ValidationError("keyring " + path + ": cannot read the file (MQ_KEYRING_FILE)",
                              {{"file", path}});
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        spdlog::warn("keyring {} is readable by group or others (mode {:o}); chmod 600 it", path,
                     st.st_mode & 0777);
    YamlDocument doc = load_yaml(path);  // JSON is YAML too; errors carry file:line
    return from_json(doc.json, path);
}

std::string Keyring::encrypt(std::string_view plaintext, std::string_view aad) const {
    auto key = keys_.find(current_);
    if (key == keys_.end())
        throw Error(ErrorCode::kInternal, "cannot encrypt: the keyring is empty");
    std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
    unsigned char* nonce = bytes(out);
    if (RAND_bytes(nonce, static_cast<int>(kNonceBytes)) != 1)
        throw Error(ErrorCode::kInternal, "cannot encrypt: no random bytes from OpenSSL");
    auto ctx = new_ctx();
    int len = 0;
    bool ok = EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes),
                                  nullptr) == 1 &&
              EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key->second), nonce) == 1 &&
              EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad),
                                static_cast<int>(aad.size())) == 1 &&
              EVP_EncryptUpdate(ctx.get(), nonce + kNonceBytes, &len, bytes(plaintext),
                                static_cast<int>(plaintext.size())) == 1 &&
              EVP_EncryptFinal_ex(ctx.get(), nonce + kNonceBytes + len, &len) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes),
                                  nonce + kNonceBytes + plaintext.size()) == 1;
    if (!ok) throw Error(ErrorCode::kInternal, "cannot encrypt: OpenSSL AES-256-GCM failed");
    return out;
}

std::string Keyring::decrypt(std::string_view sealed, const std::string& key_id,
                             std::string_view aad) const {
    auto key = keys_.find(key_id);
    if (key == keys_.end())
        throw Error(
            ErrorCode::kInternal,
            "cannot decrypt: unknown key id '" + printable(key_id) +
                "'; keep retired keys in the keyring (MQ_KEYRING_FILE) until no entry uses them",
            {{"key_id", printable(key_id)}});
    if (sealed.size() < kNonceBytes + kTagBytes)
        throw Error(ErrorCode::kInternal,
                    "cannot decrypt: authentication failed (sealed payload too short)");
    const std::size_t n = sealed.size() - kNonceBytes - kTagBytes;
    std::string out(n, '\0');
    std::string tag(sealed.substr(kNonceBytes + n));
    auto ctx = new_ctx();
    int len = 0;
    bool ok =
        EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes),
                            nullptr) == 1 &&
        EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key->second), bytes(sealed)) == 1 &&
        EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) ==
            1 &&
        EVP_DecryptUpdate(ctx.get(), bytes(out), &len, bytes(sealed) + kNonceBytes,
                          static_cast<int>(n)) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes),
                            tag.data()) == 1;
    // The tag is checked by the final call: only then may the plaintext be used.
    if (!ok || EVP_DecryptFinal_ex(ctx.get(), bytes(out) + len, &len) != 1)
        throw Error(
            ErrorCode::kInternal,
            "cannot decrypt: authentication failed (wrong key, altered bytes, or an entry of "
            "another queue)",
            {{"key_id", key_id}});
    return out;
}

std::string payload_aad(const Queue& q) { return q.tenant + "/" + q.name; }

std::string open_payload(const Message& m, const Keyring& keyring, const Queue& q) {
    if (m.encryption_key_id.empty()) return m.payload;
    return keyring.decrypt(m.payload, m.encryption_key_id, payload_aad(q));
}

}  // namespace mq
