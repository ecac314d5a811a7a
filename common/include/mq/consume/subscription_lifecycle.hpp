#pragma once

#include <optional>
#include <string>

#include "mq/consume/subscription.hpp"
#include "mq/core/keys.hpp"
#include "mq/deliver/destination_policy.hpp"
#include "mq/pg/database.hpp"
#include "mq/queue/queue.hpp"
#include "mq/redis/client.hpp"

namespace mq {

/// The steps that keep a subscription's PostgreSQL row, its consumer groups in Redis and
/// the running workers in step; shared by mqctl (`sub`, `apply`) and mq-api.

/// A webhook needs a usable URL and an exec handler a command: the worker's own handler
/// parsers say what is wrong (ValidationError with the field), so nothing is stored that
/// every worker would refuse later. Pull subscriptions have no handler settings.
void validate_handler_for_type(const Subscription& s);

/// The handler trust boundary for a write through the API (docs/security.md): `want` is
/// the subscription as it would be stored, `current` the stored one for an update (null
/// for a create). Throws Error(kHandlerForbidden) when `want` or `current` has an
/// operator-only handler (is_operator_only: exec, log to a file): a token may pause,
/// resume or delete such a subscription, nothing else. When `want` is a webhook whose type
/// or handler is new, checks its URL with `policy` (Error(kWebhookDestinationForbidden)).
void authorize_api_handler(const Subscription& want, const Subscription* current,
                           const DestinationPolicy& policy);

struct CreatedSubscription {
    Subscription subscription;  ///< as stored (id, timestamps)
    int new_groups = 0;         ///< consumer groups created (others existed already)
};

/// Inserts the row and, before it commits, creates the consumer group on every partition
/// of `queue` (the queue of queue_owner(s), already authorized by the caller); if the
/// groups cannot be created the row and its audit row roll back, so nothing half-exists.
/// Does not tell the workers (see tell_workers).
CreatedSubscription create_subscription(pg::Database& db, redis::Connection& redis,
                                        const KeyLayout& keys, const Queue& queue,
                                        const Subscription& s);

/// Destroys the consumer groups, then removes the row: if Redis fails, the row stays and
/// the same call finishes the job. Returns the queue (none if it is gone already).
std::optional<Queue> delete_subscription(pg::Database& db, redis::Connection& redis,
                                         const KeyLayout& keys, const Subscription& s);

/// PUBLISH `event` on the control channel once the change is stored. If Redis fails the
/// error says the change (`done`) is saved but running workers missed it.
void tell_workers(redis::Connection& redis, const KeyLayout& keys, const std::string& event,
                  const Subscription& s, const std::string& done);

}  // namespace mq
