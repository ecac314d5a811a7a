#pragma once

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "mq/core/message.hpp"
#include "mq/queue/queue.hpp"

namespace mq {

/// Bytes AES-256-GCM sealing adds to a payload (12-byte nonce + 16-byte tag); a sealed
/// payload may exceed MAX_MESSAGE_SIZE by this much.
constexpr std::size_t kSealOverhead = 12 + 16;

/// Keys for payload encryption at rest (AES-256-GCM), by id, with the one new messages
/// are sealed with. Old keys stay in the file so entries sealed before a rotation still
/// open. Immutable after loading, so one Keyring may be shared by threads.
class Keyring {
  public:
    Keyring() = default;

    /// Reads a YAML or JSON file: {"current": "k2", "keys": [{"id": "k1", "key": "<base64
    /// of 32 bytes>"}, ...]}. Throws ValidationError naming the file and the problem
    /// (unreadable, syntax, missing fields, key not 32 bytes, unknown current). A file
    /// that group or others may read is loaded with a warning in the log.
    static Keyring load(const std::string& path);
    /// The same document already parsed; `source` names it in error messages.
    static Keyring from_json(const nlohmann::json& doc, const std::string& source = "keyring");

    bool empty() const { return keys_.empty(); }
    const std::string& current_id() const { return current_; }
    bool has_key(const std::string& id) const { return keys_.count(id) != 0; }

    /// Seals with the current key: nonce(12) || ciphertext || tag(16). The nonce is random
    /// (RAND_bytes) per call. `aad` is authenticated, not stored: the API and mqctl pass
    /// "<tenant>/<queue>", so an entry copied into another queue does not open.
    /// Throws Error(kInternal) when the keyring is empty.
    std::string encrypt(std::string_view plaintext, std::string_view aad) const;
    /// Opens what encrypt() sealed with key `key_id`. Throws Error(kInternal, "cannot
    /// decrypt: unknown key id ...") or Error(kInternal, "cannot decrypt: authentication
    /// failed ...") for a wrong key, wrong aad or altered bytes.
    std::string decrypt(std::string_view sealed, const std::string& key_id,
                        std::string_view aad) const;

  private:
    std::map<std::string, std::string> keys_;  ///< id -> 32 raw bytes
    std::string current_;
};

/// The additional authenticated data of a queue's sealed payloads: "<tenant>/<queue>".
std::string payload_aad(const Queue& q);

/// The payload a handler or client should see: `m.payload` as is when the entry carries
/// no key id, else decrypted. Throws as Keyring::decrypt (or when the keyring is empty).
std::string open_payload(const Message& m, const Keyring& keyring, const Queue& q);

}  // namespace mq
