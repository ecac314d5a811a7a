// The one YAML loader: recursive aliases, alias bombs, deep nesting, huge files and a second
// document are refused with file:line before yaml-cpp builds anything; ordinary anchors work.
// Every YAML reader (settings, worker config, mqctl apply, keyrings) goes through it.

#include "mq/config/yaml_loader.hpp"

#include <catch2/catch.hpp>
#include <chrono>

#include "harness.hpp"
#include "mq/config/config.hpp"
#include "mq/config/yaml_json.hpp"
#include "mq/crypto/keyring.hpp"
#include "mq/error.hpp"

using Catch::Matchers::Contains;

namespace {

std::string refusal_of(const std::string& text, const mq::YamlLimits& limits = {}) {
    try {
        mq::load_yaml_text(text, "f.yaml", limits);
    } catch (const mq::ValidationError& e) {
        return e.what();
    }
    FAIL("accepted: " << text.substr(0, 200));
    return "";
}

// Nine levels of ten aliases each: 10^9 nodes once expanded.
std::string billion_laughs() {
    std::string text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
    for (int i = 1; i < 9; ++i) {
        std::string prev = "*a" + std::to_string(i - 1);
        text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
        for (int j = 0; j < 10; ++j) text += (j ? ", " : "") + prev;
        text += "]\n";
    }
    return text;
}

}  // namespace

TEST_CASE("yaml_recursive_alias_is_refused_with_its_line", "[yaml][security]") {
    CHECK_THAT(refusal_of("a: &a [*a]\n"), Contains("f.yaml:1") && Contains("recursive alias"));
    CHECK_THAT(refusal_of("x: 1\nb: &b\n  c: *b\n"), Contains("f.yaml:3") && Contains("recursive"));
    CHECK_THAT(refusal_of("- &s [1, [2, *s]]\n"), Contains("recursive alias"));
}

TEST_CASE("yaml_alias_expansion_is_bounded", "[yaml][security]") {
    auto t0 = std::chrono::steady_clock::now();
    CHECK_THAT(refusal_of(billion_laughs()), Contains("expands to more than 100000 nodes"));
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
    // Through parse_yaml (which converts to JSON) too, without bad_alloc.
    CHECK_THROWS_AS(mq::parse_yaml(billion_laughs(), "b.yaml"), mq::ValidationError);
    // A small expansion is fine and converts with the aliases expanded.
    auto doc = mq::parse_yaml("base: &b {x: 1, y: [1, 2]}\nuse: [*b, *b]\n", "ok.yaml");
    CHECK(doc.json["use"][1]["y"][1] == 2);
    mq::YamlLimits tight;
    tight.max_nodes = 10;
    CHECK_THAT(refusal_of("a: &a [1, 2, 3, 4]\nb: [*a, *a]\n", tight), Contains("expands"));
}

TEST_CASE("yaml_depth_size_and_second_documents_are_refused", "[yaml][security]") {
    CHECK_THAT(refusal_of(std::string(100, '[') + std::string(100, ']')),
               Contains("deeper than 64"));
    // Deep through an alias of a deep anchor.
    std::string deep = "a: &a " + std::string(40, '[') + std::string(40, ']') +
                       "\nb: " + std::string(40, '[') + "*a" + std::string(40, ']') + "\n";
    CHECK_THAT(refusal_of(deep), Contains("deeper than"));
    // yaml-cpp's own recursion guard: still an error with a line, not a crash.
    CHECK_THROWS_AS(mq::load_yaml_text(std::string(100000, '['), "d.yaml"), mq::ValidationError);

    CHECK_THAT(refusal_of(std::string(2 * 1024 * 1024, '#')), Contains("larger than"));
    CHECK_THAT(refusal_of("a: 1\n---\nb: 2\n"), Contains("f.yaml:2") && Contains("second YAML"));
    CHECK_THAT(refusal_of("a: 1\n---\n"), Contains("second YAML"));
    CHECK_THAT(refusal_of("a: [1\n"), Contains("f.yaml:"));

    CHECK(mq::load_yaml_text("---\na: 1\n...\n", "ok.yaml")["a"].as<int>() == 1);
    CHECK(mq::load_yaml_text("", "empty.yaml").IsNull());
    CHECK(mq::load_yaml_text("# only a comment\n", "c.yaml").IsNull());
}

TEST_CASE("every_yaml_reader_uses_the_bounded_loader", "[yaml][security]") {
    std::string bomb = mqtest::temp_file(billion_laughs());
    std::string loop = mqtest::temp_file("a: &a [*a]\n");
    std::string two = mqtest::temp_file("port: 1\n---\nport: 2\n");
    for (const auto& path : {bomb, loop, two}) {
        INFO(path);
        CHECK_THROWS_AS(mq::load_yaml(path), mq::ValidationError);
        CHECK_THROWS_AS(mq::load_config(path, {}), mq::ValidationError);
        CHECK_THROWS_AS(mq::Keyring::load(path), mq::ValidationError);
    }
    try {
        mq::load_config(loop, {});
    } catch (const mq::ValidationError& e) {
        CHECK_THAT(e.what(), Contains(loop + ":1"));
    }
    CHECK_THROWS_AS(mq::load_yaml("/dev/zero"), mq::ValidationError);
    CHECK_THROWS_AS(mq::load_config("/nonexistent/mq.yaml", {}), mq::ValidationError);
}
