// The algorithms (see algorithms.hpp). gateway/store/redis/scripts mirror these line for line.
#include "algorithms/algorithms.hpp"

#include <algorithm>

namespace gw::algorithms {

namespace {

micros ceil_div(micros a, micros b) { return a <= 0 ? 0 : (a + b - 1) / b; }

}  // namespace

std::string_view to_string(algorithm a) {
  switch (a) {
    case algorithm::gcra: return "gcra";
    case algorithm::token_bucket: return "token_bucket";
    case algorithm::sliding_window: return "sliding_window";
    case algorithm::sliding_log: return "sliding_log";
    case algorithm::fixed_window: return "fixed_window";
  }
  return "gcra";
}

std::int64_t ceil_seconds(micros t) { return ceil_div(t, 1'000'000); }

micros emission_interval(const policy& p) {
  return std::max<micros>(1, ceil_div(p.window, static_cast<micros>(p.requests)));
}

decision check(fixed_window_state& s, micros now, const policy& p) {
  const micros start = now - now % p.window;
  if (s.window_start != start) {
    s.window_start = start;
    s.count = 0;
  }
  decision d;
  const micros window_end = start + p.window;
  d.admitted = s.count + p.cost <= p.requests;
  if (d.admitted) s.count += p.cost;
  d.remaining = p.requests - std::min(s.count, p.requests);
  d.reset = window_end - now;
  // A cost above `requests` can never pass; the next window is still the honest answer.
  if (!d.admitted) d.retry_after = window_end - now;
  return d;
}

decision check(sliding_window_state& s, micros now, const policy& p) {
  const micros start = now - now % p.window;
  if (s.current_start != start) {
    // The current window becomes the previous one only if it is the window right before.
    s.previous = s.current_start == start - p.window ? s.current : 0;
    s.current = 0;
    s.current_start = start;
  }
  const micros w = p.window;
  const micros elapsed = now - start;
  const auto requests = static_cast<micros>(p.requests);
  const auto prev = static_cast<micros>(s.previous);
  const auto cost = static_cast<micros>(p.cost);
  // prev*(w - elapsed)/w + curr + cost <= requests, multiplied through by w to stay exact.
  auto weighted = [&](micros curr) { return prev * (w - elapsed) + curr * w; };

  decision d;
  d.admitted = weighted(static_cast<micros>(s.current) + cost) <= requests * w;
  if (d.admitted) s.current += p.cost;
  const micros curr = static_cast<micros>(s.current);
  const micros left = requests * w - weighted(curr);
  d.remaining = left <= 0 ? 0 : static_cast<std::uint64_t>(left / w);
  d.reset = (curr > 0 ? start + 2 * w : start + w) - now;
  if (!d.admitted) {
    // Within this window the previous count fades linearly; find when it has faded enough.
    const micros room = requests - curr - cost;  // what prev's weighted share must fall to
    if (room >= 0 && prev > 0) {
      // prev*(w - e) <= room*w  <=>  e >= w - room*w/prev
      const micros e = w - (room * w) / prev;
      d.retry_after = std::max<micros>(e - elapsed, 1);
    } else {
      // Next window: the current count becomes the fading one.
      const micros room_next = requests - cost;
      micros e = w;  // never, within the next window: report its end
      if (room_next >= 0) e = curr > 0 ? w - (room_next * w) / curr : 0;
      d.retry_after = (start + w - now) + std::max<micros>(e, 0);
    }
  }
  return d;
}

decision check(sliding_log_state& s, micros now, const policy& p) {
  while (!s.entries.empty() && s.entries.front().at <= now - p.window) s.entries.pop_front();
  std::uint64_t used = 0;
  for (const auto& e : s.entries) used += e.cost;

  decision d;
  d.admitted = used + p.cost <= p.requests;
  if (d.admitted) {
    s.entries.push_back({now, p.cost});
    used += p.cost;
  }
  d.remaining = p.requests - std::min(used, p.requests);
  d.reset = s.entries.empty() ? 0 : s.entries.back().at + p.window - now;
  if (!d.admitted) {
    // The oldest entries leave first; once enough of them are gone the request fits.
    const std::uint64_t excess = used + p.cost - p.requests;
    std::uint64_t freed = 0;
    d.retry_after = d.reset;
    for (const auto& e : s.entries) {
      freed += e.cost;
      if (freed >= excess) {
        d.retry_after = e.at + p.window - now;
        break;
      }
    }
    if (p.cost > p.requests) d.retry_after = p.window;
  }
  return d;
}

decision check(token_bucket_state& s, micros now, const policy& p) {
  const micros w = p.window;
  const auto rate = static_cast<micros>(p.requests);  // level units per microsecond
  const micros capacity = static_cast<micros>(p.burst) * w;
  micros level = s.initialized ? static_cast<micros>(s.level) : capacity;
  if (s.initialized && now > s.last) {
    const micros elapsed = std::min(now - s.last, ceil_div(capacity, rate));
    level = std::min(capacity, level + elapsed * rate);
  }
  s.initialized = true;
  s.last = std::max(s.last, now);

  decision d;
  const micros need = static_cast<micros>(p.cost) * w;
  d.admitted = level >= need;
  if (d.admitted) level -= need;
  s.level = static_cast<std::uint64_t>(level);
  d.remaining = static_cast<std::uint64_t>(level / w);
  d.reset = ceil_div(capacity - level, rate);
  if (!d.admitted) d.retry_after = need > capacity ? w : ceil_div(need - level, rate);
  return d;
}

decision check(gcra_state& s, micros now, const policy& p) {
  const micros t = emission_interval(p);
  const auto burst = static_cast<micros>(p.burst);
  const auto cost = static_cast<micros>(p.cost);
  const micros tat = std::max(s.tat, now);
  const micros tolerance = (burst - cost) * t;  // negative when cost > burst: never admitted

  decision d;
  d.admitted = tat - now <= tolerance;
  const micros new_tat = d.admitted ? tat + cost * t : tat;
  if (d.admitted) s.tat = new_tat;
  // Units left: how many more emission intervals fit under the burst.
  const micros used = ceil_div(new_tat - now, t);
  d.remaining = burst > used ? static_cast<std::uint64_t>(burst - used) : 0;
  d.reset = new_tat - now;
  if (!d.admitted) d.retry_after = tolerance < 0 ? p.window : tat - now - tolerance;
  return d;
}

}  // namespace gw::algorithms
