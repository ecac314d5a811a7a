#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "mq/queue/queue.hpp"

namespace mq {

class PayloadSchemaImpl;

/// A queue's JSON Schema (Draft 7, valijson), compiled once and checked per publish.
class PayloadSchema {
  public:
    /// Compiles `schema`; throws ValidationError (details {"field": "schema"}) when it is
    /// not a usable JSON Schema document (not an object or boolean, a keyword of the wrong
    /// type, a $ref that cannot be resolved locally).
    explicit PayloadSchema(const nlohmann::json& schema);
    ~PayloadSchema();
    PayloadSchema(const PayloadSchema&) = delete;
    PayloadSchema& operator=(const PayloadSchema&) = delete;

    /// Throws Error(kSchemaValidation, "payload does not match the queue's schema",
    /// {"errors": [{"path": "/a/b", "message": ...}, ...]}) with up to 20 errors, deepest
    /// first; a payload that is not JSON fails with kSchemaValidation too. Thread-safe.
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

/// Throws ValidationError (details {"field": "schema"}) unless `schema` is null or compiles.
void validate_payload_schema(const nlohmann::json& schema);

}  // namespace mq
