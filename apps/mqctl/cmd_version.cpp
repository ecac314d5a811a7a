// mqctl version: the client's version (mq::kVersion, from CMake's project()), and with
// -o json|yaml also the Redis and PostgreSQL servers' versions when they answer within a
// short timeout. It never fails because a backend is down: the server field then says why.
#include <cstdlib>
#include <iostream>

#include "commands.hpp"
#include "mq/core/version.hpp"
#include "mq/pg/server_version.hpp"
#include "mq/redis/server_version.hpp"
#include "output.hpp"

namespace mqctl {

namespace {

constexpr std::chrono::milliseconds kProbeTimeout{1500};

template <class Probe>
nlohmann::json probe(Probe&& ask) {
    try {
        return {{"version", ask()}};
    } catch (const std::exception& e) {
        return {{"version", nullptr}, {"error", e.what()}};
    }
}

nlohmann::json server_versions(Context& ctx) {
    nlohmann::json out = nlohmann::json::object();
    const mq::Config* config = nullptr;
    try {
        config = &ctx.config();
    } catch (const std::exception& e) {
        out["error"] = e.what();
        return out;
    }
    out["redis"] = probe([&] {
        mq::redis::ConnectOptions options;
        options.connect_timeout = kProbeTimeout;
        options.command_timeout = kProbeTimeout;
        mq::redis::Connection redis(mq::redis::endpoint_from_config(*config), options);
        return mq::redis::server_version(redis);
    });
    out["postgresql"] = probe([&] {
        // libpq's connect timeout (whole seconds, at least 2) unless the URL sets its own.
        ::setenv("PGCONNECT_TIMEOUT", "2", 0);
        mq::pg::Database db(config->database_url);
        return mq::pg::server_version(db);
    });
    return out;
}

}  // namespace

void setup_version(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand(
        "version",
        "Print mqctl's version; with -o json|yaml also the servers' (Redis, PostgreSQL)");
    cmd->callback([&ctx] {
        if (!ctx.json()) {
            std::cout << "mqctl " << mq::kVersion << '\n';
            return;
        }
        print_json({{"client", {{"name", "mqctl"}, {"version", mq::kVersion}}},
                    {"server", server_versions(ctx)}});
    });
}

}  // namespace mqctl
