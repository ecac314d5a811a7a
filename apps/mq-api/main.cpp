// mq-api: the REST API on port 3010. The server arrives with the API issue; for now it
// validates its flags and says so.
#include <CLI/CLI.hpp>
#include <iostream>

int main(int argc, char** argv) {
    CLI::App app{"mq-api: the mq REST API (port 3010)"};
    app.set_version_flag("--version", "mq-api 0.1.0");
    int port = 3010;
    app.add_option("-p,--port", port, "Listen port (PORT)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    }
    std::cerr << "mq-api: the REST server is not implemented yet\n";
    return 1;
}
