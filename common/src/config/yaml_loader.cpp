#include "mq/config/yaml_loader.hpp"

#include <yaml-cpp/eventhandler.h>

#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "mq/core/input_file.hpp"
#include "mq/error.hpp"

namespace mq {

namespace {

std::string at_line(const std::string& name, const YAML::Mark& mark) {
    return name + ":" + std::to_string(mark.line + 1);
}

// Counts what yaml-cpp would build, aliases expanded, without building it. yaml-cpp shares an
// aliased node, but everything that reads the tree (our JSON conversion, iteration) walks each
// use again, and a node that contains its own alias never ends.
class Census : public YAML::EventHandler {
  public:
    Census(const std::string& name, const YamlLimits& limits) : name_(name), limits_(limits) {}

    bool saw_document() const { return documents_ > 0; }

    void OnDocumentStart(const YAML::Mark& mark) override {
        if (++documents_ > 1)
            throw ValidationError(at_line(name_, mark) +
                                  ": a second YAML document ('---') is not allowed; put "
                                  "everything in one document");
    }
    void OnDocumentEnd() override {}

    void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { leaf(mark, anchor); }
    void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  const std::string&) override {
        leaf(mark, anchor);
    }
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
        for (const auto& f : open_)
            if (f.anchor == anchor && anchor != YAML::NullAnchor)
                throw ValidationError(at_line(name_, mark) +
                                      ": recursive alias (a node that contains an alias of "
                                      "itself) is not allowed");
        auto it = done_.find(anchor);
        if (it == done_.end())  // yaml-cpp refuses unknown aliases itself; be safe anyway
            throw ValidationError(at_line(name_, mark) + ": alias of an unknown anchor");
        add(mark, it->second.nodes, it->second.height);
    }

    void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value) override {
        open(mark, anchor);
    }
    void OnSequenceEnd() override { close(); }
    void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value) override {
        open(mark, anchor);
    }
    void OnMapEnd() override { close(); }

  private:
    struct Size {
        std::size_t nodes = 0;
        std::size_t height = 0;
    };
    struct Frame {
        YAML::anchor_t anchor;
        std::size_t total_before;
        std::size_t height = 1;  // of the subtree so far
    };

    void add(const YAML::Mark& mark, std::size_t nodes, std::size_t height) {
        if (nodes > limits_.max_nodes - total_)
            throw ValidationError(at_line(name_, mark) + ": the document expands to more than " +
                                  std::to_string(limits_.max_nodes) +
                                  " nodes (each use of an alias counts its whole anchor)");
        total_ += nodes;
        if (open_.size() + height > limits_.max_depth)
            throw ValidationError(at_line(name_, mark) + ": nested deeper than " +
                                  std::to_string(limits_.max_depth) + " levels");
        if (!open_.empty()) open_.back().height = std::max(open_.back().height, height + 1);
    }

    void leaf(const YAML::Mark& mark, YAML::anchor_t anchor) {
        add(mark, 1, 1);
        if (anchor != YAML::NullAnchor) done_[anchor] = {1, 1};
    }

    void open(const YAML::Mark& mark, YAML::anchor_t anchor) {
        std::size_t before = total_;
        add(mark, 1, 1);
        open_.push_back({anchor, before});
    }

    void close() {
        Frame f = open_.back();
        open_.pop_back();
        if (!open_.empty()) open_.back().height = std::max(open_.back().height, f.height + 1);
        if (f.anchor != YAML::NullAnchor) done_[f.anchor] = {total_ - f.total_before, f.height};
    }

    const std::string& name_;
    const YamlLimits& limits_;
    int documents_ = 0;
    std::size_t total_ = 0;
    std::vector<Frame> open_;
    std::map<YAML::anchor_t, Size> done_;
};

}  // namespace

YAML::Node load_yaml_text(std::string_view text, const std::string& name,
                          const YamlLimits& limits) {
    if (text.size() > limits.max_bytes)
        throw ValidationError(name + ": larger than " + std::to_string(limits.max_bytes) +
                              " bytes");
    std::string copy(text);
    try {
        {
            std::istringstream in(copy);
            YAML::Parser parser(in);
            Census census(name, limits);
            while (parser.HandleNextDocument(census)) {
            }
            if (!census.saw_document()) return YAML::Node();
        }
        return YAML::Load(copy);
    } catch (const YAML::Exception& e) {
        throw ValidationError(at_line(name, e.mark) + ": " + e.msg);
    }
}

YAML::Node load_yaml_file(const std::string& path, const YamlLimits& limits) {
    return load_yaml_text(read_input_file(path, "YAML file", limits.max_bytes), path, limits);
}

}  // namespace mq
