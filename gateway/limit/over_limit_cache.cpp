// Local over-limit cache (see over_limit_cache.hpp).
#include "limit/over_limit_cache.hpp"

namespace gw::limit {

std::optional<decision> over_limit_cache::lookup(std::string_view key, micros now,
                                                 std::uint64_t cost) {
  if (until_.empty()) return std::nullopt;
  const auto it = until_.find(std::string{key});
  if (it == until_.end()) return std::nullopt;
  if (it->second.until <= now) {
    until_.erase(it);
    return std::nullopt;
  }
  if (cost < it->second.cost) return std::nullopt;
  decision d;
  d.admitted = false;
  d.remaining = 0;
  d.retry_after = it->second.until - now;
  d.reset = d.retry_after;
  return d;
}

void over_limit_cache::remember(std::string_view key, micros now, const decision& rejected,
                                std::uint64_t cost) {
  if (rejected.admitted || rejected.retry_after <= 0) return;
  if (until_.size() >= capacity_) {
    // Full: expired entries go; if that is not enough, everything does (the store still has
    // the truth, the cache only saves round trips).
    std::erase_if(until_, [now](const auto& e) { return e.second.until <= now; });
    if (until_.size() >= capacity_) until_.clear();
  }
  until_.insert_or_assign(std::string{key}, entry{now + rejected.retry_after, cost});
}

}  // namespace gw::limit
