#include "settings_flags.hpp"

#include <iostream>

#include "mq/core/suggest.hpp"

namespace mqcli {

void add_setting_flags(CLI::App& app, mq::Binary binary, ConfigOptions& options) {
    for (const auto& spec : mq::setting_specs()) {
        if (!spec.has_flag_in(binary)) continue;
        const std::string help = spec.description + " (" + spec.name + ", default " +
                                 (spec.default_value.empty() ? "unset" : spec.default_value) + ")";
        const std::string where = "flag " + spec.long_flag();
        auto* layer = &options.flags;
        const std::string name = spec.name;
        if (spec.is_bool) {
            app.add_flag_callback(
                spec.flag,
                [layer, name, where] {
                    layer->entries.push_back({name, "true", where});
                },
                help);
        } else {
            app.add_option_function<std::string>(
                   spec.flag,
                   [layer, name, where](const std::string& value) {
                       layer->entries.push_back({name, value, where});
                   },
                   help)
                ->type_name(spec.type.find(' ') == std::string::npos ? "TEXT" : "VALUE");
        }
    }
    app.add_flag("--print-config", options.print,
                 "Print every effective setting with its source (default, file, env, flag), "
                 "secrets masked, and exit");
    app.add_option("-o,--output", options.output, "With --print-config: table or json")
        ->check(CLI::IsMember({"table", "json"}));
    app.add_flag("--print-config-doc", options.print_doc,
                 "Print docs/config.md (every setting of every program) and exit");
}

int exit_for_parse_error(CLI::App& app, const CLI::ParseError& error) {
    int rc = app.exit(error);
    if (rc == 0) return 0;
    if (dynamic_cast<const CLI::ExtrasError*>(&error)) {
        std::vector<std::string> known;
        for (const CLI::Option* opt : app.get_options())
            for (const auto& l : opt->get_lnames()) known.push_back("--" + l);
        for (const auto& extra : app.remaining()) {
            if (extra.rfind("--", 0) != 0) continue;
            std::string word = extra.substr(0, extra.find('='));
            if (auto best = mq::closest_match(word, known)) {
                std::cerr << "unknown option '" << word << "' (did you mean '" << *best << "'?)\n";
                break;
            }
        }
    }
    return 2;
}

}  // namespace mqcli
