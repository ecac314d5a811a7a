#pragma once

// Prometheus exposition for mq-api and mq-worker, over prometheus-cpp (core): the daemons
// keep their own HTTP listeners and serve what `Exposition::text()` serializes with
// prometheus::TextSerializer. The families both daemons share are built here, once:
// mq_build_info, process_*, the queue and subscription figures of mq::QueueInspector and
// mq_backend_up. docs/metrics.md lists every family.

#include <prometheus/client_metric.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mq/queue/inspector.hpp"

namespace mq::metrics {

/// Content-Type of the text exposition format 0.0.4.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

/// Label name/value pairs in the order they are written (tenant, queue, subscription first).
using LabelList = std::vector<std::pair<std::string, std::string>>;

/// One family whose samples are set at collection time (figures read from elsewhere:
/// atomics of the hot path, a snapshot of the queue inspector, /proc).
class FamilyBuilder {
  public:
    FamilyBuilder(std::string name, std::string help, prometheus::MetricType type);
    /// A gauge, counter or untyped sample.
    FamilyBuilder& add(LabelList labels, double value);
    /// A histogram sample (what prometheus::Histogram::Collect() returns).
    FamilyBuilder& add(LabelList labels, const prometheus::ClientMetric::Histogram& histogram);
    prometheus::MetricFamily take() { return std::move(family_); }

  private:
    prometheus::MetricFamily family_;
};

/// What a daemon serves at /metrics: the instruments of its prometheus::Registry,
/// mq_build_info, process_* and the families of its collectors, asked at every scrape.
class Exposition {
  public:
    using Collector = std::function<std::vector<prometheus::MetricFamily>()>;

    Exposition();
    prometheus::Registry& registry() { return *registry_; }
    /// Before serving starts; collectors run on the scraping thread and must be thread-safe.
    void add_collector(Collector collector);
    /// Every family, in the text format.
    std::string text() const;

  private:
    std::shared_ptr<prometheus::Registry> registry_;
    std::vector<Collector> collectors_;
};

/// Text format of `families` (prometheus::TextSerializer), labels written tenant, queue,
/// subscription first and the others by name, so a series reads the same in every family.
std::string serialize(std::vector<prometheus::MetricFamily> families);

/// mq_build_info{version} 1 (mq::kVersion).
prometheus::MetricFamily build_info();

/// This process, read from /proc/self (Linux). Absent figures stay nullopt.
struct ProcessFigures {
    std::optional<double> cpu_seconds;        ///< user + system
    std::optional<std::int64_t> rss_bytes;    ///< resident memory
    std::optional<std::int64_t> vsize_bytes;  ///< virtual memory
    std::optional<std::int64_t> open_fds;
    std::optional<std::int64_t> max_fds;  ///< soft RLIMIT_NOFILE
    std::optional<double> start_time_s;   ///< Unix seconds
    std::optional<std::int64_t> threads;
};
ProcessFigures read_process_figures();

/// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
/// process_open_fds, process_max_fds, process_start_time_seconds, process_threads: the
/// names of the Prometheus client libraries, so stock dashboards work.
std::vector<prometheus::MetricFamily> process_families();

/// mq_queue_size{state=stream|pending} (summing to the backlog), mq_queue_backlog,
/// mq_queue_delayed, mq_queue_dead_letters, mq_queue_stream_entries,
/// mq_queue_oldest_entry_age_seconds, all {tenant,queue}.
std::vector<prometheus::MetricFamily> queue_families(const std::vector<QueueFigures>& figures);

/// One subscription to report: its queue's figures, its figures there, and the name it is
/// labelled with.
struct SubscriptionRow {
    const QueueFigures* queue = nullptr;
    const SubscriptionFigures* figures = nullptr;
    std::string name;
};
/// mq_subscription_lag (absent when unknown), mq_subscription_pending,
/// mq_subscription_backlog, mq_subscription_oldest_pending_age_seconds (absent when nothing
/// is pending) and mq_subscription_expired_total, all {tenant,queue,subscription}.
std::vector<prometheus::MetricFamily> subscription_families(
    const std::vector<SubscriptionRow>& rows);
/// Every subscription of every queue, labelled with its group name.
std::vector<SubscriptionRow> every_subscription(const std::vector<QueueFigures>& figures);

/// mq_backend_up{backend}: 1 when this process reached the backend at its last attempt.
prometheus::MetricFamily backend_up(const std::vector<std::pair<std::string, bool>>& backends);

/// Estimated quantile of a histogram (the upper bound of the bucket it falls in; the last
/// finite bound past it), 0 when empty.
double quantile(const prometheus::ClientMetric::Histogram& histogram, double q);

}  // namespace mq::metrics
