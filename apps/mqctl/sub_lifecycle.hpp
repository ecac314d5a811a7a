#pragma once

// The steps that keep a subscription's PostgreSQL row, its consumer groups in Redis and
// the running workers in step; shared by `mqctl sub` and `mqctl apply`.

#include <optional>
#include <string>

#include "context.hpp"
#include "mq/consume/subscription.hpp"
#include "mq/queue/catalog.hpp"

namespace mqctl {

/// A webhook needs a usable URL and an exec handler a command: the worker's own handler
/// parsers say what is wrong (ValidationError with the field), so mqctl refuses what every
/// worker would refuse later. Pull subscriptions have no handler settings to check.
void validate_handler_for_type(const mq::Subscription& s);

/// What creating a subscription did.
struct CreatedSubscription {
    mq::Subscription subscription;  ///< as stored (id, timestamps)
    int new_groups = 0;             ///< consumer groups created (others existed already)
};

/// Inserts the row, then creates the consumer group on every partition of `queue`; if
/// the groups cannot be created the row is removed again, so nothing half-exists.
/// Does not tell the workers (see tell_workers).
CreatedSubscription create_subscription(Context& ctx, const mq::Queue& queue,
                                        const mq::Subscription& s);

/// Destroys the consumer groups, then removes the row: if Redis fails, the row stays and
/// the same command finishes the job. Returns the queue (none if it is gone already).
/// Does not tell the workers.
std::optional<mq::Queue> delete_subscription(Context& ctx, const mq::Subscription& s);

/// PUBLISH `event` on the control channel once the change is stored. If Redis fails the
/// error says the change (`done`) is saved but running workers missed it.
void tell_workers(Context& ctx, const std::string& event, const mq::Subscription& s,
                  const std::string& done);

}  // namespace mqctl
