// mqctl as a kubectl user expects it (issue 12, item 10): global options in every help,
// "did you mean" at every level, -o yaml, version, contexts with their precedence, "n" at
// a prompt, apply --dry-run with conflicts, completion generated from the command tree.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "mq/config/yaml_json.hpp"
#include "mq/core/version.hpp"
#include "mqctl_shell.hpp"

using Catch::Matchers::Contains;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

/// A temporary HOME-like directory, removed when the scope ends.
class TempDir {
  public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "mqctl-kubectl-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string path(const std::string& name = "") const {
        return name.empty() ? dir_.string() : (dir_ / name).string();
    }
    std::string write(const std::string& name, const std::string& text) const {
        fs::create_directories(fs::path(path(name)).parent_path());
        std::ofstream(path(name)) << text;
        return path(name);
    }

  private:
    fs::path dir_;
};

std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Runs mqctl with exactly `env` (plus PATH): unlike mqtest::mqctl, REDIS_URL and
/// DATABASE_URL are not set unless given, so a context can supply them.
mqtest::Run bare(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env, const std::string& input = {}) {
    TempDir io;
    std::string in = input.empty() ? "/dev/null" : io.write("in", input);
    std::string cmd = "env -i PATH=/usr/bin:/bin";
    for (const auto& [k, v] : env) cmd += " " + k + "=" + quote(v);
    cmd += " " + quote(mqtest::mqctl_path());
    for (const auto& a : args) cmd += " " + quote(a);
    cmd += " <" + quote(in) + " >" + quote(io.path("out")) + " 2>" + quote(io.path("err"));
    int rc = std::system(cmd.c_str());
    mqtest::Run r;
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = slurp(io.path("out"));
    r.err = slurp(io.path("err"));
    return r;
}

/// Runs mqctl on a pseudo-terminal (a prompt needs one), types `answer` once the prompt
/// shows, and returns what the terminal showed and the exit status. Bounded: 20 s.
mqtest::Run on_terminal(const std::vector<std::string>& args,
                        const std::map<std::string, std::string>& env, const std::string& answer) {
    std::vector<std::string> argv{mqtest::mqctl_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> envs{"PATH=/usr/bin:/bin"};
    for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
    int master = -1;
    pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::vector<char*> a, e;
        for (auto& s : argv) a.push_back(s.data());
        a.push_back(nullptr);
        for (auto& s : envs) e.push_back(s.data());
        e.push_back(nullptr);
        execve(a[0], a.data(), e.data());
        _exit(127);
    }
    mqtest::Run r;
    bool answered = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{master, POLLIN, 0};
        if (poll(&p, 1, 200) > 0) {
            char buf[4096];
            ssize_t n = read(master, buf, sizeof buf);
            if (n <= 0) break;  // EIO: the child closed the terminal
            r.out.append(buf, static_cast<std::size_t>(n));
        }
        if (!answered && r.out.find("[y/N]") != std::string::npos) {
            answered = true;
            if (answer.empty()) {
                char eof = 4;  // ^D: end of input
                REQUIRE(write(master, &eof, 1) == 1);
            } else {
                std::string line = answer + "\n";
                REQUIRE(write(master, line.data(), line.size()) ==
                        static_cast<ssize_t>(line.size()));
            }
        }
    }
    close(master);
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 100 && (done = waitpid(pid, &status, WNOHANG)) == 0; ++i)
        usleep(50 * 1000);  // the terminal closes just before the process is reaped
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        FAIL("mqctl on a terminal did not finish within 20 s; it showed: " << r.out);
    }
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

std::map<std::string, std::string> service_env() {
    return {{"REDIS_URL", mqtest::services().redis_url},
            {"DATABASE_URL", mqtest::services().database_url}};
}

}  // namespace

TEST_CASE("every_subcommand_help_lists_the_global_options", "[mqctl][e2e]") {
    for (const std::vector<std::string>& cmd :
         {std::vector<std::string>{"queue", "create", "--help"},
          {"dlq", "list", "--help"},
          {"publish", "--help"},
          {"queue", "--help"},
          {"config", "get-contexts", "--help"}}) {
        auto r = mqtest::mqctl(cmd);
        INFO(r.out);
        REQUIRE(r.status == 0);
        CHECK_THAT(r.out, Contains("Global options"));
        for (const char* flag : {"--output", "--tenant", "--context", "--mqconfig", "--redis-url",
                                 "--database-url", "--key-prefix"})
            CHECK_THAT(r.out, Contains(flag));
    }
    // set-context has --tenant of its own: the global one is not listed twice.
    auto set = mqtest::mqctl({"config", "set-context", "--help"});
    REQUIRE(set.status == 0);
    const auto globals = set.out.substr(set.out.find("Global options"));
    CHECK(globals.find("--tenant") == std::string::npos);
    CHECK_THAT(globals, Contains("--output"));
}

TEST_CASE("a_mistyped_command_gets_a_suggestion_at_every_level_and_exit_2", "[mqctl][e2e]") {
    struct Case {
        std::vector<std::string> args;
        std::string want;
    };
    for (const auto& c : std::vector<Case>{
             {{"queu", "list"}, "unknown command 'queu' for 'mqctl'; did you mean 'queue'?"},
             {{"-o", "json", "--tenant", "x", "queu", "list"}, "did you mean 'queue'?"},
             {{"queue", "lst"}, "unknown command 'lst' for 'mqctl queue'; did you mean 'list'?"},
             {{"dlq", "replya", "orders"}, "did you mean 'replay'?"},
             {{"config", "use-contxt", "prod"}, "did you mean 'use-context'?"},
             {{"pubish", "orders", "x"}, "did you mean 'publish'?"},
             {{"frobnicate"}, "unknown command 'frobnicate' for 'mqctl'; run 'mqctl --help'"},
             {{"queue", "create", "--help", "zz"}, ""},  // an argument, not a command
         }) {
        auto r = mqtest::mqctl(c.args);
        INFO(r.err);
        if (c.want.empty()) {
            CHECK(r.err.find("unknown command") == std::string::npos);
            continue;
        }
        CHECK(r.status == 2);
        CHECK_THAT(r.err, Contains(c.want));
    }
    // A word that only looks like a command where an argument goes is left alone.
    auto arg = mqtest::mqctl({"--redis-url", "redis://127.0.0.1:1", "queue", "show", "queu"});
    CHECK(arg.err.find("did you mean") == std::string::npos);
}

TEST_CASE("version_prints_the_build_version_and_servers_without_failing_when_down",
          "[mqctl][e2e]") {
    auto plain = mqtest::mqctl({"version"});
    REQUIRE_EXIT(plain, 0);
    CHECK(plain.out == std::string("mqctl ") + mq::kVersion + "\n");

    auto up = mqtest::mqctl({"version", "-o", "json"});
    REQUIRE_EXIT(up, 0);
    json j = json::parse(up.out);
    CHECK(j["client"]["version"] == mq::kVersion);
    CHECK_THAT(j["server"]["redis"]["version"].get<std::string>(), Contains("."));
    CHECK_THAT(j["server"]["postgresql"]["version"].get<std::string>(), Contains("."));

    const std::string dead = "127.0.0.1:" + std::to_string(mqtest::dead_port());
    const auto start = std::chrono::steady_clock::now();
    auto down = mqtest::mqctl({"version", "-o", "yaml"},
                              {{"REDIS_URL", "redis://" + dead + "/0"},
                               {"DATABASE_URL", "postgresql://postgres@" + dead + "/mq"}});
    REQUIRE_EXIT(down, 0);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(15));
    auto doc = mq::parse_yaml(down.out, "stdout").json;
    CHECK(doc["client"]["version"] == mq::kVersion);
    CHECK(doc["server"]["redis"]["version"].is_null());
    CHECK(doc["server"]["postgresql"]["version"].is_null());
    CHECK_FALSE(doc["server"]["redis"]["error"].get<std::string>().empty());
}

TEST_CASE("output_yaml_says_what_output_json_says", "[mqctl][e2e]") {
    mqtest::MqctlShell sh;
    sh.create_queue({"orders", "--partitions", "2", "--description", "true"});
    for (const std::vector<std::string>& cmd : {std::vector<std::string>{"queue", "show", "orders"},
                                                {"queue", "list"},
                                                {"stats", "orders"},
                                                {"sub", "list"}}) {
        std::vector<std::string> as_json{"-o", "json"}, as_yaml{"-o", "yaml"};
        as_json.insert(as_json.end(), cmd.begin(), cmd.end());
        as_yaml.insert(as_yaml.end(), cmd.begin(), cmd.end());
        auto j = sh.run(as_json);
        auto y = sh.run(as_yaml);
        REQUIRE_EXIT(j, 0);
        REQUIRE_EXIT(y, 0);
        INFO(y.out);
        CHECK(mq::parse_yaml(y.out, "stdout").json == json::parse(j.out));
    }
    // "true" as a description stays a string in YAML.
    auto show = sh.run({"-o", "yaml", "queue", "show", "orders"});
    CHECK(mq::parse_yaml(show.out, "stdout").json["description"] == "true");
    // Errors follow -o too.
    auto missing = sh.run({"-o", "yaml", "queue", "show", "nope"});
    REQUIRE_EXIT(missing, 3);
    CHECK(mq::parse_yaml(missing.err, "stderr").json["error"]["code"] == "MQ_QUEUE_NOT_FOUND");
    CHECK(sh.run({"-o", "xml", "queue", "list"}).status == 2);
}

TEST_CASE("contexts_set_use_list_view_and_delete", "[mqctl][e2e]") {
    TempDir home;
    const std::map<std::string, std::string> env{{"HOME", home.path()}};
    auto set = bare({"config", "set-context", "prod", "--redis-url", "redis://:pw@10.1.1.1:6379/0",
                     "--database-url", "postgresql://mq:dbpw@10.1.1.2/mq", "--tenant", "acme",
                     "--key-prefix", "p:"},
                    env);
    REQUIRE_EXIT(set, 0);
    CHECK_THAT(set.out, Contains("created context \"prod\"") && Contains("(current)"));
    const std::string file = home.path(".config/mq/config.yaml");
    REQUIRE(fs::exists(file));
    REQUIRE_EXIT(bare({"config", "set-context", "dev", "--tenant", "dev-t"}, env), 0);

    auto list = bare({"config", "get-contexts"}, env);
    REQUIRE_EXIT(list, 0);
    CHECK_THAT(list.out, Contains("*") && Contains("prod") && Contains("dev"));
    CHECK(list.out.find("dbpw") == std::string::npos);
    CHECK(bare({"config", "current-context"}, env).out == "prod\n");

    REQUIRE_EXIT(bare({"config", "use-context", "dev"}, env), 0);
    CHECK(bare({"config", "current-context"}, env).out == "dev\n");
    auto typo = bare({"config", "use-context", "prd"}, env);
    REQUIRE_EXIT(typo, 3);
    CHECK_THAT(typo.err, Contains("did you mean 'prod'?"));

    auto token = bare({"config", "set-context", "prod", "--token", "-"}, env, "mq_secret_token\n");
    REQUIRE_EXIT(token, 0);
    CHECK_THAT(token.out, Contains("modified context"));
    auto view = bare({"config", "view"}, env);
    REQUIRE_EXIT(view, 0);
    CHECK(view.out.find("mq_secret_token") == std::string::npos);
    CHECK(view.out.find("dbpw") == std::string::npos);
    CHECK(view.out.find(":pw@") == std::string::npos);
    auto doc = mq::parse_yaml(view.out, "view").json;
    CHECK(doc["current-context"] == "dev");
    CHECK(doc["contexts"]["prod"]["token"] == "****");
    CHECK(doc["contexts"]["prod"]["database_url"] == "postgresql://mq:****@10.1.1.2/mq");
    CHECK(doc["contexts"]["prod"]["tenant"] == "acme");
    CHECK_THAT(bare({"config", "view", "--raw"}, env).out, Contains("mq_secret_token"));

    CHECK(bare({"config", "set-context", "bad name"}, env).status == 2);
    CHECK(bare({"config", "set-context", "x", "--redis-url", "http://nope"}, env).status == 2);
    CHECK(bare({"config", "set-context", "x", "--tenant", "bad tenant!"}, env).status == 2);
    REQUIRE_EXIT(bare({"config", "delete-context", "dev"}, env), 0);
    CHECK(bare({"config", "current-context"}, env).status == 3);
    CHECK(bare({"config", "delete-context", "dev"}, env).status == 3);
}

TEST_CASE("settings_precedence_is_flag_then_environment_then_context", "[mqctl][e2e]") {
    // Three tenants with a queue each tell which tenant a command acted for.
    mqtest::TenantScope from_context, from_env, from_flag;
    for (auto* t : {&from_context, &from_env, &from_flag})
        REQUIRE_EXIT(
            mqtest::mqctl({"--tenant", t->tenant(), "queue", "create", "q-" + t->tenant()}), 0);
    TempDir home;
    const auto& svc = mqtest::services();
    // The context alone supplies both URLs and the tenant: no REDIS_URL/DATABASE_URL set.
    std::map<std::string, std::string> env{{"XDG_CONFIG_HOME", home.path("xdg")},
                                           {"HOME", home.path("nohome")}};
    REQUIRE_EXIT(bare({"config", "set-context", "test", "--redis-url", svc.redis_url,
                       "--database-url", svc.database_url, "--tenant", from_context.tenant()},
                      env),
                 0);
    CHECK(fs::exists(home.path("xdg/mq/config.yaml")));  // XDG_CONFIG_HOME respected
    auto names = [](const mqtest::Run& r) {
        std::set<std::string> out;
        for (const auto& q : json::parse(r.out)) out.insert(q["name"].get<std::string>());
        return out;
    };
    auto ctx = bare({"-o", "json", "queue", "list"}, env);
    REQUIRE_EXIT(ctx, 0);
    CHECK(names(ctx) == std::set<std::string>{"q-" + from_context.tenant()});

    env["MQ_TENANT"] = from_env.tenant();
    auto by_env = bare({"-o", "json", "queue", "list"}, env);
    REQUIRE_EXIT(by_env, 0);
    CHECK(names(by_env) == std::set<std::string>{"q-" + from_env.tenant()});

    auto by_flag = bare({"-o", "json", "--tenant", from_flag.tenant(), "queue", "list"}, env);
    REQUIRE_EXIT(by_flag, 0);
    CHECK(names(by_flag) == std::set<std::string>{"q-" + from_flag.tenant()});
    env.erase("MQ_TENANT");

    // --context picks another context for one command; a dead one shows it was used.
    const std::string dead = "127.0.0.1:" + std::to_string(mqtest::dead_port());
    REQUIRE_EXIT(bare({"config", "set-context", "down", "--redis-url", "redis://" + dead,
                       "--database-url", "postgresql://postgres@" + dead + "/mq"},
                      env),
                 0);
    CHECK(bare({"config", "current-context"}, env).out == "test\n");  // set-context kept it
    CHECK(bare({"--context", "down", "queue", "list"}, env).status == 5);
    // ... and the environment still beats it, with a warning since it was asked for.
    auto env_wins =
        bare({"--context", "down", "-o", "json", "--tenant", from_flag.tenant(), "queue", "list"},
             {{"XDG_CONFIG_HOME", home.path("xdg")},
              {"DATABASE_URL", svc.database_url},
              {"REDIS_URL", svc.redis_url}});
    REQUIRE_EXIT(env_wins, 0);
    CHECK_THAT(env_wins.err,
               Contains("DATABASE_URL from the environment overrides context 'down'"));
    auto unknown = bare({"--context", "dwon", "queue", "list"}, env);
    REQUIRE_EXIT(unknown, 3);
    CHECK_THAT(unknown.err, Contains("context 'dwon' not found") && Contains("'down'"));

    // MQCONFIG and --mqconfig name another file.
    const std::string other = home.write("other.yaml",
                                         "current-context: o\ncontexts:\n  o:\n"
                                         "    tenant: " +
                                             from_env.tenant() + "\n");
    auto via_env = bare(
        {"-o", "json", "queue", "list"},
        {{"MQCONFIG", other}, {"REDIS_URL", svc.redis_url}, {"DATABASE_URL", svc.database_url}});
    REQUIRE_EXIT(via_env, 0);
    CHECK(names(via_env) == std::set<std::string>{"q-" + from_env.tenant()});
    auto via_flag = mqtest::mqctl({"--mqconfig", other, "-o", "json", "queue", "list"});
    REQUIRE_EXIT(via_flag, 0);
    CHECK(names(via_flag) == std::set<std::string>{"q-" + from_env.tenant()});

    // A broken file is a usage error naming file:line.
    const std::string broken = home.write("broken.yaml", "contexts:\n  o:\n    tennant: x\n");
    auto bad = mqtest::mqctl({"--mqconfig", broken, "queue", "list"});
    REQUIRE_EXIT(bad, 2);
    CHECK_THAT(bad.err, Contains("broken.yaml:3") && Contains("did you mean 'tenant'?"));
}

TEST_CASE("answering_n_at_a_prompt_exits_1_and_changes_nothing", "[mqctl][e2e]") {
    mqtest::MqctlShell sh;
    sh.create_queue({"orders"});
    auto env = service_env();
    const std::vector<std::string> del{"--tenant", sh.tenant(), "--key-prefix", sh.redis().prefix(),
                                       "queue",    "delete",    "orders"};
    auto no = on_terminal(del, env, "n");
    INFO(no.out);
    CHECK(no.status == 1);
    CHECK_THAT(no.out, Contains("aborted: nothing changed"));
    CHECK(no.out.find("unexpected") == std::string::npos);
    CHECK(sh.queue("orders").name == "orders");

    auto eof = on_terminal(del, env, "");  // ^D
    CHECK(eof.status == 1);
    CHECK_THAT(eof.out, Contains("aborted: nothing changed"));

    auto yes = on_terminal(del, env, "y");
    INFO(yes.out);
    CHECK(yes.status == 0);
    CHECK_THAT(yes.out, Contains("deleted queue orders"));
}

TEST_CASE("apply_dry_run_prints_the_plan_with_conflicts_marked_and_exits_0", "[mqctl][e2e]") {
    mqtest::MqctlShell sh;
    sh.create_queue({"orders"});
    sh.ok({"sub", "create", "orders", "billing", "--url", "https://billing.example/hooks"});
    const std::string file = mqtest::temp_file(
        "scope: team-a\n"
        "subscriptions:\n"
        "  - queue: orders\n"
        "    name: billing\n"
        "    handler: {type: webhook, url: 'https://billing.example/hooks'}\n"
        "  - queue: orders\n"
        "    name: audit\n"
        "    handler: {type: pull}\n"
        "  - queue: missing\n"
        "    name: x\n"
        "    handler: {type: pull}\n");

    auto dry = sh.run({"apply", "-f", file, "--dry-run"});
    REQUIRE_EXIT(dry, 0);
    CHECK_THAT(dry.out, Contains("! conflict update orders/billing: owned by"));
    CHECK_THAT(dry.out, Contains("--adopt"));
    CHECK_THAT(dry.out, Contains("+ create orders/audit"));
    CHECK_THAT(dry.out, Contains("! conflict create missing/x: queue 'missing' not found"));
    CHECK_THAT(dry.out, Contains("2 conflict(s)"));

    auto j = sh.json_of({"apply", "-f", file, "--dry-run"});
    CHECK(j["conflicts"] == 2);
    CHECK(j["applied"] == false);
    REQUIRE(j["plan"].size() == 3);
    CHECK(j["plan"][0]["conflict"].get<std::string>().find("owned by") != std::string::npos);
    CHECK(j["plan"][1]["conflict"].is_null());

    // Nothing changed, and a real apply still refuses (queue first: exit 3).
    CHECK_FALSE(sh.run({"sub", "show", "orders", "audit"}).status == 0);
    REQUIRE_EXIT(sh.run({"apply", "-f", file}), 3);
    // An invalid file is still exit 2, dry run or not.
    REQUIRE_EXIT(sh.run({"apply", "-f", mqtest::temp_file("subscriptions: 3\n"), "--dry-run"}), 2);
}

TEST_CASE("old_flag_spellings_still_work_but_help_shows_one_per_concept", "[mqctl][e2e]") {
    auto publish = mqtest::mqctl({"publish", "--help"});
    CHECK_THAT(publish.out, Contains("-f,--filename"));
    CHECK(publish.out.find("--file ") == std::string::npos);
    auto pending = mqtest::mqctl({"pending", "--help"});
    CHECK_THAT(pending.out, Contains("-n,--limit"));
    CHECK_THAT(pending.out, Contains("--consumer"));
    CHECK(pending.out.find("--count") == std::string::npos);
    CHECK(pending.out.find("-c,") == std::string::npos);

    mqtest::MqctlShell sh;
    sh.create_queue({"orders"});
    const std::string payload = mqtest::temp_file("{\"id\":1}");
    REQUIRE_EXIT(sh.run({"publish", "orders", "--filename", payload}), 0);
    REQUIRE_EXIT(sh.run({"publish", "orders", "--file", payload}), 0);  // hidden alias
    CHECK(sh.xlen("orders", 0) == 2);
    sh.ok({"sub", "create", "orders", "billing"});
    REQUIRE_EXIT(sh.run({"pending", "orders", "--sub", "billing", "-n", "5", "--consumer", "w"}),
                 0);
    REQUIRE_EXIT(sh.run({"pending", "orders", "--sub", "billing", "--count", "5", "-c", "w"}), 0);
    REQUIRE_EXIT(sh.run({"pending", "orders", "--sub", "billing", "--limit", "0"}), 2);
}

TEST_CASE("completion_scripts_come_from_the_command_tree_and_complete_in_bash_and_zsh",
          "[mqctl][e2e]") {
    TempDir dir;
    auto bash = mqtest::mqctl({"completion", "bash"});
    REQUIRE_EXIT(bash, 0);
    const std::string bash_file = dir.write("mqctl.bash", bash.out);
    REQUIRE(std::system(("bash -n " + quote(bash_file)).c_str()) == 0);
    // bash completion as the shell runs it: COMP_WORDS/COMP_CWORD, then _mqctl fills COMPREPLY.
    auto complete = [&](const std::string& words) {
        const std::string script = "source " + quote(bash_file) + "\nCOMP_WORDS=(" + words +
                                   ")\nCOMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n_mqctl\n"
                                   "printf '%s\\n' \"${COMPREPLY[@]}\"\n";
        const std::string out = dir.path("out");
        const std::string cmd = "cd " + quote(dir.path()) + " && bash -c " + quote(script) + " > " +
                                quote(out) + " 2>&1";
        REQUIRE(std::system(cmd.c_str()) == 0);
        return "\n" + slurp(out);
    };
    CHECK_THAT(complete("mqctl qu"), Contains("\nqueue\n"));
    CHECK_THAT(complete("mqctl queue ''"), Contains("\ncreate\n") && Contains("\npurge\n"));
    CHECK_THAT(complete("mqctl -t acme queue l"), Contains("\nlist\n"));
    CHECK_THAT(complete("mqctl config ''"), Contains("\nuse-context\n") && Contains("\nview\n"));
    CHECK_THAT(complete("mqctl dlq list --"),
               Contains("\n--limit\n") && Contains("\n--tenant\n") && Contains("\n--context\n"));
    CHECK_THAT(complete("mqctl -o ''"), Contains("\ntable\n") && Contains("\nyaml\n"));
    CHECK_THAT(complete("mqctl queue show x -o y"), Contains("\nyaml\n"));
    CHECK_THAT(complete("mqctl completion ''"), Contains("\nbash\n") && Contains("\nzsh\n"));
    dir.write("payload.json", "{}");
    CHECK_THAT(complete("mqctl publish orders -f pay"), Contains("\npayload.json\n"));
    CHECK(complete("mqctl publish --").find("--file\n") == std::string::npos);  // hidden

    auto zsh = mqtest::mqctl({"completion", "zsh"});
    REQUIRE_EXIT(zsh, 0);
    const std::string zsh_file = dir.write("_mqctl", zsh.out);
    CHECK_THAT(zsh.out, Contains("#compdef mqctl"));
    if (std::system("command -v zsh > /dev/null 2>&1") != 0) {
        WARN("zsh not installed (make deps installs it): zsh completion only generated");
        return;
    }
    REQUIRE(std::system(("zsh -n " + quote(zsh_file)).c_str()) == 0);
    // _describe and compadd stubbed to print what zsh would offer.
    const std::string script =
        "_describe() { local a=${@[-1]}; print -l -- ${(P)a}; }\n"
        "compadd() { shift; print -l -- \"$@\"; }\n"
        "_files() { print FILES; }\n"
        "words=(mqctl queue ''); CURRENT=3; PREFIX=''; source " +
        quote(zsh_file) +
        "\n"
        "words=(mqctl config use-context -); CURRENT=4; PREFIX=-; source " +
        quote(zsh_file) +
        "\n"
        "words=(mqctl -o ''); CURRENT=3; PREFIX=''; source " +
        quote(zsh_file) +
        "\n"
        "words=(mqctl apply -f ''); CURRENT=4; PREFIX=''; source " +
        quote(zsh_file) + "\n";
    const std::string out = dir.path("zsh-out");
    REQUIRE(std::system(("zsh -f -c " + quote(script) + " > " + quote(out) + " 2>&1").c_str()) ==
            0);
    const std::string got = slurp(out);
    INFO(got);
    CHECK_THAT(got, Contains("create:Create a queue"));
    CHECK_THAT(got, Contains("--tenant:Tenant to act for"));
    CHECK_THAT(got, Contains("--context:"));
    CHECK_THAT(got, Contains("\nyaml\n"));
    CHECK_THAT(got, Contains("FILES"));
}
