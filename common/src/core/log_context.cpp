#include "mq/core/log_context.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace mq {

namespace {

// The slots stay allocated when a scope ends: the next scope reuses their strings.
struct ThreadContext {
    std::vector<LogContextField> slots;
    std::size_t size = 0;
};

ThreadContext& thread_context() {
    thread_local ThreadContext context;
    return context;
}

void push(ThreadContext& c, const LogField& field, LogScope::Show show) {
    if (c.size == c.slots.size()) c.slots.emplace_back();
    LogContextField& slot = c.slots[c.size++];
    slot.key.assign(field.key());
    slot.value.assign(field.value());
    slot.number = field.is_number();
    slot.in_text = show == LogScope::Show::kEverywhere;
}

}  // namespace

LogField::LogField(std::string_view key, double value) : key_(key), number_(true) {
    // NaN and infinities are no JSON numbers: written as texts.
    if (!std::isfinite(value)) {
        number_ = false;
        text_ = std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf";
        return;
    }
    char buffer[64];
    int n = std::snprintf(buffer, sizeof buffer, std::fabs(value) < 1e15 ? "%.3f" : "%.6e", value);
    set_number(std::string(buffer, static_cast<std::size_t>(std::max(n, 0))));
}

void LogField::set_number(const std::string& digits) {
    size_ = std::min(digits.size(), sizeof digits_);
    digits.copy(digits_, size_);
}

LogScope::LogScope(Show show, std::initializer_list<LogField> fields)
    : restore_(thread_context().size) {
    auto& c = thread_context();
    try {
        for (const auto& f : fields) push(c, f, show);
    } catch (...) {
        c.size = restore_;  // no destructor runs for a scope that did not begin
        throw;
    }
}

LogScope::~LogScope() { thread_context().size = restore_; }

void LogScope::add(const LogField& field, Show show) { push(thread_context(), field, show); }

namespace detail {
LogContextStack log_context_stack() {
    auto& c = thread_context();
    return {c.slots.data(), c.size};
}
}  // namespace detail

}  // namespace mq
