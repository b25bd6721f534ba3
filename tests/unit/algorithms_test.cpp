// The five algorithms of SPEC section 5 with an injected clock: how many pass from cold, the
// exact moment the next one may pass, Retry-After and remaining values, cost, window edges.
#include "algorithms/algorithms.hpp"

#include <gtest/gtest.h>

namespace {

using namespace gw::algorithms;

constexpr micros s = 1'000'000;
constexpr micros t0 = 1'700'000'040 * s;  // a multiple of 10 s and 60 s: windows start here

policy make(algorithm a, std::uint64_t requests, micros window, std::uint64_t burst = 0,
            std::uint64_t cost = 1) {
  return {a, requests, window, burst ? burst : requests, cost};
}

TEST(gcra, admits_burst_from_cold_then_one_per_emission_interval) {
  gcra_state st;
  const auto p = make(algorithm::gcra, 5, 60 * s);  // T = 12 s
  for (std::uint64_t i = 0; i < 5; ++i) {
    const auto d = check(st, t0, p);
    ASSERT_TRUE(d.admitted) << i;
    EXPECT_EQ(d.remaining, 4 - i);
    EXPECT_EQ(d.reset, static_cast<micros>(i + 1) * 12 * s);
  }
  const auto rejected = check(st, t0, p);
  EXPECT_FALSE(rejected.admitted);
  EXPECT_EQ(rejected.remaining, 0u);
  EXPECT_EQ(rejected.retry_after, 12 * s);
  EXPECT_EQ(ceil_seconds(rejected.retry_after), 12);
  EXPECT_FALSE(check(st, t0 + 12 * s - 1, p).admitted);
  EXPECT_TRUE(check(st, t0 + 12 * s, p).admitted);
  EXPECT_FALSE(check(st, t0 + 12 * s, p).admitted);
}

TEST(gcra, burst_above_requests_and_cost) {
  gcra_state st;
  const auto p = make(algorithm::gcra, 10, 10 * s, /*burst=*/20, /*cost=*/3);  // T = 1 s
  int admitted = 0;
  while (check(st, t0, p).admitted) ++admitted;
  EXPECT_EQ(admitted, 6);  // 6 x 3 = 18 of 20 units; a 7th needs 3 with 2 left
  const auto d = check(st, t0, p);
  EXPECT_EQ(d.remaining, 2u);
  EXPECT_EQ(d.retry_after, 1 * s);  // one more unit frees in T
}

TEST(gcra, emission_interval_rounds_up) {
  EXPECT_EQ(emission_interval(make(algorithm::gcra, 3, 1 * s)), 333'334);
  EXPECT_EQ(emission_interval(make(algorithm::gcra, 5, 60 * s)), 12 * s);
}

TEST(token_bucket, capacity_from_cold_then_continuous_refill) {
  token_bucket_state st;
  const auto p = make(algorithm::token_bucket, 10, 10 * s, /*burst=*/5);  // 1 token per second
  for (std::uint64_t i = 0; i < 5; ++i) {
    const auto d = check(st, t0, p);
    ASSERT_TRUE(d.admitted);
    EXPECT_EQ(d.remaining, 4 - i);
  }
  const auto rejected = check(st, t0, p);
  EXPECT_FALSE(rejected.admitted);
  EXPECT_EQ(rejected.retry_after, 1 * s);
  EXPECT_EQ(rejected.reset, 5 * s);  // back to full after five refills
  EXPECT_FALSE(check(st, t0 + s - 1, p).admitted);
  EXPECT_TRUE(check(st, t0 + s, p).admitted);
  // Idle long enough, the bucket is full again, never fuller.
  int admitted = 0;
  while (check(st, t0 + 1000 * s, p).admitted) ++admitted;
  EXPECT_EQ(admitted, 5);
}

TEST(token_bucket, cost_takes_several_tokens) {
  token_bucket_state st;
  const auto p = make(algorithm::token_bucket, 4, 4 * s, /*burst=*/4, /*cost=*/3);
  EXPECT_TRUE(check(st, t0, p).admitted);
  const auto d = check(st, t0, p);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.remaining, 1u);
  EXPECT_EQ(d.retry_after, 2 * s);
}

TEST(fixed_window, counts_per_aligned_window) {
  fixed_window_state st;
  const auto p = make(algorithm::fixed_window, 3, 10 * s);
  for (std::uint64_t i = 0; i < 3; ++i) {
    const auto d = check(st, t0 + 4 * s, p);
    ASSERT_TRUE(d.admitted);
    EXPECT_EQ(d.remaining, 2 - i);
    EXPECT_EQ(d.reset, 6 * s);
  }
  const auto rejected = check(st, t0 + 4 * s, p);
  EXPECT_FALSE(rejected.admitted);
  EXPECT_EQ(rejected.retry_after, 6 * s);
  EXPECT_FALSE(check(st, t0 + 10 * s - 1, p).admitted);
  EXPECT_TRUE(check(st, t0 + 10 * s, p).admitted);  // a new window starts on the boundary
}

TEST(fixed_window, cost_counts_units) {
  fixed_window_state st;
  const auto p = make(algorithm::fixed_window, 10, 10 * s, 0, 4);
  EXPECT_TRUE(check(st, t0, p).admitted);
  EXPECT_TRUE(check(st, t0, p).admitted);
  const auto d = check(st, t0, p);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.remaining, 2u);
}

TEST(sliding_window, previous_window_fades_linearly) {
  sliding_window_state st;
  const auto p = make(algorithm::sliding_window, 10, 10 * s);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(check(st, t0 + 5 * s, p).admitted);
  EXPECT_FALSE(check(st, t0 + 5 * s, p).admitted);
  // Next window, at its start: 10 x (10 - 0)/10 + 0 = 10 -> full.
  const auto d = check(st, t0 + 10 * s, p);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.retry_after, 1 * s);  // at 1 s in: 10 x 9/10 = 9, room for one
  EXPECT_FALSE(check(st, t0 + 11 * s - 1, p).admitted);
  EXPECT_TRUE(check(st, t0 + 11 * s, p).admitted);
  EXPECT_FALSE(check(st, t0 + 11 * s, p).admitted);
  // Two windows later nothing is left of it.
  int admitted = 0;
  while (check(st, t0 + 30 * s, p).admitted) ++admitted;
  EXPECT_EQ(admitted, 10);
}

TEST(sliding_window, rejected_in_a_fresh_window_waits_for_the_next) {
  sliding_window_state st;
  const auto p = make(algorithm::sliding_window, 4, 10 * s);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(check(st, t0 + 2 * s, p).admitted);
  const auto d = check(st, t0 + 2 * s, p);
  EXPECT_FALSE(d.admitted);
  // Next window starts in 8 s with prev = 4: 4 x (10 - e)/10 + 1 <= 4 -> e >= 2.5 s.
  EXPECT_EQ(d.retry_after, 8 * s + 2'500'000);
}

TEST(sliding_log, exact_log_of_admitted_requests) {
  sliding_log_state st;
  const auto p = make(algorithm::sliding_log, 3, 10 * s);
  EXPECT_TRUE(check(st, t0, p).admitted);
  EXPECT_TRUE(check(st, t0 + 1 * s, p).admitted);
  const auto third = check(st, t0 + 2 * s, p);
  EXPECT_TRUE(third.admitted);
  EXPECT_EQ(third.remaining, 0u);
  EXPECT_EQ(third.reset, 10 * s);  // the newest entry leaves last
  const auto rejected = check(st, t0 + 5 * s, p);
  EXPECT_FALSE(rejected.admitted);
  EXPECT_EQ(rejected.retry_after, 5 * s);  // the entry of t0 leaves at t0 + 10 s
  EXPECT_EQ(st.entries.size(), 3u);         // rejected requests are not recorded
  EXPECT_FALSE(check(st, t0 + 10 * s - 1, p).admitted);
  EXPECT_TRUE(check(st, t0 + 10 * s, p).admitted);
}

TEST(sliding_log, cost_frees_as_entries_leave) {
  sliding_log_state st;
  const auto p = make(algorithm::sliding_log, 5, 10 * s, 0, 2);
  EXPECT_TRUE(check(st, t0, p).admitted);
  EXPECT_TRUE(check(st, t0 + 3 * s, p).admitted);
  const auto d = check(st, t0 + 4 * s, p);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.remaining, 1u);
  EXPECT_EQ(d.retry_after, 6 * s);
}

TEST(ceil_seconds, rounds_up) {
  EXPECT_EQ(ceil_seconds(0), 0);
  EXPECT_EQ(ceil_seconds(1), 1);
  EXPECT_EQ(ceil_seconds(1'000'000), 1);
  EXPECT_EQ(ceil_seconds(1'000'001), 2);
}

}  // namespace
