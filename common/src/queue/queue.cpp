#include "mq/queue/queue.hpp"

#include <algorithm>
#include <limits>

#include "mq/core/names.hpp"
#include "mq/error.hpp"
#include "mq/queue/payload_schema.hpp"

namespace mq {

std::optional<std::int64_t> Queue::max_length_per_partition() const {
    if (!max_length) return std::nullopt;
    return *max_length / partition_count + (*max_length % partition_count != 0);
}

nlohmann::json to_json(const Queue& q) {
    return {{"id", q.id},
            {"tenant", q.tenant},
            {"name", q.name},
            {"description", q.description},
            {"partitions", q.partition_count},
            {"retention_ms", q.retention.count()},
            {"max_length", q.max_length ? nlohmann::json(*q.max_length) : nlohmann::json(nullptr)},
            {"dedup_window_ms", q.dedup_window.count()},
            {"encryption", q.encryption},
            {"is_public", q.is_public},
            {"record_messages", q.record_messages},
            {"allowed_producers", q.allowed_producers},
            {"allowed_consumers", q.allowed_consumers},
            {"schema", q.schema},
            {"durability", q.durability},
            {"status", q.status},
            {"created_at", q.created_at},
            {"updated_at", q.updated_at}};
}

namespace {
void check_partitions(int n) {
    if (n < 1 || n > kMaxPartitions)
        throw ValidationError("partitions must be from 1 to " + std::to_string(kMaxPartitions) +
                                  ", got " + std::to_string(n),
                              {{"field", "partitions"}});
}
void check_positive(std::chrono::milliseconds d, const char* field) {
    if (d.count() <= 0)
        throw ValidationError(std::string(field) + " must be greater than zero",
                              {{"field", field}});
}
void check_description(const std::string& d) {
    if (d.size() > 1024)
        throw ValidationError("description is longer than 1024 bytes", {{"field", "description"}});
}
// Lua numbers are doubles: beyond 2^53 the check in the publish script would be inexact.
constexpr std::int64_t kMaxQueueLength = std::int64_t{1} << 53;
void check_max_length(std::int64_t n) {
    if (n <= 0 || n > kMaxQueueLength)
        throw ValidationError("max length must be from 1 to " + std::to_string(kMaxQueueLength) +
                                  " (omit it for unlimited)",
                              {{"field", "max_length"}});
}
void check_encryption(const std::string& e) {
    if (!is_known_encryption(e))
        throw ValidationError("encryption must be none or aes-256-gcm, got '" + printable(e) + "'",
                              {{"field", "encryption"}});
}
void check_durability(const std::string& d) {
    if (!is_known_durability(d))
        throw ValidationError("durability must be leader or replica, got '" + printable(d) + "'",
                              {{"field", "durability"}});
}

constexpr std::size_t kMaxPrincipals = 100;
constexpr std::size_t kMaxPrincipalLength = 128;

bool principal_char(char c, bool first) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    if (first) return false;
    return c == '.' || c == '_' || c == '@' || c == ':' || c == '/' || c == '+' || c == '-';
}

void check_principals(const std::vector<std::string>& list, const char* field) {
    if (list.size() > kMaxPrincipals)
        throw ValidationError(std::string(field) + " lists more than " +
                                  std::to_string(kMaxPrincipals) + " principals",
                              {{"field", field}});
    for (const auto& p : list) {
        bool ok = !p.empty() && p.size() <= kMaxPrincipalLength;
        for (std::size_t i = 0; ok && i < p.size(); ++i) ok = principal_char(p[i], i == 0);
        if (!ok)
            throw ValidationError(
                std::string(field) + ": '" + printable(p) +
                    "' is not a principal name (1-128 of A-Z a-z 0-9 . _ @ : / + -, "
                    "starting with a letter or digit)",
                {{"field", field}, {"value", printable(p)}});
    }
}

// Schemas live in a jsonb column and are compiled by every publisher: PayloadSchema keeps
// them small, shallow and free of cycles (PayloadSchemaLimits).
void check_schema(const nlohmann::json& schema) { validate_payload_schema(schema); }

}  // namespace

bool is_known_encryption(const std::string& name) {
    return name == "none" || name == "aes-256-gcm";
}

bool is_known_durability(const std::string& name) { return name == "leader" || name == "replica"; }

void validate(const QueueSpec& spec) {
    validate_name("queue name", spec.name);
    check_description(spec.description);
    if (spec.partition_count) check_partitions(*spec.partition_count);
    if (spec.retention) check_positive(*spec.retention, "retention");
    if (spec.dedup_window) check_positive(*spec.dedup_window, "dedup_window");
    if (spec.max_length) check_max_length(*spec.max_length);
    if (spec.max_length && spec.unlimited_length)
        throw ValidationError("give a max length or unlimited, not both",
                              {{"field", "max_length"}});
    if (spec.encryption) check_encryption(*spec.encryption);
    if (spec.durability) check_durability(*spec.durability);
    if (spec.allowed_producers) check_principals(*spec.allowed_producers, "allowed_producers");
    if (spec.allowed_consumers) check_principals(*spec.allowed_consumers, "allowed_consumers");
    check_schema(spec.schema);
}

void validate(const QueueChanges& c) {
    if (c.description) check_description(*c.description);
    if (c.partition_count) check_partitions(*c.partition_count);
    if (c.retention) check_positive(*c.retention, "retention");
    if (c.dedup_window) check_positive(*c.dedup_window, "dedup_window");
    if (c.max_length && *c.max_length) check_max_length(**c.max_length);
    if (c.encryption) check_encryption(*c.encryption);
    if (c.durability) check_durability(*c.durability);
    if (c.allowed_producers) check_principals(*c.allowed_producers, "allowed_producers");
    if (c.allowed_consumers) check_principals(*c.allowed_consumers, "allowed_consumers");
    if (c.schema) check_schema(*c.schema);
}

namespace {

// Field readers for the API bodies: a wrong type names the field and what it should be.
ValidationError wrong_type(const std::string& field, const char* expected,
                           const nlohmann::json& v) {
    return ValidationError(field + " must be " + expected + ", got " + v.type_name(),
                           {{"field", field}});
}

std::string get_string(const nlohmann::json& v, const std::string& field) {
    if (!v.is_string()) throw wrong_type(field, "a string", v);
    return v.get<std::string>();
}

std::int64_t get_int(const nlohmann::json& v, const std::string& field) {
    if (v.is_number_unsigned() &&
        v.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        throw ValidationError(field + " is too large", {{"field", field}});
    if (!v.is_number_integer()) throw wrong_type(field, "an integer", v);
    return v.get<std::int64_t>();
}

int get_partitions(const nlohmann::json& v) {
    std::int64_t n = get_int(v, "partitions");
    if (n < 1 || n > kMaxPartitions)
        throw ValidationError("partitions must be from 1 to " + std::to_string(kMaxPartitions) +
                                  ", got " + std::to_string(n),
                              {{"field", "partitions"}});
    return static_cast<int>(n);
}

std::vector<std::string> get_principals(const nlohmann::json& v, const std::string& field) {
    if (!v.is_array()) throw wrong_type(field, "a list of principal names", v);
    std::vector<std::string> out;
    for (const auto& item : v) {
        if (!item.is_string()) throw wrong_type(field, "a list of principal names (strings)", item);
        const auto& p = item.get_ref<const std::string&>();
        if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    }
    return out;
}

nlohmann::json get_schema(const nlohmann::json& v) {
    if (!v.is_null() && !v.is_object())
        throw wrong_type("schema", "a JSON Schema object or null", v);
    check_payload_schema_depth(v);  // before the copy below recurses into it
    return v;
}

bool get_bool(const nlohmann::json& v, const std::string& field) {
    if (!v.is_boolean()) throw wrong_type(field, "true or false", v);
    return v.get<bool>();
}

void require_object(const nlohmann::json& body) {
    if (!body.is_object())
        throw ValidationError(std::string("the request body must be a JSON object, got ") +
                              body.type_name());
}

ValidationError unknown_field(const std::string& key) {
    return ValidationError(
        "unknown field '" + printable(key) +
            "'; expected name, description, partitions, retention_ms, max_length, "
            "dedup_window_ms, schema, encryption, allowed_producers, "
            "allowed_consumers, is_public, record_messages, durability",
        {{"field", printable(key)}});
}

// Sets the settings both bodies share; false when `key` is not one of them.
template <class Target>
bool read_common(Target& t, const std::string& key, const nlohmann::json& v) {
    if (key == "description")
        t.description = get_string(v, key);
    else if (key == "partitions")
        t.partition_count = get_partitions(v);
    else if (key == "retention_ms")
        t.retention = std::chrono::milliseconds(get_int(v, key));
    else if (key == "dedup_window_ms")
        t.dedup_window = std::chrono::milliseconds(get_int(v, key));
    else if (key == "encryption")
        t.encryption = get_string(v, key);
    else if (key == "allowed_producers")
        t.allowed_producers = get_principals(v, key);
    else if (key == "allowed_consumers")
        t.allowed_consumers = get_principals(v, key);
    else if (key == "is_public")
        t.is_public = get_bool(v, key);
    else if (key == "record_messages")
        t.record_messages = get_bool(v, key);
    else if (key == "durability")
        t.durability = get_string(v, key);
    else
        return false;
    return true;
}

}  // namespace

QueueSpec queue_spec_from_json(const nlohmann::json& body) {
    require_object(body);
    QueueSpec spec;
    bool has_name = false;
    for (const auto& [key, v] : body.items()) {
        if (read_common(spec, key, v)) continue;
        if (key == "name") {
            spec.name = get_string(v, key);
            has_name = true;
        } else if (key == "max_length") {
            if (v.is_null())
                spec.unlimited_length = true;
            else
                spec.max_length = get_int(v, key);
        } else if (key == "schema") {
            spec.schema = get_schema(v);
        } else {
            throw unknown_field(key);
        }
    }
    if (!has_name) throw ValidationError("name is required", {{"field", "name"}});
    validate(spec);
    return spec;
}

QueueChanges queue_changes_from_json(const nlohmann::json& body) {
    require_object(body);
    QueueChanges c;
    for (const auto& [key, v] : body.items()) {
        if (read_common(c, key, v)) continue;
        if (key == "max_length") {
            if (v.is_null())
                c.max_length = std::optional<std::int64_t>();
            else
                c.max_length = get_int(v, key);
        } else if (key == "schema") {
            c.schema = get_schema(v);
        } else if (key == "name") {
            throw ValidationError("a queue cannot be renamed; leave 'name' out of the update",
                                  {{"field", "name"}});
        } else {
            throw unknown_field(key);
        }
    }
    if (c.empty()) throw ValidationError("nothing to update: the body sets no field");
    validate(c);
    return c;
}

}  // namespace mq
