#include "mq/publish/sealing.hpp"

#include "mq/error.hpp"

namespace mq {

void seal_request(PublishRequest& r, const Keyring& keyring, const Queue& q) {
    if (q.encryption == "none" || !r.encryption_key_id.empty())
        return;  // not wanted, or sealed already
    if (q.encryption != "aes-256-gcm")
        throw Error(ErrorCode::kInternal,
                    "queue '" + q.name + "' has unknown encryption '" + q.encryption + "'");
    if (keyring.empty())
        throw Error(ErrorCode::kInternal,
                    "queue '" + q.name +
                        "' requires encryption but no keyring is configured (MQ_KEYRING_FILE)",
                    {{"queue", q.name}});
    r.payload = keyring.encrypt(r.payload, payload_aad(q));
    r.encryption_key_id = keyring.current_id();
}

}  // namespace mq
