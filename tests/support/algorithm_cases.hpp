// The algorithm cases shared by the store tests: requests at given times against one key, the
// cases of tests/unit/algorithms_test.cpp and more (window edges, costs above capacity, backward
// clocks, numbers at the 2^53 bound). No case depends on a Redis key outliving a short TTL (TTLs
// run on Redis' real clock, `now` is the case's), so any two stores must agree step for step.
#pragma once

#include "algorithms/algorithms.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace gw::test::algorithm_cases {

using algorithms::algorithm;
using algorithms::micros;
using algorithms::policy;

inline constexpr micros s = 1'000'000;
inline constexpr micros ms = 1'000;
inline constexpr micros t0 = 1'700'000'040 * s;  // a multiple of 10 s and 60 s: windows start here

inline constexpr algorithm all_algorithms[] = {algorithm::gcra, algorithm::token_bucket,
                                               algorithm::sliding_window, algorithm::sliding_log,
                                               algorithm::fixed_window};

inline bool takes_burst(algorithm a) {
  return a == algorithm::gcra || a == algorithm::token_bucket;
}

// burst 0 = requests; burst is ignored by the algorithms that have none.
inline policy make(algorithm a, std::uint64_t requests, micros window, std::uint64_t burst = 0,
                   std::uint64_t cost = 1) {
  return {a, requests, window, burst && takes_burst(a) ? burst : requests, cost};
}

// `times` requests at `at`, each with the policy's cost unless `cost` is given.
struct request_at {
  micros at;
  int times = 1;
  std::uint64_t cost = 0;
};

struct scenario {
  std::string name;
  policy p;
  std::vector<request_at> requests;
};

inline std::vector<scenario> gcra_cases() {
  const auto a = algorithm::gcra;
  return {
      {"burst_from_cold_then_one_per_t", make(a, 5, 60 * s),
       {{t0, 6}, {t0 + 12 * s - 1}, {t0 + 12 * s, 2}}},
      {"burst_above_requests_and_cost", make(a, 10, 10 * s, 20, 3), {{t0, 8}}},
      {"emission_interval_rounds_up", make(a, 3, 1 * s),
       {{t0, 4}, {t0 + 333'333}, {t0 + 333'334}, {t0 + 333'334, 2}, {t0 + 666'667},
        {t0 + 666'668, 2}, {t0 + 1'000'002, 4}}},
      {"long_idle_refills_to_burst_never_more", make(a, 5, 60 * s),
       {{t0, 6}, {t0 + 1000 * s, 7}}},
      {"cost_varies", make(a, 10, 10 * s, 10),
       {{t0, 1, 3}, {t0, 1, 5}, {t0, 1, 3}, {t0, 1, 2}, {t0 + 1 * s, 1, 2}, {t0 + 2 * s, 2, 1},
        {t0 + 3'500'000, 1, 4}, {t0 + 20 * s, 1, 10}, {t0 + 20 * s, 1, 1}}},
      {"cost_above_burst_on_a_cold_key", make(a, 5, 60 * s, 5, 6), {{t0, 2}}},
      {"cost_above_burst_on_a_warm_key", make(a, 5, 60 * s),
       {{t0}, {t0 + 1, 1, 6}, {t0 + 2, 1, 5}, {t0 + 12 * s, 1, 5}}},
      {"retry_after_is_exact", make(a, 4, 10 * s, 6, 2),
       {{t0, 4}, {t0 + 5 * s - 1}, {t0 + 5 * s, 2}, {t0 + 10 * s - 1}, {t0 + 10 * s}}},
      // T = 1 us; the cost keeps every reset long enough for the key to outlive the case.
      {"more_requests_than_microseconds", make(a, 3'000'000, 1 * s, 1'000'000, 200'000),
       {{t0, 6}, {t0 + 1}, {t0 + 199'999}, {t0 + 200'000, 2}, {t0 + 10 * s, 6}}},
      {"backward_clock", make(a, 5, 60 * s),
       {{t0 + 30 * s, 3}, {t0 + 10 * s, 2}, {t0 + 31 * s, 2}}},
      {"at_the_2_53_bound", make(a, 9'007'199, 999'999'999, 9'007'199, 1'000'000),
       {{t0, 10}, {t0 + 1, 1, 1}, {t0 + 999'999'999, 3}, {t0 + 5000 * s, 2}}},
  };
}

inline std::vector<scenario> token_bucket_cases() {
  const auto a = algorithm::token_bucket;
  return {
      {"capacity_from_cold_then_continuous_refill", make(a, 10, 10 * s, 5),
       {{t0, 6}, {t0 + s - 1}, {t0 + s}, {t0 + 1000 * s, 6}}},
      {"cost_takes_several_tokens", make(a, 4, 4 * s, 4, 3), {{t0, 2}}},
      {"fractional_refill", make(a, 3, 1 * s, 3),
       {{t0, 4}, {t0 + 333'333}, {t0 + 333'334}, {t0 + 333'334}, {t0 + 666'667, 2},
        {t0 + 999'999}, {t0 + 1'000'001, 2}}},
      {"cost_varies", make(a, 10, 10 * s, 10),
       {{t0, 1, 3}, {t0, 1, 5}, {t0, 1, 3}, {t0, 1, 2}, {t0 + 1 * s, 1, 2}, {t0 + 2 * s, 2, 1},
        {t0 + 3'500'000, 1, 4}, {t0 + 20 * s, 1, 10}, {t0 + 20 * s, 1, 1}}},
      {"cost_above_burst_on_a_cold_key", make(a, 10, 10 * s, 5, 6), {{t0, 2}}},
      {"burst_above_requests", make(a, 2, 10 * s, 7), {{t0, 8}, {t0 + 4 * s, 3}, {t0 + 30 * s, 8}}},
      {"backward_clock", make(a, 10, 10 * s, 5),
       {{t0 + 5 * s, 5}, {t0 + 2 * s, 2}, {t0 + 5 * s + 1}, {t0 + 6 * s, 2}}},
      {"at_the_2_53_bound", make(a, 1 << 20, micros{1} << 33, 1 << 20, 1 << 10),
       {{t0, 3}, {t0 + 1}, {t0 + 8191, 2}, {t0 + 8192}, {t0 + 10'000 * s, 3}}},
      {"at_the_2_53_bound_odd_numbers", make(a, 9'007'199, 999'999'999, 9'007'199, 3'000'000),
       {{t0, 4}, {t0 + 1}, {t0 + 111, 2}, {t0 + 999'999'999}, {t0 + 100'000 * s, 4}}},
  };
}

inline std::vector<scenario> fixed_window_cases() {
  const auto a = algorithm::fixed_window;
  return {
      {"counts_per_aligned_window", make(a, 3, 10 * s),
       {{t0 + 4 * s, 4}, {t0 + 10 * s - 1}, {t0 + 10 * s}}},
      {"cost_counts_units", make(a, 10, 10 * s, 0, 4), {{t0, 3}}},
      // Admitted 1 us before its window ends, the key lives 2 ms: no second request there.
      {"window_edges", make(a, 2, 10 * s),
       {{t0 - 1, 1, 2}, {t0, 3}, {t0 + 10 * s - 1}, {t0 + 10 * s, 3}, {t0 + 20 * s - 1}}},
      {"skipped_windows", make(a, 2, 10 * s), {{t0, 3}, {t0 + 25 * s, 3}, {t0 + 1000 * s, 3}}},
      {"cost_above_requests_on_a_cold_key", make(a, 3, 10 * s, 0, 4), {{t0 + 3 * s, 2}}},
      {"cost_varies", make(a, 10, 10 * s),
       {{t0, 1, 4}, {t0 + 1, 1, 7}, {t0 + 2, 1, 6}, {t0 + 3, 1, 11}, {t0 + 5 * s, 1, 1}}},
      {"odd_window", make(a, 5, 7'777'777), {{t0, 6}, {t0 + 7'777'777}, {t0 + 20 * s, 6}}},
      {"backward_clock", make(a, 3, 10 * s), {{t0 + 12 * s, 2}, {t0 + 8 * s, 4}, {t0 + 13 * s, 2}}},
      {"at_the_2_53_bound", make(a, 9'007'199, 999'999'999, 0, 4'000'000),
       {{t0, 3}, {t0 + 999'999'999, 3}}},
  };
}

inline std::vector<scenario> sliding_window_cases() {
  const auto a = algorithm::sliding_window;
  return {
      {"previous_window_fades_linearly", make(a, 10, 10 * s),
       {{t0 + 5 * s, 11}, {t0 + 10 * s}, {t0 + 11 * s - 1}, {t0 + 11 * s, 2}, {t0 + 30 * s, 11}}},
      {"rejected_in_a_fresh_window_waits_for_the_next", make(a, 4, 10 * s), {{t0 + 2 * s, 5}}},
      {"cost_fades_in", make(a, 10, 10 * s, 0, 3),
       {{t0 + 1 * s, 4}, {t0 + 10 * s, 2}, {t0 + 13 * s, 2}, {t0 + 17 * s, 3}, {t0 + 19 * s, 2}}},
      {"exactly_one_and_two_windows_later", make(a, 6, 10 * s),
       {{t0 + 9 * s, 7}, {t0 + 19 * s, 4}, {t0 + 39 * s, 7}}},
      {"window_edges", make(a, 3, 10 * s),
       {{t0 - 1, 4}, {t0, 2}, {t0 + 10 * s - 1, 2}, {t0 + 10 * s, 4}}},
      {"cost_above_requests_on_a_cold_key", make(a, 3, 10 * s, 0, 4), {{t0 + 3 * s, 2}}},
      {"cost_above_requests_on_a_warm_key", make(a, 3, 10 * s),
       {{t0 + 3 * s, 2}, {t0 + 4 * s, 1, 4}, {t0 + 12 * s, 1, 4}, {t0 + 12 * s, 1, 3}}},
      {"odd_numbers", make(a, 7, 9'999'991),
       {{t0 + 123'457, 8}, {t0 + 10'000'000, 3}, {t0 + 11'234'567, 3}, {t0 + 15'555'555, 3},
        {t0 + 19'999'999, 3}}},
      {"backward_clock", make(a, 4, 10 * s),
       {{t0 + 15 * s, 3}, {t0 + 5 * s, 3}, {t0 + 16 * s, 3}, {t0 + 25 * s, 3}}},
      {"at_the_2_53_bound", make(a, 9'007'199, 999'999'999, 0, 3'000'000),
       {{t0 + 1, 4}, {t0 + 999'999'999, 4}, {t0 + 1'500'000'000, 4}}},
  };
}

inline std::vector<scenario> sliding_log_cases() {
  const auto a = algorithm::sliding_log;
  return {
      {"exact_log_of_admitted_requests", make(a, 3, 10 * s),
       {{t0}, {t0 + 1 * s}, {t0 + 2 * s}, {t0 + 5 * s}, {t0 + 10 * s - 1}, {t0 + 10 * s}}},
      {"cost_frees_as_entries_leave", make(a, 5, 10 * s, 0, 2),
       {{t0}, {t0 + 3 * s}, {t0 + 4 * s}, {t0 + 10 * s}, {t0 + 13 * s, 2}}},
      {"many_at_the_same_microsecond", make(a, 5, 10 * s),
       {{t0, 3}, {t0 + 1 * s, 3}, {t0 + 10 * s, 3}, {t0 + 10 * s, 1, 2}, {t0 + 11 * s, 2}}},
      {"same_microsecond_after_a_partial_expiry", make(a, 4, 10 * s),
       {{t0, 2}, {t0 + 5 * s, 2}, {t0 + 10 * s, 3}, {t0 + 15 * s, 3}, {t0 + 15 * s, 1, 2}}},
      {"cost_varies", make(a, 10, 10 * s),
       {{t0, 1, 3}, {t0 + 1 * s, 1, 5}, {t0 + 2 * s, 1, 3}, {t0 + 3 * s, 1, 2},
        {t0 + 10 * s, 1, 4}, {t0 + 11 * s, 1, 6}, {t0 + 12 * s, 1, 3}}},
      {"cost_above_requests_on_a_cold_key", make(a, 3, 10 * s, 0, 4), {{t0, 2}}},
      {"cost_above_requests_on_a_warm_key", make(a, 3, 10 * s), {{t0}, {t0 + 1 * s, 1, 4}}},
      {"long_idle", make(a, 3, 10 * s), {{t0, 4}, {t0 + 1000 * s, 4}}},
      {"large_cost", make(a, 20'000, 60 * s, 0, 9'000),
       {{t0, 3}, {t0 + 1 * s, 1, 2'000}, {t0 + 60 * s, 2}, {t0 + 61 * s, 1, 11'000}}},
  };
}

inline std::vector<scenario> cases_for(algorithm a) {
  switch (a) {
    case algorithm::gcra: return gcra_cases();
    case algorithm::token_bucket: return token_bucket_cases();
    case algorithm::sliding_window: return sliding_window_cases();
    case algorithm::sliding_log: return sliding_log_cases();
    case algorithm::fixed_window: return fixed_window_cases();
  }
  return {};
}

}  // namespace gw::test::algorithm_cases
