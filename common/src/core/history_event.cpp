#include "mq/core/history_event.hpp"

#include <charconv>

namespace mq {

namespace {

void put(std::vector<std::string>& out, const char* field, const std::string& value) {
    if (value.empty()) return;
    out.emplace_back(field);
    out.push_back(value);
}

std::int64_t number(const std::string& text, std::int64_t fallback) {
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) return fallback;
    return v;
}

}  // namespace

void encode_history_fields(const HistoryEvent& e, std::vector<std::string>& out) {
    put(out, "e", e.kind);
    put(out, "m", e.message_id);
    put(out, "s", e.subscription);
    put(out, "c", e.consumer);
    if (e.attempt > 0) put(out, "a", std::to_string(e.attempt));
    put(out, "o", e.outcome);
    if (e.duration_ms >= 0) put(out, "d", std::to_string(e.duration_ms));
    put(out, "er", e.error.substr(0, HistoryEvent::kMaxError));
    put(out, "pr", e.producer);
    put(out, "k", e.key);
    put(out, "h", e.headers_json);
    if (e.size >= 0) put(out, "sz", std::to_string(e.size));
    put(out, "tr", e.trace_id);
    put(out, "sid", e.stream_id);
    put(out, "x", e.detail);
}

HistoryEvent decode_history_fields(const FieldList& fields) {
    HistoryEvent e;
    for (const auto& [f, v] : fields) {
        if (f == "e")
            e.kind = v;
        else if (f == "m")
            e.message_id = v;
        else if (f == "s")
            e.subscription = v;
        else if (f == "c")
            e.consumer = v;
        else if (f == "a")
            e.attempt = static_cast<int>(number(v, 0));
        else if (f == "o")
            e.outcome = v;
        else if (f == "d")
            e.duration_ms = number(v, -1);
        else if (f == "er")
            e.error = v;
        else if (f == "pr")
            e.producer = v;
        else if (f == "k")
            e.key = v;
        else if (f == "h")
            e.headers_json = v;
        else if (f == "sz")
            e.size = number(v, -1);
        else if (f == "tr")
            e.trace_id = v;
        else if (f == "sid")
            e.stream_id = v;
        else if (f == "x")
            e.detail = v;
    }
    return e;
}

std::vector<HistoryEvent> decode_history_entry(const FieldList& fields) {
    std::vector<HistoryEvent> out;
    FieldList one;
    auto finish = [&] {
        HistoryEvent e = decode_history_fields(one);
        // Subscription and consumer carry over from the event before (history_xadd).
        if (!out.empty()) {
            if (e.subscription.empty()) e.subscription = out.back().subscription;
            if (e.consumer.empty()) e.consumer = out.back().consumer;
        }
        out.push_back(std::move(e));
        one.clear();
    };
    for (const auto& fv : fields) {
        if (fv.first == "e" && !one.empty()) finish();
        one.push_back(fv);
    }
    if (!one.empty() || out.empty()) finish();
    return out;
}

std::vector<std::string> history_xadd(const std::string& history_key,
                                      const std::vector<HistoryEvent>& events) {
    std::vector<std::string> argv{"XADD", history_key, "*"};
    const HistoryEvent* before = nullptr;
    for (const auto& e : events) {
        // A batch's events share subscription and consumer: written once, not per event.
        if (before && !e.subscription.empty() && e.subscription == before->subscription &&
            e.consumer == before->consumer) {
            HistoryEvent short_form = e;
            short_form.subscription.clear();
            short_form.consumer.clear();
            encode_history_fields(short_form, argv);
        } else {
            encode_history_fields(e, argv);
        }
        before = &e;
    }
    return argv;
}

std::vector<std::string> history_xadd(const std::string& history_key, const HistoryEvent& e) {
    std::vector<std::string> argv{"XADD", history_key, "*"};
    encode_history_fields(e, argv);
    return argv;
}

}  // namespace mq
