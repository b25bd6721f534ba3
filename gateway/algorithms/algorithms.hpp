// The five rate-limit algorithms of SPEC section 5 as pure functions of (state, now, policy).
// Time is integer microseconds and every quantity an integer, so that the memory store and the
// Redis scripts (which compute the same formulas in Lua) agree case for case.
#pragma once

#include "config/config.hpp"

#include <cstdint>
#include <deque>
#include <string_view>

namespace gw::algorithms {

using micros = std::int64_t;

using algorithm = config::limit_algorithm;

std::string_view to_string(algorithm a);

// The effective numbers of one limit for one request (after overrides).
struct policy {
  algorithm algo = algorithm::gcra;
  std::uint64_t requests = 1;  // per window
  micros window = 1'000'000;
  std::uint64_t burst = 1;     // gcra and token_bucket: capacity
  std::uint64_t cost = 1;      // units this request takes
};

struct decision {
  bool admitted = false;
  std::uint64_t remaining = 0;  // units left after this request
  micros reset = 0;             // until the limit is back to full capacity (and its state expires)
  micros retry_after = 0;       // rejected: until this request could be admitted; 0 if admitted
};

struct fixed_window_state {
  micros window_start = 0;
  std::uint64_t count = 0;
};

struct sliding_window_state {
  micros current_start = 0;
  std::uint64_t current = 0;
  std::uint64_t previous = 0;
};

struct sliding_log_state {
  struct entry {
    micros at;
    std::uint64_t cost;
  };
  std::deque<entry> entries;  // admitted requests, oldest first
};

struct token_bucket_state {
  bool initialized = false;
  std::uint64_t level = 0;  // tokens x window: refill adds `requests` per microsecond
  micros last = 0;
};

struct gcra_state {
  micros tat = 0;  // theoretical arrival time; 0 = cold
};

// GCRA's emission interval T = window / requests, rounded up to the microsecond so that rounding
// can only ever admit less, never more.
micros emission_interval(const policy& p);

decision check(fixed_window_state& s, micros now, const policy& p);
decision check(sliding_window_state& s, micros now, const policy& p);
decision check(sliding_log_state& s, micros now, const policy& p);
decision check(token_bucket_state& s, micros now, const policy& p);
decision check(gcra_state& s, micros now, const policy& p);

// Whole seconds for headers: rounded up. Retry-After is additionally at least 1.
std::int64_t ceil_seconds(micros t);

}  // namespace gw::algorithms
