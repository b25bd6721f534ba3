// The in-process store: exact under concurrent workers, keys expire with their state, and
// memory stays bounded by max_keys through LRU eviction.
#include "store/memory_store.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace {

using namespace gw;
using algorithms::micros;

constexpr micros s = 1'000'000;

store::limit_check make(std::string key, algorithms::algorithm a, std::uint64_t requests, micros window) {
  return {std::move(key), {a, requests, window, requests, 1}};
}

TEST(memory_store, exact_across_threads_for_every_algorithm) {
  for (auto a : {algorithms::algorithm::gcra, algorithms::algorithm::token_bucket,
                 algorithms::algorithm::sliding_window, algorithms::algorithm::sliding_log,
                 algorithms::algorithm::fixed_window}) {
    const micros now = 1'700'000'000 * s + 1;
    store::memory_store st{1000, [now] { return now; }};
    const auto c = make("k", a, 500, 3600 * s);
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
      threads.emplace_back([&] {
        for (int i = 0; i < 200; ++i)
          if (st.check_one(c).admitted) ++admitted;
      });
    for (auto& t : threads) t.join();
    EXPECT_EQ(admitted.load(), 500) << algorithms::to_string(a);
  }
}

TEST(memory_store, state_expires_and_the_key_starts_cold) {
  micros now = 1'700'000'000 * s;
  store::memory_store st{1000, [&now] { return now; }};
  const auto c = make("k", algorithms::algorithm::gcra, 2, 10 * s);
  EXPECT_TRUE(st.check_one(c).admitted);
  EXPECT_TRUE(st.check_one(c).admitted);
  EXPECT_FALSE(st.check_one(c).admitted);
  EXPECT_EQ(st.size(), 1u);
  now += 10 * s;  // the whole burst has drained: the state carries nothing any more
  EXPECT_TRUE(st.check_one(make("other", algorithms::algorithm::gcra, 2, 10 * s)).admitted);
  EXPECT_TRUE(st.check_one(c).admitted);
  EXPECT_TRUE(st.check_one(c).admitted);
  EXPECT_FALSE(st.check_one(c).admitted);
}

TEST(memory_store, a_flood_of_distinct_keys_stays_within_max_keys) {
  const micros now = 1'700'000'000 * s;
  store::memory_store st{6400, [now] { return now; }};
  for (int i = 0; i < 100'000; ++i)
    st.check_one(make("ip:" + std::to_string(i), algorithms::algorithm::gcra, 5, 60 * s));
  EXPECT_LE(st.size(), 6400u);
  EXPECT_GE(st.size(), 6000u);
  EXPECT_EQ(st.evictions(), 100'000u - st.size());
}

TEST(memory_store, recently_used_keys_survive_eviction) {
  const micros now = 1'700'000'000 * s;
  store::memory_store st{128, [now] { return now; }};  // two keys per shard
  const auto hot = make("hot", algorithms::algorithm::fixed_window, 1, 60 * s);
  EXPECT_TRUE(st.check_one(hot).admitted);
  for (int i = 0; i < 10'000; ++i) {
    // Touched between every insertion, the hot key is never the least recently used: it stays
    // limited instead of being evicted and starting cold.
    ASSERT_FALSE(st.check_one(hot).admitted) << i;
    st.check_one(make("cold:" + std::to_string(i), algorithms::algorithm::fixed_window, 1, 60 * s));
  }
  EXPECT_GT(st.evictions(), 9000u);
}

}  // namespace
