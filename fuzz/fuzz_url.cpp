// URLs from configuration and tenants: Redis URLs, PostgreSQL URLs (only ever described
// in messages, never parsed further by us) and webhook handler URLs.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mq/deliver/webhook.hpp"
#include "mq/error.hpp"
#include "mq/pg/database.hpp"
#include "mq/redis/client.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        mq::redis::Endpoint e = mq::redis::parse_url(text);
        std::string d = e.describe();
        // (Unless the host itself happens to contain the same text.)
        if (e.password.size() > 3 && d.find(e.password) != d.npos &&
            e.host.find(e.password) == std::string::npos)
            __builtin_trap();  // a password must never reach a message
        if (e.port < 1 || e.port > 65535 || e.db < 0) __builtin_trap();
    } catch (const mq::Error&) {
    }
    std::string described = mq::pg::describe_url(text);
    (void)described;
    try {
        nlohmann::json handler = {{"url", std::string(text)}};
        mq::WebhookConfig c = mq::webhook_config_from_json(handler);
        mq::validate(c);
    } catch (const mq::Error&) {
    }
    return 0;
}
