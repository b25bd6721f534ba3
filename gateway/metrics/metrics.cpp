// Metric storage and exposition (see metrics.hpp).
#include "metrics/metrics.hpp"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <dirent.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>

namespace gw::metrics {

std::uint64_t counter::total() const {
  std::uint64_t sum = 0;
  for (const auto& s : slots_) sum += s.value.load(std::memory_order_relaxed);
  return sum;
}

histogram::histogram(std::size_t slots, std::span<const double> bounds)
    : bounds_(bounds), slots_(slots) {
  for (auto& s : slots_) {
    s.buckets = std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1);
    for (std::size_t i = 0; i <= bounds.size(); ++i) s.buckets[i].store(0);
  }
}

void histogram::observe(std::size_t slot, double value) {
  auto& s = slots_[slot];
  std::size_t bucket = 0;
  while (bucket < bounds_.size() && value > bounds_[bucket]) ++bucket;
  auto bump = [](std::atomic<std::uint64_t>& a) {
    a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  };
  bump(s.buckets[bucket]);
  bump(s.count);
  s.sum.store(s.sum.load(std::memory_order_relaxed) + value, std::memory_order_relaxed);
}

void histogram::totals(std::vector<std::uint64_t>& cumulative, std::uint64_t& count,
                       double& sum) const {
  cumulative.assign(bounds_.size() + 1, 0);
  count = 0;
  sum = 0;
  for (const auto& s : slots_) {
    for (std::size_t i = 0; i <= bounds_.size(); ++i)
      cumulative[i] += s.buckets[i].load(std::memory_order_relaxed);
    count += s.count.load(std::memory_order_relaxed);
    sum += s.sum.load(std::memory_order_relaxed);
  }
  for (std::size_t i = 1; i < cumulative.size(); ++i) cumulative[i] += cumulative[i - 1];
  // A scrape racing an observation may see the bucket before the count: keep them coherent.
  count = std::max(count, cumulative.back());
  cumulative.back() = count;
}

code_counters::code_counters(std::size_t variants, resolver resolve)
    : variants_(variants), resolve_(std::move(resolve)),
      cells_(std::make_unique<std::atomic<counter*>[]>((max_code + 1) * variants)) {
  for (std::size_t i = 0; i < (max_code + 1) * variants; ++i) cells_[i].store(nullptr);
}

counter& code_counters::at(unsigned code, std::size_t variant) {
  code = std::min(code, max_code);
  auto& cell = cells_[code * variants_ + variant];
  auto* c = cell.load(std::memory_order_acquire);
  if (!c) {
    // Two workers may race here; the registry hands both the same series.
    c = resolve_(code, variant);
    cell.store(c, std::memory_order_release);
  }
  return *c;
}

namespace {

void setup(auto& f, std::string name, std::string help, std::vector<std::string> labels) {
  f.name = std::move(name);
  f.help = std::move(help);
  f.label_names = std::move(labels);
}

}  // namespace

registry::registry(std::size_t slots) : slots_(std::max<std::size_t>(1, slots)) {
  setup(requests_, "gateway_requests_total", "Requests answered, by route, status code and decision",
        {"route", "code", "decision"});
  setup(request_duration_, "gateway_request_duration_seconds",
        "Time from the request head to the end of the response", {"route"});
  request_duration_.is_histogram = true;
  request_duration_.bounds = latency_buckets;
  setup(ratelimit_checks_, "gateway_ratelimit_checks_total", "Limit decisions by route and limit",
        {"route", "limit", "result"});
  setup(ratelimit_failures_, "gateway_ratelimit_failures_total",
        "Requests whose limits the store could not check, by the failure mode applied",
        {"route", "mode"});
  setup(local_cache_hits_, "gateway_local_cache_hits_total",
        "Requests rejected from the local over-limit cache without a store call", {});
  setup(store_duration_, "gateway_store_duration_seconds", "Store round trips", {"backend"});
  store_duration_.is_histogram = true;
  store_duration_.bounds = latency_buckets;
  setup(store_errors_, "gateway_store_errors_total", "Failed store round trips",
        {"backend", "kind"});
  setup(redis_batch_, "gateway_redis_batch_commands", "Commands per socket write to Redis", {});
  redis_batch_.is_histogram = true;
  redis_batch_.bounds = batch_buckets;
  setup(redis_batch_checks_, "gateway_redis_batch_checks",
        "Limit checks per socket write to Redis (one EVALSHA carries many)", {});
  redis_batch_checks_.is_histogram = true;
  redis_batch_checks_.bounds = batch_buckets;
  setup(upstream_requests_, "gateway_upstream_requests_total",
        "Responses from upstreams, by status code", {"upstream", "code"});
  setup(upstream_duration_, "gateway_upstream_duration_seconds",
        "Time from sending the request to the upstream's response head", {"upstream"});
  upstream_duration_.is_histogram = true;
  upstream_duration_.bounds = latency_buckets;
  setup(upstream_errors_, "gateway_upstream_errors_total", "Upstream failures by kind",
        {"upstream", "kind"});
  setup(config_reloads_, "gateway_config_reloads_total", "Configuration reloads by result",
        {"result"});
  config_reloads(true);  // at 0 before the first reload (SPEC 8)
  config_reloads(false);
  setup(rls_requests_, "gateway_rls_requests_total",
        "Rate limit service calls (ShouldRateLimit) by domain and overall code", {"domain", "code"});
  setup(rls_duration_, "gateway_rls_duration_seconds",
        "Time from a rate limit service call's arrival to its answer", {"domain"});
  rls_duration_.is_histogram = true;
  rls_duration_.bounds = latency_buckets;
  setup(leases_taken_, "gateway_leases_total", "Leases taken from the store (storage.lease)", {});
  setup(lease_units_, "gateway_lease_units_total",
        "Units of leases: leased from the store, used by requests, returned unused", {"event"});
  setup(lease_admitted_, "gateway_lease_admitted_total",
        "Requests admitted from a lease, without a store call", {});
  setup(tls_handshake_errors_, "gateway_tls_handshake_errors_total",
        "Client TLS handshakes that failed, by reason", {"reason"});
}

counter* registry::counter_of(family& f, label_values values) {
  std::lock_guard lock{mutex_};
  auto& slot = f.counters[std::move(values)];
  if (!slot) slot = std::make_unique<counter>(slots_);
  return slot.get();
}

histogram* registry::histogram_of(family& f, label_values values) {
  std::lock_guard lock{mutex_};
  auto& slot = f.histograms[std::move(values)];
  if (!slot) slot = std::make_unique<histogram>(slots_, f.bounds);
  return slot.get();
}

counter* registry::requests(std::string_view route, unsigned code, std::string_view decision) {
  return counter_of(requests_, {std::string{route}, std::to_string(code), std::string{decision}});
}
histogram* registry::request_duration(std::string_view route) {
  return histogram_of(request_duration_, {std::string{route}});
}
counter* registry::ratelimit_checks(std::string_view route, std::string_view limit, bool limited) {
  return counter_of(ratelimit_checks_,
                    {std::string{route}, std::string{limit}, limited ? "limited" : "allowed"});
}
counter* registry::ratelimit_failures(std::string_view route, bool closed) {
  return counter_of(ratelimit_failures_, {std::string{route}, closed ? "closed" : "open"});
}
counter* registry::local_cache_hits() { return counter_of(local_cache_hits_, {}); }
histogram* registry::store_duration(std::string_view backend) {
  return histogram_of(store_duration_, {std::string{backend}});
}
counter* registry::store_errors(std::string_view backend, std::string_view kind) {
  return counter_of(store_errors_, {std::string{backend}, std::string{kind}});
}
histogram* registry::redis_batch_commands() { return histogram_of(redis_batch_, {}); }
histogram* registry::redis_batch_checks() { return histogram_of(redis_batch_checks_, {}); }
counter* registry::upstream_requests(std::string_view upstream, unsigned code) {
  return counter_of(upstream_requests_, {std::string{upstream}, std::to_string(code)});
}
histogram* registry::upstream_duration(std::string_view upstream) {
  return histogram_of(upstream_duration_, {std::string{upstream}});
}
counter* registry::upstream_errors(std::string_view upstream, std::string_view kind) {
  return counter_of(upstream_errors_, {std::string{upstream}, std::string{kind}});
}
counter* registry::config_reloads(bool success) {
  return counter_of(config_reloads_, {success ? "success" : "failure"});
}
counter* registry::tls_handshake_errors(std::string_view reason) {
  return counter_of(tls_handshake_errors_, {std::string{reason}});
}
counter* registry::rls_requests(std::string_view domain, std::string_view code) {
  return counter_of(rls_requests_, {std::string{domain}, std::string{code}});
}
counter* registry::leases_taken() { return counter_of(leases_taken_, {}); }
counter* registry::lease_units(std::string_view event) {
  return counter_of(lease_units_, {std::string{event}});
}
counter* registry::lease_admitted() { return counter_of(lease_admitted_, {}); }
histogram* registry::rls_duration(std::string_view domain) {
  return histogram_of(rls_duration_, {std::string{domain}});
}

void registry::set_connections_active(std::function<double()> read) {
  std::lock_guard lock{mutex_};
  connections_active_ = std::move(read);
}

void registry::set_tls_certificate_expiry(std::vector<std::pair<std::string, double>> expiry) {
  std::lock_guard lock{mutex_};
  tls_expiry_ = std::move(expiry);
}

void registry::set_memory_store_evictions(std::function<double()> read) {
  std::lock_guard lock{mutex_};
  memory_store_evictions_ = std::move(read);
}

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily single(std::string name, std::string help, MetricType type, double value) {
  MetricFamily f{std::move(name), std::move(help), type, {}};
  ClientMetric m;
  if (type == MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  f.metric.push_back(std::move(m));
  return f;
}

// Process metrics read from /proc, as the Prometheus client libraries export them.
void process_families(std::vector<MetricFamily>& out) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream stat{"/proc/self/stat"};
  std::string text{std::istreambuf_iterator<char>{stat}, {}};
  const auto close = text.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields{text.substr(close + 2)};
    std::vector<std::string> f{std::istream_iterator<std::string>{fields}, {}};
    // Fields after the command, 0-based from "state": utime 11, stime 12, starttime 19, rss 21.
    if (f.size() > 21) {
      const double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
      out.push_back(single("process_cpu_seconds_total", "Total user and system CPU time",
                           MetricType::Counter, cpu));
      const double rss = std::stod(f[21]) * static_cast<double>(sysconf(_SC_PAGESIZE));
      out.push_back(single("process_resident_memory_bytes", "Resident memory size",
                           MetricType::Gauge, rss));
      std::ifstream boot{"/proc/stat"};
      std::string line;
      double btime = 0;
      while (std::getline(boot, line))
        if (line.rfind("btime ", 0) == 0) btime = std::stod(line.substr(6));
      out.push_back(single("process_start_time_seconds",
                           "Start time of the process since the Unix epoch", MetricType::Gauge,
                           btime + std::stod(f[19]) / ticks));
    }
  }
  double fds = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir)) ++fds;
    closedir(dir);
    fds -= 3;  // ".", ".." and the descriptor of the listing itself
  }
  out.push_back(single("process_open_fds", "Open file descriptors", MetricType::Gauge, fds));
}

}  // namespace

std::string registry::render() const {
  std::vector<MetricFamily> families;
  {
    std::lock_guard lock{mutex_};
    for (const family* f :
         {&requests_, &request_duration_, &ratelimit_checks_, &ratelimit_failures_,
          &local_cache_hits_, &store_duration_, &store_errors_, &redis_batch_,
          &redis_batch_checks_, &upstream_requests_, &upstream_duration_, &upstream_errors_,
          &config_reloads_, &rls_requests_, &rls_duration_, &leases_taken_, &lease_units_,
          &lease_admitted_, &tls_handshake_errors_}) {
      MetricFamily out{f->name, f->help, f->is_histogram ? MetricType::Histogram : MetricType::Counter, {}};
      auto labels_of = [&](const label_values& values) {
        std::vector<ClientMetric::Label> labels;
        for (std::size_t i = 0; i < values.size(); ++i)
          labels.push_back({f->label_names[i], values[i]});
        return labels;
      };
      for (const auto& [values, c] : f->counters) {
        ClientMetric m;
        m.label = labels_of(values);
        m.counter.value = static_cast<double>(c->total());
        out.metric.push_back(std::move(m));
      }
      std::vector<std::uint64_t> cumulative;
      for (const auto& [values, h] : f->histograms) {
        ClientMetric m;
        m.label = labels_of(values);
        h->totals(cumulative, m.histogram.sample_count, m.histogram.sample_sum);
        for (std::size_t i = 0; i < h->bounds().size(); ++i)
          m.histogram.bucket.push_back({cumulative[i], h->bounds()[i]});
        m.histogram.bucket.push_back({cumulative.back(), std::numeric_limits<double>::infinity()});
        out.metric.push_back(std::move(m));
      }
      // A family without series still tells a scraper it exists (unlabelled ones start at 0).
      if (out.metric.empty() && f->label_names.empty()) {
        ClientMetric m;
        if (f->is_histogram) {
          for (double b : f->bounds) m.histogram.bucket.push_back({0, b});
          m.histogram.bucket.push_back({0, std::numeric_limits<double>::infinity()});
        }
        out.metric.push_back(std::move(m));
      }
      if (!out.metric.empty()) families.push_back(std::move(out));
    }
    families.push_back(single("gateway_connections_active", "Open client connections",
                              MetricType::Gauge,
                              connections_active_ ? connections_active_() : 0));
    families.push_back(single("gateway_memory_store_evictions_total",
                              "Keys evicted from the memory store past max_keys",
                              MetricType::Counter,
                              memory_store_evictions_ ? memory_store_evictions_() : 0));
    if (!tls_expiry_.empty()) {
      MetricFamily expiry{"gateway_tls_certificate_expiry_seconds",
                          "When each served TLS certificate expires (Unix time)",
                          MetricType::Gauge, {}};
      for (const auto& [name, when] : tls_expiry_) {
        ClientMetric m;
        m.label.push_back({"server_name", name});
        m.gauge.value = when;
        expiry.metric.push_back(std::move(m));
      }
      families.push_back(std::move(expiry));
    }
  }
  MetricFamily build{"gateway_build_info", "Build information", MetricType::Gauge, {}};
  ClientMetric info;
  info.label.push_back({"version", GATEWAY_VERSION});
  info.gauge.value = 1;
  build.metric.push_back(std::move(info));
  families.push_back(std::move(build));
  process_families(families);

  std::ostringstream out;
  prometheus::TextSerializer{}.Serialize(out, families);
  return out.str();
}

}  // namespace gw::metrics
