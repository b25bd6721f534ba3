// The in-process store: exact across all worker threads of one gateway, bounded in memory.
// Keys live in 64 shards, each with its own mutex and LRU list, so workers only contend when
// they touch the same shard at the same instant; past max_keys the least recently used key of
// the shard is evicted (and counted); keys whose state has expired are dropped as they are met.
#pragma once

#include "store/store.hpp"

#include <array>
#include <atomic>
#include <functional>
#include <list>
#include <mutex>
#include <unordered_map>
#include <variant>

namespace gw::store {

class memory_store final : public store {
 public:
  using clock_fn = std::function<algorithms::micros()>;  // microseconds; injectable for tests

  explicit memory_store(std::size_t max_keys, clock_fn clock = {});

  std::string_view backend() const override { return "memory"; }
  boost::asio::awaitable<check_result> check(std::span<const limit_check> checks) override;
  std::optional<check_result> try_check_now(std::span<const limit_check> checks) override;

  // The synchronous core of check(), for tests and for callers without a coroutine.
  algorithms::decision check_one(const limit_check& c);

  std::size_t size() const;
  std::uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }

 private:
  // Alternatives in the order of algorithms::algorithm, so that index() names the algorithm.
  using state = std::variant<algorithms::gcra_state, algorithms::token_bucket_state,
                             algorithms::sliding_window_state, algorithms::sliding_log_state,
                             algorithms::fixed_window_state>;
  static state cold_state(algorithms::algorithm algo);
  struct entry {
    std::string key;
    state value;
    algorithms::micros expires_at;
  };
  struct shard {
    mutable std::mutex mutex;
    std::list<entry> lru;  // most recently used first
    std::unordered_map<std::string_view, std::list<entry>::iterator> index;
  };
  static constexpr std::size_t shard_count = 64;

  shard& shard_for(std::string_view key);

  std::size_t per_shard_limit_;
  clock_fn clock_;
  std::array<shard, shard_count> shards_;
  std::atomic<std::uint64_t> evictions_{0};
};

}  // namespace gw::store
