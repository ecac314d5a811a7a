// mq-worker: long-running consumer. Delivery (subscriptions, handlers, retries) arrives
// with the worker issue; for now it validates its flags and says so.
#include <CLI/CLI.hpp>
#include <iostream>

int main(int argc, char** argv) {
    CLI::App app{"mq-worker: deliver messages of subscriptions to webhook and exec handlers"};
    app.set_version_flag("--version", "mq-worker 0.1.0");
    std::string config;
    app.add_option("-c,--config", config, "Worker YAML file")->required();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    }
    std::cerr << "mq-worker: message delivery is not implemented yet\n";
    return 1;
}
