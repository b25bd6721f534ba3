// In-process store (see memory_store.hpp).
#include "store/memory_store.hpp"

#include <chrono>

namespace gw::store {

std::string_view to_string(error_kind kind) {
  switch (kind) {
    case error_kind::none: return "none";
    case error_kind::timeout: return "timeout";
    case error_kind::connection: return "connection";
    case error_kind::reply: return "reply";
  }
  return "none";
}

namespace {

algorithms::micros system_micros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

memory_store::memory_store(std::size_t max_keys, clock_fn clock)
    : per_shard_limit_(std::max<std::size_t>(1, (max_keys + shard_count - 1) / shard_count)),
      clock_(clock ? std::move(clock) : clock_fn{system_micros}) {}

memory_store::state memory_store::cold_state(algorithms::algorithm algo) {
  switch (algo) {
    case algorithms::algorithm::gcra: return algorithms::gcra_state{};
    case algorithms::algorithm::token_bucket: return algorithms::token_bucket_state{};
    case algorithms::algorithm::sliding_window: return algorithms::sliding_window_state{};
    case algorithms::algorithm::sliding_log: return algorithms::sliding_log_state{};
    case algorithms::algorithm::fixed_window: return algorithms::fixed_window_state{};
  }
  return algorithms::gcra_state{};
}

memory_store::shard& memory_store::shard_for(std::string_view key) {
  return shards_[std::hash<std::string_view>{}(key) % shard_count];
}

boost::asio::awaitable<check_result> memory_store::check(std::span<const limit_check> checks) {
  co_return *try_check_now(checks);
}

std::optional<check_result> memory_store::try_check_now(std::span<const limit_check> checks) {
  check_result result;
  result.decisions.reserve(checks.size());
  for (const auto& c : checks) result.decisions.push_back(check_one(c));
  return result;
}

algorithms::decision memory_store::check_one(const limit_check& c) {
  const auto now = clock_();
  auto& s = shard_for(c.key);
  std::lock_guard lock{s.mutex};

  auto it = s.index.find(c.key);
  if (it != s.index.end()) {
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    // Expired state is the same as no state: start cold, in the same entry.
    if (it->second->expires_at <= now) it->second->value = cold_state(c.policy.algo);
  } else {
    // Make room: expired entries at the cold end go first, then the least recently used.
    while (s.index.size() >= per_shard_limit_) {
      auto& victim = s.lru.back();
      if (victim.expires_at > now) evictions_.fetch_add(1, std::memory_order_relaxed);
      s.index.erase(victim.key);
      s.lru.pop_back();
    }
    s.lru.push_front(entry{c.key, cold_state(c.policy.algo), 0});
    it = s.index.emplace(s.lru.front().key, s.lru.begin()).first;
  }

  auto& e = *it->second;
  // A reload may change a limit's algorithm under the same key: restart that key cold.
  if (e.value.index() != static_cast<std::size_t>(c.policy.algo)) e.value = cold_state(c.policy.algo);
  const auto d = std::visit([&](auto& st) { return algorithms::check(st, now, c.policy); }, e.value);
  e.expires_at = now + std::max<algorithms::micros>(d.reset, 1);
  return d;
}

std::size_t memory_store::size() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock{s.mutex};
    n += s.index.size();
  }
  return n;
}

}  // namespace gw::store
