// The README's mqctl walkthrough runs exactly as written: every ```sh block right after a
// `<!-- walkthrough -->` line is run, line by line, in one bash session against the test
// services (a database of its own, a key prefix of its own, a HOME of its own for the
// contexts file), and every command must exit 0.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness.hpp"

namespace fs = std::filesystem;

namespace {

std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

/// The code blocks marked `<!-- walkthrough -->` in `markdown`, in order.
std::vector<std::string> walkthrough_blocks(const std::string& markdown) {
    std::vector<std::string> blocks;
    std::istringstream in(markdown);
    std::string line;
    bool marked = false, inside = false;
    std::string block;
    while (std::getline(in, line)) {
        if (inside) {
            if (line.rfind("```", 0) == 0) {
                blocks.push_back(block);
                block.clear();
                inside = false;
            } else {
                block += line + "\n";
            }
            continue;
        }
        if (line.find("<!-- walkthrough -->") != std::string::npos) {
            marked = true;
        } else if (marked && line.rfind("```", 0) == 0) {
            inside = true;
            marked = false;
        } else if (marked && !line.empty()) {
            marked = false;  // the marker goes right before its block
        }
    }
    return blocks;
}

/// A database of its own (the walkthrough migrates it and creates tenant acme).
struct ScratchDatabase {
    std::string name = "walkthrough_" + mqtest::unique_name("db").substr(3);
    ScratchDatabase() { mqtest::exec_admin("CREATE DATABASE \"" + name + "\""); }
    ~ScratchDatabase() {
        try {
            mqtest::exec_admin("DROP DATABASE IF EXISTS \"" + name + "\" WITH (FORCE)");
        } catch (...) {
        }
    }
};

}  // namespace

TEST_CASE("the_readme_mqctl_walkthrough_runs_as_written", "[readme][e2e]") {
    const std::string readme = read(std::string(MQ_SOURCE_DIR) + "/README.md");
    const auto blocks = walkthrough_blocks(readme);
    REQUIRE_FALSE(blocks.empty());
    std::string script;
    for (const auto& b : blocks) script += b;
    // What the issue found broken stays covered: a queue made in one tenant, shown after.
    REQUIRE(script.find("mqctl queue show orders") != std::string::npos);
    REQUIRE(script.find("mqctl tenant create acme") != std::string::npos);

    ScratchDatabase db;
    mqtest::RedisScope redis;  // its prefix keeps the walkthrough's keys apart
    const std::string home = mqtest::temp_file("");
    fs::remove(home);
    fs::create_directories(home);
    const std::string script_file = mqtest::temp_file(
        // Each command as written; the first failing one stops the run and is named.
        "set -e -o pipefail\n"
        "trap 'echo \"walkthrough: line $LINENO failed (exit $?): $BASH_COMMAND\" >&2' ERR\n" +
        script);
    const std::string log = mqtest::temp_file("");
    const std::string bin = fs::path(mqtest::mqctl_path()).parent_path().string();
    const std::string cmd =
        "cd " + quote(MQ_SOURCE_DIR) + " && env -i PATH=" + quote(bin + ":/usr/bin:/bin") +
        " HOME=" + quote(home) + " REDIS_URL=" + quote(mqtest::services().redis_url) +
        " DATABASE_URL=" + quote(mqtest::database_url_for(db.name)) +
        " REDIS_KEY_PREFIX=" + quote(redis.prefix()) + " bash " + quote(script_file) + " > " +
        quote(log) + " 2>&1";
    const int rc = std::system(cmd.c_str());
    INFO("walkthrough:\n" << script << "\n--- output:\n" << read(log));
    CHECK(WIFEXITED(rc));
    CHECK(WEXITSTATUS(rc) == 0);
    fs::remove_all(home);
}

TEST_CASE("walkthrough_blocks_are_found_only_right_after_their_marker", "[readme][e2e]") {
    const auto blocks = walkthrough_blocks(
        "intro\n```sh\nnot this\n```\n<!-- walkthrough -->\n```sh\na\nb\n```\ntext\n"
        "<!-- walkthrough -->\nprose in between\n```sh\nnot this either\n```\n"
        "<!-- walkthrough -->\n```sh\nc\n```\n");
    REQUIRE(blocks.size() == 2);
    CHECK(blocks[0] == "a\nb\n");
    CHECK(blocks[1] == "c\n");
}
