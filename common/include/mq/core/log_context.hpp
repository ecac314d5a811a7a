#pragma once

// What a log line is about (tenant, queue, subscription, message id, request id), kept per
// thread while a piece of work runs, so a line logged anywhere below carries it without
// every call site repeating it. The JSON format writes it as fields; the text format as a
// short "key=value" suffix (docs/operations.md, "Logs").
//
//     mq::LogScope scope{{"tenant", q.tenant}, {"queue", q.name}};
//     spdlog::warn("...");  // {"time":..., "message":"...", "tenant":"acme", "queue":"orders"}
//
// Loggers format on the calling thread (setup_logging makes synchronous loggers only), so
// the formatter sees the context of the thread that logged.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

namespace mq {

/// One field of a log line: a key and a text or number value. Texts are copied by LogScope,
/// so a temporary is fine.
class LogField {
  public:
    LogField(std::string_view key, std::string_view value) : key_(key), text_(value) {}
    LogField(std::string_view key, const char* value) : key_(key), text_(value ? value : "") {}
    LogField(std::string_view key, const std::string& value) : key_(key), text_(value) {}
    template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                            !std::is_same_v<T, char>,
                                        int> = 0>
    LogField(std::string_view key, T value) : key_(key), number_(true) {
        set_number(std::to_string(value));
    }
    /// A number with three decimals (durations in milliseconds).
    LogField(std::string_view key, double value);

    std::string_view key() const { return key_; }
    std::string_view value() const { return number_ ? std::string_view(digits_, size_) : text_; }
    /// Written without quotes in JSON.
    bool is_number() const { return number_; }

  private:
    void set_number(const std::string& digits);

    std::string_view key_;
    std::string_view text_;
    bool number_ = false;
    char digits_[32] = {};
    std::size_t size_ = 0;
};

/// Adds fields to this thread's log context until the end of the scope (scopes nest; an
/// inner field of the same key wins). Neither copied nor moved: it must end on the thread
/// and in the order it began. Cheap: the thread's storage is reused, so a scope on a hot
/// path allocates nothing once warm.
class LogScope {
  public:
    /// Where a field shows. Fields the text message already says (mq-api's request id and
    /// access-log columns) are for the JSON format only, so text lines stay as they were.
    enum class Show { kEverywhere, kJsonOnly };

    LogScope(std::initializer_list<LogField> fields) : LogScope(Show::kEverywhere, fields) {}
    LogScope(Show show, std::initializer_list<LogField> fields);
    ~LogScope();
    LogScope(const LogScope&) = delete;
    LogScope& operator=(const LogScope&) = delete;

    /// One more field in this scope (e.g. the tenant once a request is authenticated).
    /// Only while this scope is the innermost one of its thread.
    void add(const LogField& field, Show show = Show::kEverywhere);

  private:
    std::size_t restore_;
};

/// One field of the current context, as the formatters read it.
struct LogContextField {
    std::string key;
    std::string value;
    bool number = false;
    bool in_text = true;
};

/// The fields in force on this thread, outermost first, with shadowed keys (an outer field
/// an inner scope redefines) left out. Calls `visit(const LogContextField&)` for each.
template <class Visit>
void for_each_log_field(Visit&& visit);

namespace detail {
/// This thread's context: `size` fields in use at the front of `fields`.
struct LogContextStack {
    LogContextField* fields = nullptr;
    std::size_t size = 0;
};
LogContextStack log_context_stack();
}  // namespace detail

template <class Visit>
void for_each_log_field(Visit&& visit) {
    auto stack = detail::log_context_stack();
    for (std::size_t i = 0; i < stack.size; ++i) {
        bool shadowed = false;
        for (std::size_t j = i + 1; j < stack.size && !shadowed; ++j)
            shadowed = stack.fields[j].key == stack.fields[i].key;
        if (!shadowed) visit(stack.fields[i]);
    }
}

}  // namespace mq
