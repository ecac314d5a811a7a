#include "mq/core/json.hpp"

#include <cstdint>
#include <vector>

#include "mq/error.hpp"

namespace mq {

namespace {

using json = nlohmann::json;

// Builds the value from nlohmann's SAX events (its SAX parser keeps its own stack on the
// heap, so no input recurses), refusing depth as soon as it is exceeded and remembering
// where it is so an error can name the field.
class BoundedBuilder {
  public:
    BoundedBuilder(std::string_view what, std::size_t max_depth)
        : what_(what), max_depth_(max_depth) {}

    json result() { return std::move(root_); }

    bool null() { return put(nullptr); }
    bool boolean(bool v) { return put(v); }
    bool number_integer(json::number_integer_t v) { return put(v); }
    bool number_unsigned(json::number_unsigned_t v) { return put(v); }
    bool number_float(json::number_float_t v, const json::string_t&) { return put(v); }
    bool string(json::string_t& v) { return put(std::move(v)); }
    bool binary(json::binary_t&) { fail("binary values are not JSON"); }
    bool start_object(std::size_t) { return open(json::value_t::object); }
    bool start_array(std::size_t) { return open(json::value_t::array); }
    bool key(json::string_t& k) {
        keys_.back() = k;
        pending_ = &(*stack_.back())[k];
        return true;
    }
    bool end_object() { return close(); }
    bool end_array() { return close(); }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
        std::string why = e.what();
        // "[json.exception.parse_error.101] parse error at line 1, column 9: ..." -> the rest.
        if (auto end = why.find("] "); why.rfind("[json.exception.", 0) == 0 && end != why.npos)
            why = why.substr(end + 2);
        if (e.id == 406) why = "number out of range: " + why;
        fail(why);
    }

  private:
    template <class V>
    bool put(V&& v) {
        if (stack_.empty()) {
            root_ = json(std::forward<V>(v));
            return true;
        }
        json* top = stack_.back();
        if (top->is_array()) {
            top->emplace_back(std::forward<V>(v));
        } else {
            *pending_ = json(std::forward<V>(v));
        }
        return true;
    }

    bool open(json::value_t type) {
        if (stack_.size() >= max_depth_)
            fail("nested deeper than " + std::to_string(max_depth_) + " levels");
        json* node;
        if (stack_.empty()) {
            root_ = json(type);
            node = &root_;
        } else if (stack_.back()->is_array()) {
            stack_.back()->emplace_back(type);
            node = &stack_.back()->back();
        } else {
            *pending_ = json(type);
            node = pending_;
        }
        stack_.push_back(node);
        keys_.emplace_back();
        return true;
    }

    bool close() {
        stack_.pop_back();
        keys_.pop_back();
        return true;
    }

    // "messages[2].payload": the member or element being read.
    std::string path() const {
        std::string out;
        for (std::size_t i = 0; i < stack_.size(); ++i) {
            if (stack_[i]->is_array()) {
                // The element being read is the last one when it is a container still open.
                std::size_t index = stack_[i]->size();
                if (i + 1 < stack_.size() && index > 0) --index;
                out += "[" + std::to_string(index) + "]";
            } else if (!keys_[i].empty() || i + 1 < stack_.size()) {
                out += (out.empty() ? "" : ".") + keys_[i];
            }
        }
        return out;
    }

    [[noreturn]] void fail(const std::string& why) const {
        std::string field = path();
        nlohmann::json details = {{"field", field.empty() ? what_ : field}};
        std::string where = field.empty() ? "" : " at \"" + printable(field) + "\"";
        throw ValidationError("invalid " + what_ + where + ": " + printable(why),
                              std::move(details));
    }

    std::string what_;
    std::size_t max_depth_;
    json root_;
    std::vector<json*> stack_;
    std::vector<std::string> keys_;  // per open container: the member being read
    json* pending_ = nullptr;        // where the next object member's value goes
};

}  // namespace

std::size_t utf8_sequence_length(std::string_view text, std::size_t at) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data()) + at;
    const std::size_t left = text.size() - at;
    unsigned char c = *p;
    if (c < 0x80) return 1;
    std::size_t n;
    std::uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 1;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3;
        cp = c & 0x07;
    } else {
        return 0;  // continuation byte first, 0xc0/0xc1 overlong, or past 0xf4
    }
    if (left <= n) return 0;
    for (std::size_t i = 1; i <= n; ++i) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n + 1;
}

bool is_valid_utf8(std::string_view text) {
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t n = utf8_sequence_length(text, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

nlohmann::json parse_json(std::string_view text, std::string_view what, const JsonLimits& limits) {
    if (limits.max_bytes && text.size() > limits.max_bytes)
        throw ValidationError(std::string(what) + " is " + std::to_string(text.size()) +
                                  " bytes, over the limit of " + std::to_string(limits.max_bytes),
                              {{"field", std::string(what)}});
    BoundedBuilder builder(what, limits.max_depth == 0 ? kMaxJsonDepth : limits.max_depth);
    json::sax_parse(text.begin(), text.end(), &builder);
    return builder.result();
}

std::string json_pointer_token(std::string_view key) {
    std::string out;
    for (char c : key) {
        if (c == '~')
            out += "~0";
        else if (c == '/')
            out += "~1";
        else
            out += c;
    }
    return out;
}

}  // namespace mq
