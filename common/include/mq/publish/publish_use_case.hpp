#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mq/crypto/keyring.hpp"
#include "mq/error.hpp"
#include "mq/publish/batch_file.hpp"
#include "mq/publish/publisher.hpp"
#include "mq/queue/payload_schema.hpp"
#include "mq/queue/queue.hpp"

namespace mq {

class PublishQuota;  // mq/auth/quota.hpp: only its take() and rate() are used, in the .cpp

/// The requests of a publish that passed admission, ready for Publisher::publish_batch /
/// prepare() or PublishPipeline::submit, and why the others were refused.
struct AdmittedBatch {
    std::vector<PublishRequest> accepted;       ///< checked and sealed
    std::vector<std::size_t> index;             ///< accepted[i] was request index[i]
    std::vector<std::optional<Error>> refused;  ///< per original request; set when refused
};

/// The one publish use case: every path that stores a message (mq-api's publish and internal
/// routes, `mqctl publish` single and --batch, dead-letter replay from mqctl and the API)
/// admits it here before Redis. Admission is, in this order: the tenant's quota (once per
/// call), the limits (payload size, key, headers, delay), the queue's current JSON Schema
/// (checked on the plaintext), and sealing for an encrypted queue. It does no I/O, so the
/// synchronous Publisher and mq-api's asynchronous pipeline share it and the hot path pays
/// one pass over the requests. Thread-safe when the schema cache is (PayloadSchemaCache is).
class PublishUseCase {
  public:
    /// `keyring` may be empty (then an encrypted queue refuses publishes); `quota` null
    /// means no quota (mqctl: the operator is not rate-limited); it must outlive this.
    PublishUseCase(PublishLimits limits, std::shared_ptr<const Keyring> keyring,
                   std::shared_ptr<PayloadSchemaCache> schemas, PublishQuota* quota = nullptr);

    const PublishLimits& limits() const { return limits_; }
    const Keyring& keyring() const { return *keyring_; }

    /// Throws Error(kQuotaExceeded, retryAfter) when the queue's tenant may not publish `n`
    /// messages now.
    void take_quota(const Queue& queue, std::size_t n) const;

    /// Limits and schema for an unsealed request. Throws ValidationError,
    /// Error(kPayloadTooLarge) or Error(kSchemaValidation).
    void check(const Queue& queue, const PublishRequest& request) const;
    /// Seals the payload for an encrypted queue (no-op otherwise). Throws Error(kInternal)
    /// when the queue needs a key and the keyring has none.
    void seal(const Queue& queue, PublishRequest& request) const;
    /// check() then seal(): a single publish.
    void admit(const Queue& queue, PublishRequest& request) const;

    /// Quota for all (unless `charge_quota` is false: the platform's internal routes), then
    /// check() and seal() each request not already refused (`refused`: per request, an
    /// error found while parsing; may be empty). With `partial` (a batch) a bad request is
    /// refused alone; without it the first error is thrown.
    AdmittedBatch admit_all(const Queue& queue, std::vector<PublishRequest> requests,
                            std::vector<std::optional<Error>> refused, bool partial,
                            bool charge_quota = true) const;

    /// Fills `options.check` and `options.seal` so publish_json_lines admits every line here.
    void attach(const Queue& queue, BatchOptions& options) const;

    /// A stored message published again to `target` (dead-letter replay): the payload is
    /// opened with the keyring for `from` when it was sealed, then admitted for `target`
    /// like a new publish (its current schema, its own seal), so a message moved to another
    /// encrypted queue opens there. Same key, headers, content type and trace id, plus
    /// header mq-replayed-from: <old message id>. Throws as admit(), or Error(kInternal)
    /// "cannot decrypt..." when the keyring cannot open the payload.
    PublishRequest republish_request(const Queue& from, const Message& message,
                                     const Queue& target) const;

  private:
    PublishLimits limits_;
    std::shared_ptr<const Keyring> keyring_;
    std::shared_ptr<PayloadSchemaCache> schemas_;
    PublishQuota* quota_ = nullptr;
};

/// The keyring an operator's command needs: `path` loaded when one of `queues` is encrypted
/// and a path is given, else an empty keyring (publishing to an encrypted queue then fails
/// with a clear error). Throws ValidationError when the file cannot be read.
std::shared_ptr<const Keyring> keyring_for(const std::string& path,
                                           const std::vector<const Queue*>& queues);

}  // namespace mq
