#include "mq/config/api_settings.hpp"

#include "mq/config/setting_values.hpp"
#include "mq/error.hpp"

namespace mq {

namespace {

std::chrono::milliseconds millis(const std::string& name, const std::string& value,
                                 const std::string& source) {
    return std::chrono::milliseconds(setting_int(name, value, source, 1, 24LL * 3600 * 1000));
}

}  // namespace

const std::vector<std::string_view>& api_setting_names() {
    static const std::vector<std::string_view> names = {
        "MAX_CONNECTIONS",        "BLOCKING_QUEUE_LIMIT",
        "HEADER_TIMEOUT_MS",      "BODY_TIMEOUT_MS",
        "IDLE_TIMEOUT_MS",        "AUTH_FAILURE_LIMIT",
        "AUTH_FAILURE_WINDOW_MS", "TLS_CERT_FILE",
        "TLS_KEY_FILE",           "TLS_CA_FILE",
        "TLS_MIN_VERSION",        "TLS_HANDSHAKE_TIMEOUT_MS",
        "AUTH_FAILURE_DELAY_MS"};
    return names;
}

bool apply_api_setting(ApiSettings& s, const std::string& name, const std::string& value,
                       const std::string& source) {
    if (name == "MAX_CONNECTIONS")
        s.max_connections = setting_int(name, value, source, 0, 10000000);
    else if (name == "BLOCKING_QUEUE_LIMIT")
        s.blocking_queue_limit = setting_int(name, value, source, 1, 10000000);
    else if (name == "HEADER_TIMEOUT_MS")
        s.header_timeout = millis(name, value, source);
    else if (name == "BODY_TIMEOUT_MS")
        s.body_timeout = millis(name, value, source);
    else if (name == "IDLE_TIMEOUT_MS")
        s.idle_timeout = millis(name, value, source);
    else if (name == "AUTH_FAILURE_LIMIT")
        s.auth_failure_limit = setting_int(name, value, source, 0, 1000000);
    else if (name == "AUTH_FAILURE_WINDOW_MS")
        s.auth_failure_window = millis(name, value, source);
    else if (name == "AUTH_FAILURE_DELAY_MS")
        s.auth_failure_delay =
            std::chrono::milliseconds(setting_int(name, value, source, 0, 60000));
    else if (name == "TLS_CERT_FILE")
        s.tls_cert_file = value;
    else if (name == "TLS_KEY_FILE")
        s.tls_key_file = value;
    else if (name == "TLS_CA_FILE")
        s.tls_ca_file = value;
    else if (name == "TLS_MIN_VERSION") {
        if (value != "1.2" && value != "1.3")
            throw ValidationError(
                "TLS_MIN_VERSION=" + value + " (" + source + ") must be 1.2 or 1.3",
                {{"field", name}});
        s.tls_min_version = value;
    } else if (name == "TLS_HANDSHAKE_TIMEOUT_MS")
        s.tls_handshake_timeout = millis(name, value, source);
    else
        return false;
    return true;
}

}  // namespace mq
