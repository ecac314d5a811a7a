#include "sub_lifecycle.hpp"

#include "mq/consume/subscription_lifecycle.hpp"

namespace mqctl {

void validate_handler_for_type(const mq::Subscription& s) { mq::validate_handler_for_type(s); }

CreatedSubscription create_subscription(Context& ctx, const mq::Queue& queue,
                                        const mq::Subscription& s) {
    auto created = mq::create_subscription(ctx.db(), ctx.redis(), ctx.keys(), queue, s);
    return {std::move(created.subscription), created.new_groups};
}

std::optional<mq::Queue> delete_subscription(Context& ctx, const mq::Subscription& s) {
    return mq::delete_subscription(ctx.db(), ctx.redis(), ctx.keys(), s);
}

void tell_workers(Context& ctx, const std::string& event, const mq::Subscription& s,
                  const std::string& done) {
    mq::tell_workers(ctx.redis(), ctx.keys(), event, s, done);
}

}  // namespace mqctl
