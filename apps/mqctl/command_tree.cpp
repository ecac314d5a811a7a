#include "command_tree.hpp"

#include "mq/core/suggest.hpp"
#include "mq/error.hpp"

namespace mqctl {

namespace {

const CLI::App* root_of(const CLI::App* app) {
    while (app->get_parent() != nullptr) app = app->get_parent();
    return app;
}

bool is_visible(const CLI::Option* opt) {
    return !opt->get_group().empty() && !opt->get_positional();
}

// The option `name` names at `app` or, since options fall through, at a parent.
const CLI::Option* find_option(const CLI::App* app, const std::string& name) {
    for (; app != nullptr; app = app->get_parent())
        if (const CLI::Option* opt = app->get_option_no_throw(name)) return opt;
    return nullptr;
}

std::string command_path(const CLI::App* app) {
    std::string path = app->get_name();
    for (const CLI::App* p = app->get_parent(); p != nullptr; p = p->get_parent())
        path = p->get_name() + " " + path;
    return path;
}

}  // namespace

std::vector<std::string> option_names(const CLI::Option* opt) {
    std::vector<std::string> out;
    for (const auto& s : opt->get_snames()) out.push_back("-" + s);
    for (const auto& l : opt->get_lnames()) out.push_back("--" + l);
    return out;
}

std::vector<const CLI::App*> visible_subcommands(const CLI::App* app) {
    std::vector<const CLI::App*> out;
    for (const CLI::App* sub : app->get_subcommands({}))
        if (!sub->get_group().empty() && !sub->get_name().empty()) out.push_back(sub);
    return out;
}

std::vector<const CLI::Option*> global_options(const CLI::App* app) {
    std::vector<const CLI::Option*> out;
    const CLI::App* root = root_of(app);
    if (root == app) return out;
    for (const CLI::Option* opt : root->get_options()) {
        if (!is_visible(opt) || opt->check_lname("version")) continue;
        bool shadowed = false;
        for (const auto& name : option_names(opt))
            if (app->get_option_no_throw(name) != nullptr) shadowed = true;
        if (!shadowed) out.push_back(opt);
    }
    return out;
}

std::string GlobalOptionsFormatter::make_footer(const CLI::App* app) const {
    std::string out;
    auto globals = global_options(app);
    if (!globals.empty())
        out += make_group("Global options (valid with every command)", false, globals).substr(1);
    std::string footer = CLI::Formatter::make_footer(app);
    if (!footer.empty()) out += (out.empty() ? "" : "\n") + footer;
    return out;
}

std::optional<std::string> unknown_command(const CLI::App& root, int argc,
                                           const char* const* argv) {
    const CLI::App* cur = &root;
    for (int i = 1; i < argc; ++i) {
        const std::string word = argv[i];
        if (word == "--") return std::nullopt;
        if (word.size() > 1 && word[0] == '-') {
            if (word.find('=') != std::string::npos) continue;        // --output=json
            const bool attached = word[1] != '-' && word.size() > 2;  // -n5
            const CLI::Option* opt = find_option(cur, attached ? word.substr(0, 2) : word);
            if (opt != nullptr && opt->get_expected_max() > 0 && opt->get_type_size_max() > 0 &&
                !attached)
                ++i;  // its value
            continue;
        }
        const auto subs = visible_subcommands(cur);
        const CLI::App* next = nullptr;
        for (const CLI::App* sub : cur->get_subcommands({}))
            if (sub->check_name(word)) next = sub;
        if (next != nullptr) {
            cur = next;
            continue;
        }
        // A word where a subcommand must come: a typo. Anywhere else it is an argument.
        // mqctl itself takes no arguments (its subcommand is optional only for
        // --print-config): a word there is always a command.
        if (subs.empty() || (cur != &root && cur->get_require_subcommand_min() == 0))
            return std::nullopt;
        std::vector<std::string> names;
        for (const CLI::App* sub : subs) names.push_back(sub->get_name());
        std::string text =
            "unknown command '" + mq::printable(word) + "' for '" + command_path(cur) + "'";
        if (auto near = mq::closest_match(word, names))
            text += "; did you mean '" + *near + "'?";
        else
            text += "; run '" + command_path(cur) + " --help' for the commands";
        return text;
    }
    return std::nullopt;
}

}  // namespace mqctl
