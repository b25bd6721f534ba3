// The gateway's metrics (SPEC 8), named once here. Every series keeps one slot per thread, so a
// worker counts with a relaxed store into its own slot: no lock and no shared cache line on the
// request path (prometheus-cpp's own Histogram takes a mutex per observation). A series is
// resolved from its label values once (per config snapshot, or on its first use) and then used
// through a pointer. A scrape sums the slots into prometheus-cpp MetricFamily values and renders
// them with prometheus-cpp's TextSerializer.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gw::metrics {

// Request, upstream and store latency, seconds: sub-millisecond resolution at the bottom.
inline constexpr std::array<double, 17> latency_buckets = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
// Commands per socket write to Redis.
inline constexpr std::array<double, 11> batch_buckets = {1,  2,  4,   8,   16,  32,
                                                         64, 128, 256, 512, 1024};

namespace detail {
struct alignas(64) counter_slot {
  std::atomic<std::uint64_t> value{0};
};
}  // namespace detail

class counter {
 public:
  explicit counter(std::size_t slots) : slots_(slots) {}
  // Only thread `slot` ever writes slot `slot`: a relaxed load and store, no read-modify-write.
  void inc(std::size_t slot, std::uint64_t n = 1) {
    auto& v = slots_[slot].value;
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t total() const;

 private:
  std::vector<detail::counter_slot> slots_;
};

class histogram {
 public:
  histogram(std::size_t slots, std::span<const double> bounds);
  void observe(std::size_t slot, double value);
  // Per bucket (cumulative), count and sum over all slots.
  void totals(std::vector<std::uint64_t>& cumulative, std::uint64_t& count, double& sum) const;
  std::span<const double> bounds() const { return bounds_; }

 private:
  struct alignas(64) slot_data {
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets;  // bounds + 1 (+Inf)
    std::atomic<std::uint64_t> count{0};
    std::atomic<double> sum{0};
  };
  std::span<const double> bounds_;
  std::vector<slot_data> slots_;
};

// Counters of one series family by status code (and a small variant index, e.g. the decision),
// each resolved on its first use and then read through an atomic pointer.
class code_counters {
 public:
  using resolver = std::function<counter*(unsigned code, std::size_t variant)>;
  code_counters(std::size_t variants, resolver resolve);
  counter& at(unsigned code, std::size_t variant = 0);

 private:
  static constexpr unsigned max_code = 999;
  std::size_t variants_;
  resolver resolve_;
  std::unique_ptr<std::atomic<counter*>[]> cells_;
};

using label_values = std::vector<std::string>;

class registry {
 public:
  // `slots`: one per thread that records (the workers, plus one for the control thread).
  explicit registry(std::size_t slots);

  std::size_t slots() const { return slots_; }
  std::size_t control_slot() const { return slots_ - 1; }

  // Resolve a series; cheap to keep, expensive to look up (a mutex and a map).
  counter* requests(std::string_view route, unsigned code, std::string_view decision);
  histogram* request_duration(std::string_view route);
  counter* ratelimit_checks(std::string_view route, std::string_view limit, bool limited);
  counter* ratelimit_failures(std::string_view route, bool closed);
  counter* local_cache_hits();
  histogram* store_duration(std::string_view backend);
  counter* store_errors(std::string_view backend, std::string_view kind);
  histogram* redis_batch_commands();
  histogram* redis_batch_checks();
  counter* upstream_requests(std::string_view upstream, unsigned code);
  histogram* upstream_duration(std::string_view upstream);
  counter* upstream_errors(std::string_view upstream, std::string_view kind);
  counter* config_reloads(bool success);
  counter* rls_requests(std::string_view domain, std::string_view code);
  counter* leases_taken();
  counter* lease_units(std::string_view event);  // leased, used, returned
  counter* lease_admitted();
  histogram* rls_duration(std::string_view domain);
  // reason: timeout, closed (the client went away), certificate (missing or not verified),
  // protocol (anything else: a version, no shared cipher, not TLS at all).
  counter* tls_handshake_errors(std::string_view reason);

  // Values read at scrape time from their owners.
  void set_connections_active(std::function<double()> read);
  void set_memory_store_evictions(std::function<double()> read);
  // gateway_tls_certificate_expiry_seconds{server_name}: when each served certificate expires
  // (Unix time), replaced whole by each configuration that is put in service.
  void set_tls_certificate_expiry(std::vector<std::pair<std::string, double>> expiry);

  // The text exposition format 0.0.4, rendered by prometheus-cpp.
  std::string render() const;

 private:
  struct family {
    std::string name, help;
    std::vector<std::string> label_names;
    bool is_histogram = false;
    std::span<const double> bounds;
    std::map<label_values, std::unique_ptr<counter>> counters;
    std::map<label_values, std::unique_ptr<histogram>> histograms;
  };
  counter* counter_of(family& f, label_values values);
  histogram* histogram_of(family& f, label_values values);

  std::size_t slots_;
  mutable std::mutex mutex_;  // resolution and scrapes only, never the request path
  family requests_, request_duration_, ratelimit_checks_, ratelimit_failures_, local_cache_hits_,
      store_duration_, store_errors_, redis_batch_, redis_batch_checks_, upstream_requests_, upstream_duration_,
      upstream_errors_, config_reloads_, rls_requests_, rls_duration_, leases_taken_,
      lease_units_, lease_admitted_, tls_handshake_errors_;
  std::function<double()> connections_active_, memory_store_evictions_;
  std::vector<std::pair<std::string, double>> tls_expiry_;
};

}  // namespace gw::metrics
