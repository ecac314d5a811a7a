#include "mq/queue/payload_schema.hpp"

// valijson reports an unusable schema through throwRuntimeError; VALIJSON_USE_EXCEPTIONS
// (set for all of mq_common in common/CMakeLists.txt) makes that an exception instead of
// abort(), which matters here: queue schemas come from users.
#include <algorithm>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>
#include <vector>

#include "mq/error.hpp"

namespace mq {

class PayloadSchemaImpl {
  public:
    valijson::Schema schema;
};

namespace {

constexpr std::size_t kMaxErrors = 20;

std::string escape_pointer(const std::string& key) {
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

// valijson's context is {"<root>", "[\"name\"]", "[0]", ...}; a JSON pointer reads better.
std::string pointer_of(const std::vector<std::string>& context) {
    std::string pointer;
    for (const auto& part : context) {
        if (part == "<root>") continue;
        std::string inner =
            part.size() >= 2 && part.front() == '[' ? part.substr(1, part.size() - 2) : part;
        if (inner.size() >= 2 && inner.front() == '"') inner = inner.substr(1, inner.size() - 2);
        pointer += "/" + escape_pointer(inner);
    }
    return pointer.empty() ? "/" : pointer;
}

ValidationError bad_schema(const std::string& why) {
    return ValidationError("schema is not a valid JSON Schema (draft 7): " + why,
                           {{"field", "schema"}});
}

}  // namespace

PayloadSchema::PayloadSchema(const nlohmann::json& schema)
    : impl_(std::make_unique<PayloadSchemaImpl>()) {
    if (!schema.is_object())
        throw bad_schema(std::string("expected a JSON object, got ") + schema.type_name());
    // Remote references would make a publish fetch URLs; only local ones ("#/...") resolve.
    try {
        valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
        valijson::adapters::NlohmannJsonAdapter adapter(schema);
        parser.populateSchema(adapter, impl_->schema);
    } catch (const std::exception& e) {
        throw bad_schema(e.what());
    }
}

PayloadSchema::~PayloadSchema() = default;

void PayloadSchema::check(std::string_view payload) const {
    nlohmann::json value = nlohmann::json::parse(payload.begin(), payload.end(), nullptr, false);
    if (value.is_discarded())
        throw Error(ErrorCode::kSchemaValidation,
                    "payload does not match the queue's schema: it is not JSON",
                    {{"errors", nlohmann::json::array(
                                    {{{"path", "/"}, {"message", "payload is not valid JSON"}}})}});
    check_value(value);
}

void PayloadSchema::check_value(const nlohmann::json& value) const {
    valijson::Validator validator;
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter target(value);
    bool ok = false;
    try {
        ok = validator.validate(impl_->schema, target, &results);
    } catch (const std::exception& e) {  // e.g. a "pattern" std::regex cannot run
        throw Error(ErrorCode::kSchemaValidation, "payload does not match the queue's schema",
                    {{"errors", nlohmann::json::array({{{"path", "/"}, {"message", e.what()}}})}});
    }
    if (ok) return;
    // valijson lists every failing rule, outermost first ("failed to validate against
    // properties"); the deepest say what to fix, so they go first.
    struct Found {
        std::string path;
        std::string message;
        std::size_t depth;
    };
    std::vector<Found> found;
    valijson::ValidationResults::Error err;
    while (results.popError(err)) {
        std::string path = pointer_of(err.context);
        std::size_t depth =
            path == "/" ? 0 : static_cast<std::size_t>(std::count(path.begin(), path.end(), '/'));
        found.push_back({std::move(path), std::move(err.description), depth});
    }
    std::stable_sort(found.begin(), found.end(),
                     [](const Found& a, const Found& b) { return a.depth > b.depth; });
    nlohmann::json errors = nlohmann::json::array();
    for (std::size_t i = 0; i < found.size() && i < kMaxErrors; ++i)
        errors.push_back({{"path", found[i].path}, {"message", found[i].message}});
    std::string first =
        found.empty() ? "" : ": " + found.front().path + ": " + found.front().message;
    throw Error(ErrorCode::kSchemaValidation, "payload does not match the queue's schema" + first,
                {{"errors", errors}});
}

void validate_payload_schema(const nlohmann::json& schema) {
    if (!schema.is_null()) PayloadSchema{schema};
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
