#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "mq/error.hpp"
#include "mq/queue/queue.hpp"

namespace mq {

class PayloadSchemaImpl;

/// What a queue schema may be and what checking one payload may cost. Schemas come from
/// tenants: every limit here keeps one tenant from stalling or crashing the process for all
/// (docs/security.md, "Untrusted schemas and YAML").
struct PayloadSchemaLimits {
    static constexpr std::size_t kMaxBytes = 64 * 1024;  ///< the schema as compact JSON
    static constexpr std::size_t kMaxDepth = 32;         ///< JSON nesting of the schema document
    static constexpr std::size_t kMaxRefs = 100;         ///< "$ref"s in one schema
    static constexpr std::size_t kMaxPatterns = 256;     ///< pattern + patternProperties keys
    /// Subschemas applied to one value without descending into it (allOf/anyOf/oneOf/not/
    /// if/then/else/dependencies/$ref, expanded): bounds the work per payload node.
    static constexpr std::size_t kMaxFanOut = 1000;
    static constexpr std::size_t kMaxPayloadDepth = 64;    ///< JSON nesting of a checked payload
    static constexpr std::size_t kMaxUniqueItems = 10000;  ///< array size `uniqueItems` checks
    /// Subschema visits for one payload, and the wall-clock time of one check.
    static constexpr std::uint64_t kMaxSteps = 5'000'000;
    static constexpr std::chrono::milliseconds kMaxTime{2000};
};

/// A queue schema that mq refuses to store or run: not a JSON Schema, or beyond a limit
/// (a $ref cycle, a remote $ref, too large or deep, a pattern RE2 cannot run). Code
/// kSchemaInvalid (HTTP 422 MQ_SCHEMA_INVALID, exit 2); details {"field": "schema",
/// "pointer": "/where/in/the/schema", "reason": ...}.
class SchemaInvalid : public Error {
  public:
    SchemaInvalid(const std::string& pointer, const std::string& reason);
};

/// A queue's JSON Schema (Draft 7, valijson), compiled once and checked per publish.
/// `pattern`, `patternProperties` and `format` run on RE2 and our own code (never std::regex),
/// and every check is bounded by PayloadSchemaLimits.
class PayloadSchema {
  public:
    /// Compiles `schema`; throws SchemaInvalid when it is not a usable JSON Schema document
    /// (not an object or boolean, a keyword of the wrong type, a $ref that cannot be resolved
    /// locally) or breaks a PayloadSchemaLimits rule.
    explicit PayloadSchema(const nlohmann::json& schema);
    ~PayloadSchema();
    PayloadSchema(const PayloadSchema&) = delete;
    PayloadSchema& operator=(const PayloadSchema&) = delete;

    /// Throws Error(kSchemaValidation, "payload does not match the queue's schema",
    /// {"errors": [{"path": "/a/b", "message": ...}, ...]}) with up to 20 errors, deepest
    /// first; a payload that is not JSON fails with kSchemaValidation too, and so does one
    /// whose check exceeds kMaxSteps or kMaxTime. A payload nested deeper than
    /// kMaxPayloadDepth is a ValidationError (400, field "payload"). Thread-safe.
    void check(std::string_view payload) const;
    /// The same for a value already parsed (a separate name: a std::string argument would
    /// otherwise be ambiguous between the two).
    void check_value(const nlohmann::json& value) const;

  private:
    std::unique_ptr<PayloadSchemaImpl> impl_;
};

/// Compiled schemas by queue, so a publish does not recompile. Keyed by queue id and
/// updated_at: a queue whose schema changed compiles again. Thread-safe.
class PayloadSchemaCache {
  public:
    /// nullptr when the queue has no schema. Throws ValidationError when the stored schema
    /// does not compile (it was validated when set, so only after a manual edit).
    std::shared_ptr<const PayloadSchema> get(const Queue& q);

  private:
    struct Slot {
        std::string updated_at;
        nlohmann::json source;
        std::shared_ptr<const PayloadSchema> compiled;
    };
    std::mutex mu_;
    std::map<std::string, Slot> by_queue_;  ///< by queue id
};

/// Throws SchemaInvalid unless `schema` is null or compiles within the limits.
void validate_payload_schema(const nlohmann::json& schema);

/// Throws SchemaInvalid when `schema` is nested deeper than PayloadSchemaLimits::kMaxDepth
/// (checked without recursion, so before anything copies or prints the value).
void check_payload_schema_depth(const nlohmann::json& schema);

/// Parses a schema document (a --schema-file, a fuzz input) and checks it: the text's depth
/// and size before parsing, then validate_payload_schema. `name` goes into messages.
nlohmann::json parse_payload_schema(std::string_view text, const std::string& name = "schema");

}  // namespace mq
