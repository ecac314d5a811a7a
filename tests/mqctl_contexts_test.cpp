// mqctl's contexts file (mq/config/contexts.hpp) and the "did you mean" matcher: pure
// functions over a temporary directory, no services.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "mq/config/contexts.hpp"
#include "mq/core/suggest.hpp"
#include "mq/error.hpp"

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

/// A temporary directory removed when the scope ends.
class TempDir {
  public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "mq-contexts-test-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream(path(name)) << text;
        return path(name);
    }

  private:
    fs::path dir_;
};

}  // namespace

TEST_CASE("did_you_mean_finds_close_commands_and_nothing_for_unrelated_words", "[mqctl]") {
    const std::vector<std::string> top = {"db",  "tenant", "queue",  "publish", "stats",  "sub",
                                          "dlq", "apply",  "config", "version", "pending"};
    CHECK(mq::closest_match("queu", top) == std::optional<std::string>("queue"));
    CHECK(mq::closest_match("qeueu", top) == std::optional<std::string>("queue"));
    CHECK(mq::closest_match("pubish", top) == std::optional<std::string>("publish"));
    CHECK(mq::closest_match("verison", top) == std::optional<std::string>("version"));
    CHECK(mq::closest_match("dql", top) == std::optional<std::string>("dlq"));
    CHECK(mq::closest_match("pend", top) == std::optional<std::string>("pending"));
    CHECK_FALSE(mq::closest_match("frobnicate", top).has_value());
    CHECK_FALSE(mq::closest_match("x", top).has_value());
    CHECK_FALSE(mq::closest_match("", top).has_value());
    CHECK(mq::edit_distance("ab", "ba") == 1);
    CHECK(mq::edit_distance("", "abc") == 3);
    CHECK(mq::edit_distance("kitten", "sitting") == 3);
}

TEST_CASE("contexts_path_prefers_flag_then_MQCONFIG_then_XDG_then_HOME", "[mqctl]") {
    using Env = std::map<std::string, std::string>;
    const Env all = {{"MQCONFIG", "/m/c.yaml"}, {"XDG_CONFIG_HOME", "/x"}, {"HOME", "/h"}};
    CHECK(mq::client_contexts_path("/flag.yaml", all) == "/flag.yaml");
    CHECK(mq::client_contexts_path("", all) == "/m/c.yaml");
    CHECK(mq::client_contexts_path("", {{"XDG_CONFIG_HOME", "/x"}, {"HOME", "/h"}}) ==
          "/x/mq/config.yaml");
    // An empty XDG_CONFIG_HOME counts as unset (XDG Base Directory spec).
    CHECK(mq::client_contexts_path("", {{"XDG_CONFIG_HOME", ""}, {"HOME", "/h"}}) ==
          "/h/.config/mq/config.yaml");
    CHECK_THROWS_AS(mq::client_contexts_path("", {}), mq::ValidationError);
}

TEST_CASE("contexts_file_round_trips_with_mode_0600_and_a_missing_file_is_empty", "[mqctl]") {
    TempDir dir;
    const std::string path = dir.path("sub/dir/config.yaml");
    CHECK(mq::load_client_contexts(path).contexts.empty());

    mq::ClientContextFile file;
    file.current = "prod";
    file.contexts["prod"] = {"redis://:s3cret@10.0.0.5:6379/0",
                             "postgresql://mq:pw@db/mq",
                             "acme",
                             "mq:",
                             "https://mq.example/",
                             "mq_token"};
    file.contexts["dev"].tenant = "true";  // a YAML-looking string stays a string
    mq::save_client_contexts(path, file);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    auto back = mq::load_client_contexts(path);
    CHECK(back.current == "prod");
    REQUIRE(back.contexts.size() == 2);
    CHECK(back.contexts["prod"].redis_url == "redis://:s3cret@10.0.0.5:6379/0");
    CHECK(back.contexts["prod"].key_prefix == "mq:");
    CHECK(back.contexts["prod"].token == "mq_token");
    CHECK(back.contexts["dev"].tenant == "true");

    auto settings = mq::context_settings(back.contexts["prod"]);
    CHECK(settings ==
          std::map<std::string, std::string>{{"REDIS_URL", "redis://:s3cret@10.0.0.5:6379/0"},
                                             {"DATABASE_URL", "postgresql://mq:pw@db/mq"},
                                             {"MQ_TENANT", "acme"},
                                             {"REDIS_KEY_PREFIX", "mq:"}});
    CHECK(mq::context_settings(back.contexts["dev"]) ==
          std::map<std::string, std::string>{{"MQ_TENANT", "true"}});
}

TEST_CASE("contexts_file_errors_name_the_line_and_the_closest_key", "[mqctl]") {
    TempDir dir;
    auto typo = dir.write("typo.yaml",
                          "current-context: a\ncontexts:\n  a:\n    tenant: x\n    redis-url: y\n");
    CHECK_THROWS_WITH(mq::load_client_contexts(typo), Contains("typo.yaml:") &&
                                                          Contains("unknown key 'redis-url'") &&
                                                          Contains("did you mean 'redis_url'?"));
    auto top = dir.write("top.yaml", "current_context: a\n");
    CHECK_THROWS_WITH(mq::load_client_contexts(top), Contains("did you mean 'current-context'?"));
    auto name = dir.write("name.yaml", "contexts:\n  'bad name': {}\n");
    CHECK_THROWS_WITH(mq::load_client_contexts(name), Contains("context name 'bad name'"));
    auto syntax = dir.write("syntax.yaml", "contexts: [\n");
    CHECK_THROWS_AS(mq::load_client_contexts(syntax), mq::ValidationError);
    auto list = dir.write("list.yaml", "contexts:\n  a:\n    tenant: [1, 2]\n");
    CHECK_THROWS_WITH(mq::load_client_contexts(list), Contains("must be a string"));
    CHECK_THROWS_AS(mq::load_client_contexts(dir.path("")), mq::ValidationError);  // a directory
}

TEST_CASE("select_context_uses_the_flag_then_the_current_one_and_suggests_names", "[mqctl]") {
    mq::ClientContextFile file;
    file.contexts["staging"].tenant = "s";
    file.contexts["prod"].tenant = "p";
    CHECK_FALSE(mq::select_client_context(file, "", "f.yaml").has_value());
    file.current = "staging";
    CHECK(mq::select_client_context(file, "", "f.yaml")->first == "staging");
    CHECK(mq::select_client_context(file, "prod", "f.yaml")->second.tenant == "p");
    try {
        mq::select_client_context(file, "stagin", "f.yaml");
        FAIL("no error");
    } catch (const mq::Error& e) {
        CHECK(e.code() == mq::ErrorCode::kNotFound);
        CHECK_THAT(e.what(), Contains("did you mean 'staging'?"));
    }
    file.current = "gone";
    CHECK_THROWS_WITH(mq::select_client_context(file, "", "f.yaml"),
                      Contains("current-context") && Contains("use-context"));
}

TEST_CASE("mask_url_password_hides_only_the_password", "[mqctl]") {
    CHECK(mq::mask_url_password("redis://:s3cret@127.0.0.1:6379/0") ==
          "redis://:****@127.0.0.1:6379/0");
    CHECK(mq::mask_url_password("postgresql://mq:pw@db:5432/mq") ==
          "postgresql://mq:****@db:5432/mq");
    CHECK(mq::mask_url_password("postgresql://mq@db/mq") == "postgresql://mq@db/mq");
    CHECK(mq::mask_url_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0");
    CHECK(mq::mask_url_password("host=db password=pw user=mq") == "host=db password=**** user=mq");
}
