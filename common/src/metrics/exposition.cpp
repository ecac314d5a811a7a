#include "mq/metrics/exposition.hpp"

#include <dirent.h>
#include <prometheus/text_serializer.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "mq/core/version.hpp"

namespace mq::metrics {

namespace {

// tenant, queue, subscription lead every series that has them; the rest follow by name.
int label_rank(const std::string& name) {
    if (name == "tenant") return 0;
    if (name == "queue") return 1;
    if (name == "subscription") return 2;
    return 3;
}

void order_labels(std::vector<prometheus::ClientMetric::Label>& labels) {
    std::stable_sort(labels.begin(), labels.end(), [](const auto& a, const auto& b) {
        int ra = label_rank(a.name), rb = label_rank(b.name);
        if (ra != rb) return ra < rb;
        return ra == 3 && a.name < b.name;
    });
}

prometheus::ClientMetric metric(LabelList labels) {
    prometheus::ClientMetric m;
    for (auto& [k, v] : labels) m.label.push_back({std::move(k), std::move(v)});
    return m;
}

double seconds(std::int64_t ms) { return static_cast<double>(ms) / 1000.0; }

}  // namespace

FamilyBuilder::FamilyBuilder(std::string name, std::string help, prometheus::MetricType type) {
    family_.name = std::move(name);
    family_.help = std::move(help);
    family_.type = type;
}

FamilyBuilder& FamilyBuilder::add(LabelList labels, double value) {
    auto m = metric(std::move(labels));
    switch (family_.type) {
        case prometheus::MetricType::Counter:
            m.counter.value = value;
            break;
        case prometheus::MetricType::Gauge:
            m.gauge.value = value;
            break;
        default:
            m.untyped.value = value;
            break;
    }
    family_.metric.push_back(std::move(m));
    return *this;
}

FamilyBuilder& FamilyBuilder::add(LabelList labels,
                                  const prometheus::ClientMetric::Histogram& histogram) {
    auto m = metric(std::move(labels));
    m.histogram = histogram;
    family_.metric.push_back(std::move(m));
    return *this;
}

Exposition::Exposition() : registry_(std::make_shared<prometheus::Registry>()) {}

void Exposition::add_collector(Collector collector) { collectors_.push_back(std::move(collector)); }

std::string Exposition::text() const {
    std::vector<prometheus::MetricFamily> families = registry_->Collect();
    families.push_back(build_info());
    for (auto& f : process_families()) families.push_back(std::move(f));
    for (const auto& c : collectors_)
        for (auto& f : c()) families.push_back(std::move(f));
    return serialize(std::move(families));
}

std::string serialize(std::vector<prometheus::MetricFamily> families) {
    // A family without samples keeps its HELP and TYPE lines (valid text format): a scraper
    // sees every family mq serves before the first sample of each.
    for (auto& f : families)
        for (auto& m : f.metric) order_labels(m.label);
    return prometheus::TextSerializer().Serialize(families);
}

prometheus::MetricFamily build_info() {
    return FamilyBuilder("mq_build_info",
                         "Always 1; the version label says which mq build this process runs.",
                         prometheus::MetricType::Gauge)
        .add({{"version", kVersion}}, 1)
        .take();
}

ProcessFigures read_process_figures() {
    ProcessFigures p;
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const auto page = static_cast<std::int64_t>(sysconf(_SC_PAGESIZE));
    // /proc/self/stat: "pid (comm) state ..." where comm may hold spaces and ')'; the fields
    // after the last ')' start at field 3 (state). utime 14, stime 15, num_threads 20,
    // starttime 22 (ticks since boot), vsize 23 (bytes), rss 24 (pages).
    std::ifstream stat_file("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    if (auto close = stat.rfind(')'); close != std::string::npos) {
        std::istringstream fields(stat.substr(close + 1));
        std::vector<std::string> f;
        std::string field;
        while (fields >> field) f.push_back(field);
        auto at = [&](std::size_t n) -> std::optional<double> {  // n: field number in proc(5)
            if (n < 3 || n - 3 >= f.size()) return std::nullopt;
            try {
                return std::stod(f[n - 3]);
            } catch (const std::exception&) {
                return std::nullopt;
            }
        };
        if (auto u = at(14), s = at(15); u && s && ticks > 0) p.cpu_seconds = (*u + *s) / ticks;
        if (auto t = at(20)) p.threads = static_cast<std::int64_t>(*t);
        if (auto v = at(23)) p.vsize_bytes = static_cast<std::int64_t>(*v);
        if (auto r = at(24)) p.rss_bytes = static_cast<std::int64_t>(*r) * page;
        if (auto start = at(22); start && ticks > 0) {
            std::ifstream proc_stat("/proc/stat");
            std::string line;
            while (std::getline(proc_stat, line))
                if (line.rfind("btime ", 0) == 0) {
                    p.start_time_s = std::stod(line.substr(6)) + *start / ticks;
                    break;
                }
        }
    }
    if (DIR* dir = opendir("/proc/self/fd")) {
        std::int64_t n = 0;
        while (const dirent* e = readdir(dir))
            if (e->d_name[0] != '.') ++n;
        closedir(dir);
        p.open_fds = n - 1;  // the descriptor of the listing itself
    }
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
        p.max_fds = static_cast<std::int64_t>(limit.rlim_cur);
    return p;
}

std::vector<prometheus::MetricFamily> process_families() {
    const ProcessFigures p = read_process_figures();
    std::vector<prometheus::MetricFamily> out;
    auto one = [&](const char* name, const char* help, prometheus::MetricType type, auto value) {
        if (!value) return;
        out.push_back(FamilyBuilder(name, help, type).add({}, static_cast<double>(*value)).take());
    };
    one("process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
        prometheus::MetricType::Counter, p.cpu_seconds);
    one("process_resident_memory_bytes", "Resident memory size, in bytes.",
        prometheus::MetricType::Gauge, p.rss_bytes);
    one("process_virtual_memory_bytes", "Virtual memory size, in bytes.",
        prometheus::MetricType::Gauge, p.vsize_bytes);
    one("process_open_fds", "Open file descriptors.", prometheus::MetricType::Gauge, p.open_fds);
    one("process_max_fds", "Limit on open file descriptors.", prometheus::MetricType::Gauge,
        p.max_fds);
    one("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.",
        prometheus::MetricType::Gauge, p.start_time_s);
    one("process_threads", "Threads of the process.", prometheus::MetricType::Gauge, p.threads);
    return out;
}

std::vector<prometheus::MetricFamily> queue_families(const std::vector<QueueFigures>& figures) {
    using prometheus::MetricType;
    FamilyBuilder size("mq_queue_size",
                       "Backlog of a queue split by state: stream (not yet delivered to the "
                       "slowest subscription) and pending (delivered to it, not acked). The "
                       "states are disjoint and sum to mq_queue_backlog.",
                       MetricType::Gauge);
    FamilyBuilder backlog("mq_queue_backlog",
                          "Entries the slowest subscription has not finished (lag + pending), "
                          "per partition, summed.",
                          MetricType::Gauge);
    FamilyBuilder delayed("mq_queue_delayed", "Delayed and scheduled entries not yet due.",
                          MetricType::Gauge);
    FamilyBuilder dead("mq_queue_dead_letters", "Entries in the dead-letter streams of a queue.",
                       MetricType::Gauge);
    FamilyBuilder history("mq_history_buffered",
                          "Message history events waiting in Redis for the history writer "
                          "(grows while PostgreSQL is down; docs/history.md).",
                          MetricType::Gauge);
    FamilyBuilder entries("mq_queue_stream_entries",
                          "Entries held in a queue's streams, finished ones included until "
                          "trimmed.",
                          MetricType::Gauge);
    FamilyBuilder oldest("mq_queue_oldest_entry_age_seconds",
                         "Age of the oldest entry in a queue's streams.", MetricType::Gauge);
    for (const auto& f : figures) {
        LabelList q = {{"tenant", f.tenant}, {"queue", f.name}};
        auto with = [&](const char* k, const char* v) {
            auto l = q;
            l.emplace_back(k, v);
            return l;
        };
        size.add(with("state", "stream"), static_cast<double>(f.ready));
        size.add(with("state", "pending"), static_cast<double>(f.in_flight));
        backlog.add(q, static_cast<double>(f.backlog));
        delayed.add(q, static_cast<double>(f.delayed));
        dead.add(q, static_cast<double>(f.dead_letters));
        history.add(q, static_cast<double>(f.history_buffered));
        entries.add(q, static_cast<double>(f.length));
        if (auto a = f.age_ms(f.oldest_ms)) oldest.add(q, seconds(*a));
    }
    std::vector<prometheus::MetricFamily> out;
    for (auto* b : {&size, &backlog, &delayed, &dead, &history, &entries, &oldest})
        out.push_back(b->take());
    return out;
}

std::vector<SubscriptionRow> every_subscription(const std::vector<QueueFigures>& figures) {
    std::vector<SubscriptionRow> rows;
    for (const auto& f : figures)
        for (const auto& s : f.subscriptions) rows.push_back({&f, &s, s.name});
    return rows;
}

std::vector<prometheus::MetricFamily> subscription_families(
    const std::vector<SubscriptionRow>& rows) {
    using prometheus::MetricType;
    FamilyBuilder lag("mq_subscription_lag",
                      "Entries not yet delivered to a subscription (absent when Redis cannot "
                      "tell).",
                      MetricType::Gauge);
    FamilyBuilder pending("mq_subscription_pending",
                          "Entries delivered to a subscription and not acked.", MetricType::Gauge);
    FamilyBuilder backlog("mq_subscription_backlog",
                          "Entries a subscription has not finished: lag + pending.",
                          MetricType::Gauge);
    FamilyBuilder oldest("mq_subscription_oldest_pending_age_seconds",
                         "Age (since publish) of the oldest entry a subscription holds unacked.",
                         MetricType::Gauge);
    FamilyBuilder expired("mq_subscription_expired_total",
                          "Entries retention removed before a subscription finished them.",
                          MetricType::Counter);
    for (const auto& r : rows) {
        const auto& s = *r.figures;
        LabelList l = {
            {"tenant", r.queue->tenant}, {"queue", r.queue->name}, {"subscription", r.name}};
        if (s.lag_known) lag.add(l, static_cast<double>(s.lag));
        pending.add(l, static_cast<double>(s.pending));
        backlog.add(l, static_cast<double>(s.backlog));
        if (auto a = r.queue->age_ms(s.oldest_pending_ms)) oldest.add(l, seconds(*a));
        expired.add(l, static_cast<double>(s.expired));
    }
    std::vector<prometheus::MetricFamily> out;
    for (auto* b : {&lag, &pending, &backlog, &oldest, &expired}) out.push_back(b->take());
    return out;
}

prometheus::MetricFamily backend_up(const std::vector<std::pair<std::string, bool>>& backends) {
    FamilyBuilder b("mq_backend_up",
                    "1 when this process reached the backend (redis, postgres) at its last "
                    "attempt.",
                    prometheus::MetricType::Gauge);
    for (const auto& [name, up] : backends) b.add({{"backend", name}}, up ? 1 : 0);
    return b.take();
}

double quantile(const prometheus::ClientMetric::Histogram& histogram, double q) {
    if (histogram.sample_count == 0) return 0;
    const auto want = q * static_cast<double>(histogram.sample_count);
    double last_finite = 0;
    for (const auto& b : histogram.bucket) {
        if (std::isinf(b.upper_bound)) break;
        last_finite = b.upper_bound;
        if (static_cast<double>(b.cumulative_count) > want ||
            b.cumulative_count == histogram.sample_count)
            return b.upper_bound;
    }
    return last_finite;
}

}  // namespace mq::metrics
