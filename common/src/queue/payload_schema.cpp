#include "mq/queue/payload_schema.hpp"

// Queue schemas come from tenants, so nothing here may crash, recurse without bound or run a
// backtracking regex engine on their input. valijson 1.0 evaluates `pattern`,
// `patternProperties` and `format` with std::regex (recursive, exponential on some patterns)
// and follows a `$ref` loop until the stack runs out. So a schema is first checked and
// rewritten (vet_and_rewrite below) into one valijson runs safely:
//   pattern            -> x-mq-pattern            (RE2, linear time)
//   patternProperties  -> x-mq-pattern-properties (RE2 on names; the matching subschemas and
//   + additionalProperties                          additionalProperties run as compiled
//                                                   valijson schemas of the same document)
//   format             -> x-mq-format             (date, time, date-time parsed by hand)
//   uniqueItems        -> x-mq-unique-items       (bounded size, sort instead of n^2)
// and every schema object gets `allOf: [{"x-mq-budget": 0}, ...]` first, a step counter
// valijson visits before anything else in that object, which ends a check that exceeds
// kMaxSteps or kMaxTime. The x-mq-* keywords are ours (ConstraintBuilder + PolyConstraint);
// a schema that uses them itself is refused.
//
// valijson reports an unusable schema through throwRuntimeError; VALIJSON_USE_EXCEPTIONS (set
// for this target in common/CMakeLists.txt) makes that an exception instead of abort().
#include <re2/re2.h>

#include <algorithm>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/constraint_builder.hpp>
#include <valijson/constraints/concrete_constraints.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>
#include <vector>

#include "mq/core/json.hpp"
#include "mq/error.hpp"

namespace mq {

using Limits = PayloadSchemaLimits;
using nlohmann::json;

SchemaInvalid::SchemaInvalid(const std::string& pointer, const std::string& reason)
    : Error(
          ErrorCode::kSchemaInvalid,
          "schema is not accepted: " + reason + (pointer.empty() ? "" : " (at " + pointer + ")"),
          {{"field", "schema"}, {"pointer", pointer.empty() ? "/" : pointer}, {"reason", reason}}) {
}

namespace {

constexpr std::size_t kMaxErrors = 20;

// valijson's context is {"<root>", "[name]", "[0]", ...}; a JSON pointer reads better.
std::string pointer_of(const std::vector<std::string>& context) {
    std::string pointer;
    for (const auto& part : context) {
        if (part == "<root>") continue;
        std::string inner =
            part.size() >= 2 && part.front() == '[' ? part.substr(1, part.size() - 2) : part;
        if (inner.size() >= 2 && inner.front() == '"') inner = inner.substr(1, inner.size() - 2);
        pointer += "/" + mq::json_pointer_token(inner);
    }
    return pointer.empty() ? "/" : pointer;
}

// ---- limits that hold before anything recursive touches a value ----------------------------

// Deeper than `max` without recursion (nlohmann's parser and destructor are iterative; its
// copy, dump and comparison are not).
bool deeper_than(const json& value, std::size_t max) {
    std::vector<std::pair<const json*, std::size_t>> stack{{&value, 1}};
    while (!stack.empty()) {
        auto [v, depth] = stack.back();
        stack.pop_back();
        if (!v->is_structured()) continue;
        if (depth > max) return true;
        for (const auto& child : *v)
            if (child.is_structured()) stack.emplace_back(&child, depth + 1);
    }
    return false;
}

// The same on JSON text, before it is parsed: brackets outside strings.
bool text_deeper_than(std::string_view text, std::size_t max) {
    std::size_t depth = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) return true;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return false;
}

// ---- the step budget of one check ----------------------------------------------------------

struct BudgetExceeded {
    std::string what;
};

struct Budget {
    std::uint64_t steps = 0;
    std::chrono::steady_clock::time_point deadline;
};
thread_local Budget* current_budget = nullptr;

// Sets the budget of the checks on this thread for its lifetime (nested checks share it).
class BudgetScope {
  public:
    BudgetScope() : outer_(current_budget) {
        if (!outer_) {
            budget_.deadline = std::chrono::steady_clock::now() + Limits::kMaxTime;
            current_budget = &budget_;
        }
    }
    ~BudgetScope() {
        if (!outer_) current_budget = nullptr;
    }
    BudgetScope(const BudgetScope&) = delete;
    BudgetScope& operator=(const BudgetScope&) = delete;

  private:
    Budget* outer_;
    Budget budget_;
};

void spend_step() {
    Budget* b = current_budget;
    if (!b) return;
    if (++b->steps > Limits::kMaxSteps)
        throw BudgetExceeded{"checking it took more than " + std::to_string(Limits::kMaxSteps) +
                             " steps"};
    if ((b->steps & 255) == 0 && std::chrono::steady_clock::now() > b->deadline)
        throw BudgetExceeded{"checking it took longer than " +
                             std::to_string(Limits::kMaxTime.count()) + " ms"};
}

// ---- what the rewrite hands to our constraints ---------------------------------------------

struct PatternProperties {
    std::vector<std::string> named;  // keys of "properties": never "additional"
    std::vector<std::pair<std::size_t, std::string>> patterns;  // regex index, subschema pointer
    std::optional<std::string> additional;                      // subschema pointer
};

}  // namespace

/// The RE2 programs and subschemas our constraints use, shared by every valijson::Schema of
/// one PayloadSchema (declared before them: destroyed after them).
struct CompiledParts {
    std::vector<std::unique_ptr<re2::RE2>> regexes;
    std::vector<PatternProperties> pattern_properties;
    std::map<std::string, std::unique_ptr<valijson::Schema>> subschemas;  // by (new) pointer
};

class PayloadSchemaImpl {
  public:
    CompiledParts parts;
    valijson::Schema schema;
};

namespace {

// ---- our constraints -----------------------------------------------------------------------

template <class Self>
class Poly : public valijson::constraints::PolyConstraint {
  private:
    valijson::constraints::Constraint* cloneInto(void* where) const override {
        return new (where) Self(static_cast<const Self&>(*this));
    }
    size_t sizeOf() const override { return sizeof(Self); }
};

void fail(valijson::ValidationResults* results, const std::vector<std::string>& context,
          const std::string& message) {
    if (results) results->pushError(context, message);
}

class StepConstraint : public Poly<StepConstraint> {
  public:
    bool validate(const valijson::adapters::Adapter&, const std::vector<std::string>&,
                  valijson::ValidationResults*) const override {
        spend_step();
        return true;
    }
};

class PatternConstraint : public Poly<PatternConstraint> {
  public:
    PatternConstraint(const CompiledParts* parts, std::size_t index)
        : parts_(parts), index_(index) {}
    bool validate(const valijson::adapters::Adapter& target,
                  const std::vector<std::string>& context,
                  valijson::ValidationResults* results) const override {
        if (!target.isString()) return true;
        const auto& re = *parts_->regexes.at(index_);
        if (re2::RE2::PartialMatch(target.getString(), re)) return true;
        fail(results, context, "does not match the pattern " + re.pattern());
        return false;
    }

  private:
    const CompiledParts* parts_;
    std::size_t index_;
};

// RFC 3339 full-date, full-time and date-time (what draft 7 means by these formats), read by
// hand: linear, and the day is checked against the month and leap years.
bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
    if (at + n > s.size()) return false;
    out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

bool is_full_date(std::string_view s) {
    int y = 0, m = 0, d = 0;
    if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
    if (!digits(s, 0, 4, y) || !digits(s, 5, 2, m) || !digits(s, 8, 2, d)) return false;
    if (m < 1 || m > 12 || d < 1) return false;
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= kDays[m - 1] + (m == 2 && leap ? 1 : 0);
}

bool is_full_time(std::string_view s) {
    int h = 0, mi = 0, sec = 0;
    if (s.size() < 9 || s[2] != ':' || s[5] != ':') return false;
    if (!digits(s, 0, 2, h) || !digits(s, 3, 2, mi) || !digits(s, 6, 2, sec)) return false;
    if (h > 23 || mi > 59 || sec > 60) return false;
    std::size_t i = 8;
    if (i < s.size() && s[i] == '.') {
        std::size_t start = ++i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        if (i == start) return false;
    }
    std::string_view zone = s.substr(i);
    if (zone == "Z" || zone == "z") return true;
    int oh = 0, om = 0;
    return zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':' &&
           digits(zone, 1, 2, oh) && digits(zone, 4, 2, om) && oh <= 23 && om <= 59;
}

bool is_date_time(std::string_view s) {
    return s.size() > 11 && (s[10] == 'T' || s[10] == 't') && is_full_date(s.substr(0, 10)) &&
           is_full_time(s.substr(11));
}

class FormatConstraint : public Poly<FormatConstraint> {
  public:
    enum Kind { kDate, kTime, kDateTime };
    explicit FormatConstraint(Kind kind) : kind_(kind) {}
    bool validate(const valijson::adapters::Adapter& target,
                  const std::vector<std::string>& context,
                  valijson::ValidationResults* results) const override {
        if (!target.isString()) return true;
        std::string s = target.getString();
        bool ok = kind_ == kDate   ? is_full_date(s)
                  : kind_ == kTime ? is_full_time(s)
                                   : is_date_time(s);
        if (ok) return true;
        fail(results, context,
             std::string("is not a valid ") +
                 (kind_ == kDate   ? "date"
                  : kind_ == kTime ? "time"
                                   : "date-time") +
                 " (RFC 3339)");
        return false;
    }

  private:
    Kind kind_;
};

// An instance value as nlohmann JSON, so uniqueItems can sort instead of comparing pairs.
// Depth is bounded by kMaxPayloadDepth (checked before validation).
json to_json(const valijson::adapters::Adapter& v) {
    if (v.isObject()) {
        json out = json::object();
        v.applyToObject([&out](const std::string& k, const valijson::adapters::Adapter& m) {
            out[k] = to_json(m);
            return true;
        });
        return out;
    }
    if (v.isArray()) {
        json out = json::array();
        v.applyToArray([&out](const valijson::adapters::Adapter& m) {
            out.push_back(to_json(m));
            return true;
        });
        return out;
    }
    if (v.isString()) return v.getString();
    if (v.isBool()) return v.getBool();
    if (v.isInteger()) return v.getInteger();
    if (v.isNumber()) return v.getNumber();
    return nullptr;
}

class UniqueItemsConstraint : public Poly<UniqueItemsConstraint> {
  public:
    bool validate(const valijson::adapters::Adapter& target,
                  const std::vector<std::string>& context,
                  valijson::ValidationResults* results) const override {
        if (!target.isArray()) return true;
        std::size_t n = target.getArraySize();
        if (n > Limits::kMaxUniqueItems) {
            fail(results, context,
                 "has " + std::to_string(n) +
                     " items; uniqueItems is checked on arrays of at most " +
                     std::to_string(Limits::kMaxUniqueItems));
            return false;
        }
        json items = to_json(target);
        std::vector<std::size_t> order(items.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(),
                  [&items](std::size_t a, std::size_t b) { return items[a] < items[b]; });
        for (std::size_t i = 1; i < order.size(); ++i) {
            if (items[order[i - 1]] == items[order[i]]) {
                std::size_t a = std::min(order[i - 1], order[i]),
                            b = std::max(order[i - 1], order[i]);
                fail(results, context,
                     "items " + std::to_string(a) + " and " + std::to_string(b) +
                         " are equal; uniqueItems requires distinct items");
                return false;
            }
        }
        return true;
    }
};

// Runs `schema` on `value` (an object member) and copies its errors under `context`/name.
bool run_subschema(const valijson::Schema& schema, const valijson::adapters::Adapter& value,
                   const std::vector<std::string>& context, const std::string& name,
                   valijson::ValidationResults* results) {
    const auto* concrete = dynamic_cast<const valijson::adapters::NlohmannJsonAdapter*>(&value);
    if (!concrete) {  // we only validate nlohmann values; refuse rather than guess
        fail(results, context, "cannot check property '" + name + "'");
        return false;
    }
    valijson::Validator validator;
    if (!results) return validator.validate(schema, *concrete, nullptr);
    valijson::ValidationResults inner;
    if (validator.validate(schema, *concrete, &inner)) return true;
    valijson::ValidationResults::Error err;
    while (inner.popError(err)) {
        std::vector<std::string> where = context;
        where.push_back("[" + name + "]");
        for (std::size_t i = 1; i < err.context.size(); ++i) where.push_back(err.context[i]);
        results->pushError(where, err.description);
    }
    return false;
}

class PatternPropertiesConstraint : public Poly<PatternPropertiesConstraint> {
  public:
    PatternPropertiesConstraint(const CompiledParts* parts, std::size_t index)
        : parts_(parts), index_(index) {}
    bool validate(const valijson::adapters::Adapter& target,
                  const std::vector<std::string>& context,
                  valijson::ValidationResults* results) const override {
        if (!target.isObject()) return true;
        const auto& spec = parts_->pattern_properties.at(index_);
        bool ok = true;
        target.applyToObject([&](const std::string& name, const valijson::adapters::Adapter& v) {
            bool matched =
                std::find(spec.named.begin(), spec.named.end(), name) != spec.named.end();
            for (const auto& [regex, pointer] : spec.patterns) {
                if (!re2::RE2::PartialMatch(name, *parts_->regexes.at(regex))) continue;
                matched = true;
                if (!run_subschema(*parts_->subschemas.at(pointer), v, context, name, results))
                    ok = false;
                if (!ok && !results) return false;
            }
            if (!matched && spec.additional &&
                !run_subschema(*parts_->subschemas.at(*spec.additional), v, context, name,
                               results)) {
                ok = false;
                if (!results) return false;
            }
            return true;
        });
        return ok;
    }

  private:
    const CompiledParts* parts_;
    std::size_t index_;
};

template <class Make>
class Builder : public valijson::ConstraintBuilder {
  public:
    explicit Builder(Make make) : make_(std::move(make)) {}
    valijson::constraints::Constraint* make(
        const valijson::adapters::Adapter& value) const override {
        return make_(value);
    }

  private:
    Make make_;
};

std::size_t index_of(const valijson::adapters::Adapter& value, std::size_t size) {
    std::int64_t i = 0;
    if (!value.getInteger(i) || i < 0 || static_cast<std::size_t>(i) >= size)
        throw SchemaInvalid("", "internal keyword out of range");
    return static_cast<std::size_t>(i);
}

// ---- checking and rewriting a schema document ----------------------------------------------

// One place a schema stands, by its pointer in the tenant's document.
struct Node {
    std::string new_pointer;
    std::vector<std::string> in_place;  // applied to the same value: allOf, not, $ref, ...
};

class Vetting {
  public:
    Vetting(const json& root, CompiledParts& parts) : root_(root), parts_(parts) {}

    json run() {
        json out;
        walk(root_, "", "", out);
        resolve_refs(out);
        check_cycles_and_fan_out();
        return out;
    }

  private:
    const json& root_;
    CompiledParts& parts_;
    std::map<std::string, Node> nodes_;  // by old pointer
    struct Ref {
        std::string at;      // old pointer of the object holding $ref
        std::string target;  // old pointer it names
    };
    std::vector<Ref> refs_;
    std::size_t ref_count_ = 0;

    std::size_t compile_regex(const std::string& pattern, const std::string& where) {
        if (parts_.regexes.size() >= Limits::kMaxPatterns)
            throw SchemaInvalid(where,
                                "more than " + std::to_string(Limits::kMaxPatterns) + " patterns");
        re2::RE2::Options options;
        options.set_log_errors(false);
        options.set_never_capture(true);
        options.set_max_mem(1 << 20);
        auto re = std::make_unique<re2::RE2>(pattern, options);
        if (!re->ok())
            throw SchemaInvalid(where, "pattern '" + printable(pattern) +
                                           "' is not supported: " + re->error() +
                                           " (patterns run on RE2: no backreferences or "
                                           "lookaround)");
        parts_.regexes.push_back(std::move(re));
        return parts_.regexes.size() - 1;
    }

    // Walks a map of name -> schema (properties, definitions, ...).
    void walk_map(const json& v, const std::string& at, const std::string& new_at, json& out,
                  const char* keyword, std::vector<std::string>* in_place) {
        if (!v.is_object()) throw SchemaInvalid(at, std::string(keyword) + " must be an object");
        out = json::object();
        for (const auto& [name, child] : v.items()) {
            std::string seg = "/" + mq::json_pointer_token(name);
            walk(child, at + seg, new_at + seg, out[name]);
            if (in_place) in_place->push_back(at + seg);
        }
    }

    void walk(const json& v, const std::string& at, const std::string& new_at, json& out) {
        Node& node = nodes_[at];
        node.new_pointer = new_at;
        if (v.is_boolean()) {
            out = v;
            return;
        }
        if (!v.is_object())
            throw SchemaInvalid(
                at,
                std::string("expected a schema (an object or true/false), got ") + v.type_name());
        out = json::object();
        if (auto it = v.find("$ref"); it != v.end()) {
            // Draft 7: the other keywords beside "$ref" are ignored; definitions stay reachable.
            if (!it->is_string()) throw SchemaInvalid(at + "/$ref", "$ref must be a string");
            if (++ref_count_ > Limits::kMaxRefs)
                throw SchemaInvalid(at, "more than " + std::to_string(Limits::kMaxRefs) + " $refs");
            std::string target = parse_ref(it->get<std::string>(), at + "/$ref");
            out["$ref"] = nullptr;  // filled in by resolve_refs
            nodes_[at].in_place.push_back(target);
            refs_.push_back({at, target});
            if (auto d = v.find("definitions"); d != v.end())
                walk_map(*d, at + "/definitions", new_at + "/definitions", out["definitions"],
                         "definitions", nullptr);
            return;
        }
        std::vector<std::string> in_place;
        json all_of = json::array({json{{"x-mq-budget", 0}}});
        const json* pattern_properties = nullptr;
        for (const auto& [key, child] : v.items()) {
            const std::string k_at = at + "/" + mq::json_pointer_token(key);
            const std::string k_new = new_at + "/" + mq::json_pointer_token(key);
            if (key.rfind("x-mq-", 0) == 0)
                throw SchemaInvalid(k_at, "keywords starting with x-mq- are reserved");
            if (key == "additionalProperties" && v.contains("patternProperties")) {
                continue;  // rewrite_pattern_properties takes it
            } else if (key == "allOf" || key == "anyOf" || key == "oneOf") {
                if (!child.is_array() || child.empty())
                    throw SchemaInvalid(k_at, key + " must be a non-empty array of schemas");
                json& list = key == "allOf" ? all_of : out[key];
                if (key != "allOf") list = json::array();
                const std::size_t shift = key == "allOf" ? 1 : 0;  // after the step counter
                for (std::size_t i = 0; i < child.size(); ++i) {
                    std::string seg = "/" + std::to_string(i);
                    list.push_back(nullptr);
                    walk(child[i], k_at + seg, k_new + "/" + std::to_string(i + shift),
                         list.back());
                    in_place.push_back(k_at + seg);
                }
            } else if (key == "not" || key == "if" || key == "then" || key == "else") {
                walk(child, k_at, k_new, out[key]);
                in_place.push_back(k_at);
            } else if (key == "additionalProperties" || key == "additionalItems" ||
                       key == "contains" || key == "propertyNames") {
                walk(child, k_at, k_new, out[key]);
            } else if (key == "items") {
                if (child.is_array()) {
                    out[key] = json::array();
                    for (std::size_t i = 0; i < child.size(); ++i) {
                        out[key].push_back(nullptr);
                        std::string seg = "/" + std::to_string(i);
                        walk(child[i], k_at + seg, k_new + seg, out[key].back());
                    }
                } else {
                    walk(child, k_at, k_new, out[key]);
                }
            } else if (key == "properties" || key == "definitions") {
                walk_map(child, k_at, k_new, out[key], key.c_str(), nullptr);
            } else if (key == "patternProperties") {
                pattern_properties = &child;
            } else if (key == "dependencies") {
                if (!child.is_object()) throw SchemaInvalid(k_at, "dependencies must be an object");
                out[key] = json::object();
                for (const auto& [name, dep] : child.items()) {
                    std::string seg = "/" + mq::json_pointer_token(name);
                    if (dep.is_array()) {
                        out[key][name] = dep;
                    } else {
                        walk(dep, k_at + seg, k_new + seg, out[key][name]);
                        in_place.push_back(k_at + seg);
                    }
                }
            } else if (key == "pattern") {
                if (!child.is_string()) throw SchemaInvalid(k_at, "pattern must be a string");
                out["x-mq-pattern"] = compile_regex(child.get<std::string>(), k_at);
            } else if (key == "format") {
                if (!child.is_string()) throw SchemaInvalid(k_at, "format must be a string");
                const auto& f = child.get_ref<const std::string&>();
                // Other formats are annotations, as valijson treats them.
                if (f == "date") out["x-mq-format"] = 0;
                if (f == "time") out["x-mq-format"] = 1;
                if (f == "date-time") out["x-mq-format"] = 2;
            } else if (key == "uniqueItems") {
                if (!child.is_boolean()) throw SchemaInvalid(k_at, "uniqueItems must be a boolean");
                if (child.get<bool>()) out["x-mq-unique-items"] = 0;
            } else if (key == "id") {
                // valijson reads "id" as a new base URI for $refs; ours always name this document
            } else {
                out[key] = child;
            }
        }
        if (pattern_properties) rewrite_pattern_properties(v, *pattern_properties, at, new_at, out);
        out["allOf"] = std::move(all_of);
        nodes_[at].in_place = std::move(in_place);
    }

    // patternProperties and additionalProperties go to our constraint together (which member
    // is "additional" depends on the patterns); properties stay with valijson.
    void rewrite_pattern_properties(const json& v, const json& pp, const std::string& at,
                                    const std::string& new_at, json& out) {
        const std::string pp_at = at + "/patternProperties";
        if (!pp.is_object()) throw SchemaInvalid(pp_at, "patternProperties must be an object");
        PatternProperties spec;
        if (auto p = v.find("properties"); p != v.end() && p->is_object())
            for (const auto& [name, _] : p->items()) spec.named.push_back(name);
        json kept = json::object();
        for (const auto& [pattern, child] : pp.items()) {
            std::string seg = "/" + mq::json_pointer_token(pattern);
            walk(child, pp_at + seg, new_at + "/x-mq-subschemas/p" + seg, kept[pattern]);
            spec.patterns.emplace_back(compile_regex(pattern, pp_at + seg),
                                       new_at + "/x-mq-subschemas/p" + seg);
        }
        // The subschemas live under a key no keyword reads, so $refs and our compiler find
        // them at a stable pointer.
        json holder = json::object();
        holder["p"] = std::move(kept);
        if (auto a = v.find("additionalProperties"); a != v.end()) {
            walk(*a, at + "/additionalProperties", new_at + "/x-mq-subschemas/a", holder["a"]);
            spec.additional = new_at + "/x-mq-subschemas/a";
        }
        out["x-mq-subschemas"] = std::move(holder);
        parts_.pattern_properties.push_back(std::move(spec));
        out["x-mq-pattern-properties"] = parts_.pattern_properties.size() - 1;
    }

    static std::string parse_ref(const std::string& ref, const std::string& where) {
        if (ref.empty() || ref[0] != '#')
            throw SchemaInvalid(where, "remote $ref '" + printable(ref) +
                                           "' is not allowed; only local ones (\"#/...\")");
        std::string fragment = ref.substr(1);
        if (!fragment.empty() && fragment[0] != '/')
            throw SchemaInvalid(where, "$ref '" + printable(ref) +
                                           "' is not a JSON pointer (\"#/definitions/name\")");
        // Tokens: ~1 -> '/', ~0 -> '~', then %XX (as valijson reads them).
        std::string canonical;
        std::size_t pos = 1;
        while (pos <= fragment.size() && !fragment.empty()) {
            std::size_t end = fragment.find('/', pos);
            if (end == std::string::npos) end = fragment.size();
            std::string token = fragment.substr(pos, end - pos), decoded;
            for (std::size_t i = 0; i < token.size(); ++i) {
                if (token[i] == '~' && i + 1 < token.size() &&
                    (token[i + 1] == '0' || token[i + 1] == '1')) {
                    decoded += token[i + 1] == '1' ? '/' : '~';
                    ++i;
                } else {
                    decoded += token[i];
                }
            }
            std::string plain;
            for (std::size_t i = 0; i < decoded.size(); ++i) {
                if (decoded[i] == '%') {
                    if (i + 2 >= decoded.size() ||
                        !std::isxdigit(static_cast<unsigned char>(decoded[i + 1])) ||
                        !std::isxdigit(static_cast<unsigned char>(decoded[i + 2])))
                        throw SchemaInvalid(where,
                                            "$ref '" + printable(ref) + "' has a bad %-escape");
                    plain += static_cast<char>(std::stoi(decoded.substr(i + 1, 2), nullptr, 16));
                    i += 2;
                } else {
                    plain += decoded[i];
                }
            }
            canonical += "/" + mq::json_pointer_token(plain);
            pos = end + 1;
        }
        return canonical;
    }

    void resolve_refs(json& out) {
        for (auto& ref : refs_) {
            auto it = nodes_.find(ref.target);
            if (it == nodes_.end())
                throw SchemaInvalid(
                    ref.at + "/$ref",
                    "$ref '#" + ref.target + "' does not name a schema in this document");
            // valijson %-decodes the tokens: keep a literal '%' literal.
            std::string encoded;
            for (char c : it->second.new_pointer)
                encoded += c == '%' ? std::string("%25") : std::string(1, c);
            json::json_pointer ptr(nodes_.at(ref.at).new_pointer);
            out.at(ptr)["$ref"] = "#" + encoded;
        }
    }

    // A cycle of schemas applied to the same value ({"$ref": "#"}, a -> b -> a, allOf back to
    // an ancestor) would recurse forever: refused, as is a fan-out beyond kMaxFanOut. A cycle
    // through properties/items is a recursive schema: it ends with the payload's depth.
    void check_cycles_and_fan_out() {
        enum Color { kWhite, kGray, kBlack };
        std::map<std::string, Color> color;
        std::map<std::string, std::size_t> fan_out;
        for (const auto& [start, _] : nodes_) {
            if (color[start] != kWhite) continue;
            std::vector<std::pair<std::string, std::size_t>> stack{{start, 0}};
            color[start] = kGray;
            while (!stack.empty()) {
                auto& [name, next] = stack.back();
                const auto& edges = nodes_.at(name).in_place;
                if (next < edges.size()) {
                    std::string to = edges[next++];
                    Color c = color[to];
                    if (c == kGray) {
                        std::string path;
                        bool on = false;
                        for (const auto& [n, __] : stack) {
                            if (n == to) on = true;
                            if (on) path += (n.empty() ? "#" : "#" + n) + " -> ";
                        }
                        path += to.empty() ? "#" : "#" + to;
                        throw SchemaInvalid(name, "$ref cycle: " + path +
                                                      " (a schema may not apply itself to the "
                                                      "same value)");
                    }
                    if (c == kWhite) {
                        color[to] = kGray;
                        stack.emplace_back(to, 0);
                    }
                    continue;
                }
                std::size_t total = 1;
                for (const auto& to : edges)
                    total = std::min(total + fan_out[to], Limits::kMaxFanOut + 1);
                if (total > Limits::kMaxFanOut)
                    throw SchemaInvalid(name,
                                        "applies more than " + std::to_string(Limits::kMaxFanOut) +
                                            " subschemas to one value (allOf/anyOf/oneOf/$ref "
                                            "expanded)");
                fan_out[name] = total;
                color[name] = kBlack;
                stack.pop_back();
            }
        }
    }
};

// The parser owns (and deletes) its builders.
void register_keywords(valijson::SchemaParser& parser, const CompiledParts* parts) {
    auto add = [&](const char* keyword, auto make) {
        auto builder = std::make_unique<Builder<decltype(make)>>(make);
        parser.addConstraintBuilder(keyword, builder.get());
        builder.release();
    };
    add("x-mq-budget",
        [](const valijson::adapters::Adapter&) -> valijson::constraints::Constraint* {
            return new StepConstraint();
        });
    add("x-mq-pattern",
        [parts](const valijson::adapters::Adapter& v) -> valijson::constraints::Constraint* {
            return new PatternConstraint(parts, index_of(v, parts->regexes.size()));
        });
    add("x-mq-format",
        [](const valijson::adapters::Adapter& v) -> valijson::constraints::Constraint* {
            return new FormatConstraint(static_cast<FormatConstraint::Kind>(index_of(v, 3)));
        });
    add("x-mq-unique-items",
        [](const valijson::adapters::Adapter&) -> valijson::constraints::Constraint* {
            return new UniqueItemsConstraint();
        });
    add("x-mq-pattern-properties",
        [parts](const valijson::adapters::Adapter& v) -> valijson::constraints::Constraint* {
            return new PatternPropertiesConstraint(parts,
                                                   index_of(v, parts->pattern_properties.size()));
        });
}

// Compiles `doc` (rewritten) into `schema`, starting at `pointer` ("" for the root).
void compile(const json& doc, const std::string& pointer, const CompiledParts* parts,
             valijson::Schema& schema) {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    register_keywords(parser, parts);
    if (pointer.empty()) {
        valijson::adapters::NlohmannJsonAdapter adapter(doc);
        parser.populateSchema(adapter, schema);
        return;
    }
    // The same document with its root naming the subschema, so its $refs still resolve.
    json rooted = doc;
    std::string encoded;
    for (char c : pointer) encoded += c == '%' ? std::string("%25") : std::string(1, c);
    rooted["$ref"] = "#" + encoded;
    valijson::adapters::NlohmannJsonAdapter adapter(rooted);
    parser.populateSchema(adapter, schema);
}

std::string first_error_text(const std::exception& e) { return printable(e.what()); }

}  // namespace

void check_payload_schema_depth(const json& schema) {
    if (deeper_than(schema, Limits::kMaxDepth))
        throw SchemaInvalid("",
                            "nested deeper than " + std::to_string(Limits::kMaxDepth) + " levels");
}

PayloadSchema::PayloadSchema(const json& schema) : impl_(std::make_unique<PayloadSchemaImpl>()) {
    if (!schema.is_object())
        throw SchemaInvalid("", std::string("expected a JSON object, got ") + schema.type_name());
    check_payload_schema_depth(schema);
    if (schema.dump(-1, ' ', false, json::error_handler_t::replace).size() > Limits::kMaxBytes)
        throw SchemaInvalid("", "larger than " + std::to_string(Limits::kMaxBytes / 1024) + " KiB");
    json rewritten = Vetting(schema, impl_->parts).run();
    try {
        compile(rewritten, "", &impl_->parts, impl_->schema);
        for (const auto& spec : impl_->parts.pattern_properties) {
            std::vector<std::string> pointers;
            for (const auto& [_, p] : spec.patterns) pointers.push_back(p);
            if (spec.additional) pointers.push_back(*spec.additional);
            for (const auto& p : pointers) {
                if (impl_->parts.subschemas.count(p)) continue;
                auto sub = std::make_unique<valijson::Schema>();
                compile(rewritten, p, &impl_->parts, *sub);
                impl_->parts.subschemas.emplace(p, std::move(sub));
            }
        }
    } catch (const SchemaInvalid&) {
        throw;
    } catch (const std::exception& e) {
        throw SchemaInvalid("", "not a valid JSON Schema (draft 7): " + first_error_text(e));
    }
}

PayloadSchema::~PayloadSchema() = default;

void PayloadSchema::check(std::string_view payload) const {
    if (text_deeper_than(payload, Limits::kMaxPayloadDepth))
        throw ValidationError("payload is nested deeper than " +
                                  std::to_string(Limits::kMaxPayloadDepth) +
                                  " levels; the queue's schema cannot check it",
                              {{"field", "payload"}});
    json value = json::parse(payload.begin(), payload.end(), nullptr, false);
    if (value.is_discarded())
        throw Error(
            ErrorCode::kSchemaValidation,
            "payload does not match the queue's schema: it is not JSON",
            {{"errors", json::array({{{"path", "/"}, {"message", "payload is not valid JSON"}}})}});
    check_value(value);
}

void PayloadSchema::check_value(const json& value) const {
    if (deeper_than(value, Limits::kMaxPayloadDepth))
        throw ValidationError("payload is nested deeper than " +
                                  std::to_string(Limits::kMaxPayloadDepth) +
                                  " levels; the queue's schema cannot check it",
                              {{"field", "payload"}});
    valijson::Validator validator;
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter target(value);
    bool ok = false;
    try {
        BudgetScope budget;
        ok = validator.validate(impl_->schema, target, &results);
    } catch (const BudgetExceeded& e) {
        throw Error(ErrorCode::kSchemaValidation,
                    "payload does not match the queue's schema: " + e.what,
                    {{"errors", json::array({{{"path", "/"}, {"message", e.what}}})}});
    } catch (const std::exception& e) {
        throw Error(ErrorCode::kSchemaValidation, "payload does not match the queue's schema",
                    {{"errors", json::array({{{"path", "/"}, {"message", printable(e.what())}}})}});
    }
    if (ok) return;
    // valijson lists every failing rule, outermost first ("failed to validate against
    // properties"); the deepest say what to fix, so they go first. "Failed to validate against
    // child schema #n" only repeats what its child said (and counts our step counter).
    struct Found {
        std::string path;
        std::string message;
        std::size_t depth;
    };
    std::vector<Found> found, wrappers;
    valijson::ValidationResults::Error err;
    while (results.popError(err)) {
        std::string path = pointer_of(err.context);
        std::size_t depth =
            path == "/" ? 0 : static_cast<std::size_t>(std::count(path.begin(), path.end(), '/'));
        bool wrapper = err.description.rfind("Failed to validate against child schema #", 0) == 0;
        (wrapper ? wrappers : found)
            .push_back({std::move(path), std::move(err.description), depth});
    }
    if (found.empty()) found = std::move(wrappers);
    std::stable_sort(found.begin(), found.end(),
                     [](const Found& a, const Found& b) { return a.depth > b.depth; });
    json errors = json::array();
    for (std::size_t i = 0; i < found.size() && i < kMaxErrors; ++i)
        errors.push_back({{"path", found[i].path}, {"message", found[i].message}});
    std::string first =
        found.empty() ? "" : ": " + found.front().path + ": " + found.front().message;
    throw Error(ErrorCode::kSchemaValidation, "payload does not match the queue's schema" + first,
                {{"errors", errors}});
}

void validate_payload_schema(const json& schema) {
    if (!schema.is_null()) PayloadSchema{schema};
}

json parse_payload_schema(std::string_view text, const std::string& name) {
    if (text.size() > Limits::kMaxBytes * 4)  // whitespace is free; the compact form is checked
        throw SchemaInvalid(
            "", name + " is larger than " + std::to_string(Limits::kMaxBytes * 4 / 1024) + " KiB");
    if (text_deeper_than(text, Limits::kMaxDepth))
        throw SchemaInvalid(
            "", name + " is nested deeper than " + std::to_string(Limits::kMaxDepth) + " levels");
    json schema;
    try {
        schema = json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {
        throw ValidationError(name + " is not JSON: " + printable(e.what()), {{"field", "schema"}});
    }
    validate_payload_schema(schema);
    if (schema.is_null()) throw SchemaInvalid("", name + " is null; a schema is a JSON object");
    return schema;
}

std::shared_ptr<const PayloadSchema> PayloadSchemaCache::get(const Queue& q) {
    if (q.schema.is_null()) return nullptr;
    std::lock_guard lock(mu_);
    auto& slot = by_queue_[q.id];
    // updated_at has millisecond precision; comparing the document too catches two
    // changes within one millisecond (cheap next to validating a payload).
    if (!slot.compiled || slot.updated_at != q.updated_at || slot.source != q.schema) {
        slot.compiled = std::make_shared<const PayloadSchema>(q.schema);
        slot.updated_at = q.updated_at;
        slot.source = q.schema;
    }
    return slot.compiled;
}

}  // namespace mq
