#pragma once

#include "mq/crypto/keyring.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/queue/queue.hpp"

namespace mq {

/// Seals `r.payload` with the keyring's current key and sets `r.encryption_key_id`, when
/// `q.encryption` is "aes-256-gcm"; does nothing for "none". Throws Error(kInternal)
/// "queue requires encryption but no keyring is configured (MQ_KEYRING_FILE)" when the
/// keyring is empty, so plaintext never reaches an encrypted queue's stream.
void seal_request(PublishRequest& r, const Keyring& keyring, const Queue& q);

}  // namespace mq
