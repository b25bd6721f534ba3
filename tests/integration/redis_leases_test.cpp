// The lease scripts (SPEC 12) on a real redis-server with an explicit now: several holders take
// leases, spend them locally, and give back what they did not use, in random order; every
// admission (from the store or from a lease) is recorded at the time it happened, and the
// algorithm's bound must hold over every interval. Also what a release gives back: the same
// state as if the unused units had never been taken, or slots that the next requests use.
#include "algorithms/algorithms.hpp"
#include "store/redis/scripts.hpp"
#include "support/redis_server.hpp"
#include "support/script_client.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace gw::algorithms;
namespace scripts = gw::store::redis;
using gw::test::script_client;

constexpr micros s = 1'000'000;
constexpr micros ms = 1'000;
constexpr micros t0 = 1'700'000'000 * s;

policy make(algorithm a, std::uint64_t requests, micros window, std::uint64_t burst = 0) {
  policy p;
  p.algo = a;
  p.requests = requests;
  p.window = window;
  p.burst = burst ? burst : requests;
  p.cost = 1;
  return p;
}

struct taken {
  decision d;
  gw::store::lease_grant lease;
};

class redis_leases : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new gw::test::redis_server(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    client_ = std::make_unique<script_client>(server_->port());
    client_->command({"FLUSHALL"});
    client_->load_scripts();
    for (auto a : gw::test::algorithm_cases::all_algorithms)
      for (const auto* sc : {scripts::lease_script_for(a), scripts::release_script_for(a)})
        if (sc && client_->string_reply({"SCRIPT", "LOAD", std::string{sc->source}}) != sc->sha1)
          throw std::runtime_error("SCRIPT LOAD: another sha1");
  }

  std::string key(algorithm a, const std::string& name) {
    return scripts::state_key("rl:{lease:" + name + "}", a);
  }

  // One check that may bring a lease of up to `want` units, living at most `max_us`.
  taken take(const std::string& k, const policy& p, micros now, std::uint64_t want,
             micros max_us) {
    const auto* sc = scripts::lease_script_for(p.algo);
    if (!sc) throw std::runtime_error("no lease script");
    auto r = client_->command({"EVALSHA", sc->sha1, "1", k, std::to_string(now), "1",
                               std::to_string(p.requests), std::to_string(p.window),
                               std::to_string(p.burst), std::to_string(p.cost), "1",
                               std::to_string(want), std::to_string(max_us)});
    if (r->type != REDIS_REPLY_STRING)
      throw std::runtime_error("lease: " + script_client::describe(r.get()));
    taken t;
    if (!scripts::read_lease({r->str, r->len}, 0, t.d, t.lease))
      throw std::runtime_error("lease: a reply that is no decision");
    return t;
  }

  void release(const std::string& k, const policy& p, std::uint64_t unused, micros mark) {
    const auto* sc = scripts::release_script_for(p.algo);
    auto r = client_->command({"EVALSHA", sc->sha1, "1", k, std::to_string(unused),
                               std::to_string(mark), std::to_string(scripts::release_unit(p))});
    if (r->type == REDIS_REPLY_ERROR)
      throw std::runtime_error("release: " + script_client::describe(r.get()));
  }

  static gw::test::redis_server* server_;
  std::unique_ptr<script_client> client_;
};

gw::test::redis_server* redis_leases::server_ = nullptr;

TEST_F(redis_leases, every_algorithm_but_token_bucket_leases) {
  for (auto a : {algorithm::gcra, algorithm::sliding_window, algorithm::sliding_log,
                 algorithm::fixed_window})
    EXPECT_NE(scripts::lease_script_for(a), nullptr) << to_string(a);
  EXPECT_EQ(scripts::lease_script_for(algorithm::token_bucket), nullptr);
}

// A lease given back whole, before anyone else took anything, leaves what one request leaves.
TEST_F(redis_leases, a_lease_given_back_at_once_leaves_the_state_of_one_request) {
  for (auto a : {algorithm::gcra, algorithm::sliding_log, algorithm::fixed_window,
                 algorithm::sliding_window}) {
    SCOPED_TRACE(std::string{to_string(a)});
    const auto p = make(a, 100, 60 * s);
    const auto leased = key(a, "whole");
    const auto plain = key(a, "plain");
    const auto t = take(leased, p, t0, 20, 50 * ms);
    ASSERT_EQ(t.lease.granted, 20u);  // a quarter of 100 is 25: all 20 asked for
    EXPECT_TRUE(t.d.admitted);
    release(leased, p, 19, t.lease.mark);
    EXPECT_TRUE(client_->check(plain, p, t0).admitted);
    // The next 99 requests are admitted on both keys, the 100th on neither.
    for (int i = 0; i < 99; ++i) {
      ASSERT_TRUE(client_->check(leased, p, t0 + 60 * ms).admitted) << i;
      ASSERT_TRUE(client_->check(plain, p, t0 + 60 * ms).admitted) << i;
    }
    EXPECT_FALSE(client_->check(leased, p, t0 + 60 * ms).admitted);
    EXPECT_FALSE(client_->check(plain, p, t0 + 60 * ms).admitted);
  }
}

// gcra: slots given back while a later lease holds the slots after them become a hole, which the
// next requests use before tat moves on.
TEST_F(redis_leases, gcra_slots_given_back_in_the_middle_serve_the_next_requests) {
  const auto p = make(algorithm::gcra, 100, 100 * s);  // one slot per second, burst 100
  const auto k = key(algorithm::gcra, "hole");
  const auto first = take(k, p, t0, 20, 50 * ms);
  ASSERT_EQ(first.lease.granted, 20u);
  const auto second = take(k, p, t0, 10, 50 * ms);
  ASSERT_EQ(second.lease.granted, 10u);
  const auto tat = client_->string_reply({"GET", k});
  release(k, p, 15, first.lease.mark);  // 5 of the first lease used, 15 slots back
  EXPECT_NE(client_->string_reply({"GET", k}), tat);  // a hole after the tat
  EXPECT_TRUE(client_->string_reply({"GET", k}).starts_with(tat + ","));
  // 100 in all, less the one slot the first lease's 50 ms life skipped (its slots start after it
  // ends); 30 leased, 15 of them back: 84 more now, then none.
  int admitted = 0;
  while (client_->check(k, p, t0 + 10 * ms).admitted) ++admitted;
  EXPECT_EQ(admitted, 84);
  EXPECT_EQ(client_->string_reply({"GET", k}).find(','), std::string::npos);  // hole used up
}

// Random holders against one key. Each holder's lease is spent at once or later, renewed, left
// to expire, given back. Whatever the order, the bound holds for every interval.
void expect_within_bound(const policy& p, std::vector<micros> at) {
  std::sort(at.begin(), at.end());
  const auto n = at.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (p.algo == algorithm::gcra) {
      // burst + rate x interval, for every interval [at_i, at_j].
      const micros t = emission_interval(p);
      for (std::size_t j = i; j < n; ++j) {
        const auto count = j - i + 1;
        const auto bound = p.burst + static_cast<std::uint64_t>((at[j] - at[i]) / t);
        ASSERT_LE(count, bound) << "from " << at[i] - t0 << " to " << at[j] - t0 << " us";
      }
    } else if (p.algo == algorithm::sliding_log) {
      // requests in every window-long interval [at_i, at_i + window).
      const auto end = std::lower_bound(at.begin(), at.end(), at[i] + p.window);
      ASSERT_LE(static_cast<std::uint64_t>(end - (at.begin() + i)), p.requests)
          << "from " << at[i] - t0 << " us";
    } else {
      // fixed_window: requests per aligned window; sliding_window's estimate is at least the
      // current count, so the same holds there.
      const micros start = at[i] - at[i] % p.window;
      if (i > 0 && at[i - 1] >= start) continue;
      const auto end = std::lower_bound(at.begin(), at.end(), start + p.window);
      ASSERT_LE(static_cast<std::uint64_t>(end - (at.begin() + i)), p.requests)
          << "window at " << start - t0 << " us";
    }
  }
}

struct holder {
  std::uint64_t units = 0;
  micros expires = 0;
  micros mark = 0;
};

TEST_F(redis_leases, random_holders_never_pass_the_bound_and_lose_little) {
  for (auto a : {algorithm::gcra, algorithm::sliding_log, algorithm::fixed_window,
                 algorithm::sliding_window}) {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      SCOPED_TRACE(std::string{to_string(a)} + " seed " + std::to_string(seed));
      std::mt19937_64 rng{seed * 31 + static_cast<std::uint64_t>(a)};
      // 60 per 3 s: a slot every 50 ms for gcra, leases of 20 ms, requests every 0-4 ms.
      const auto p = make(a, 60, 3 * s);
      const auto k = key(a, "random" + std::to_string(seed));
      std::vector<holder> holders(4);
      std::vector<micros> at;
      std::uint64_t given_back = 0;
      micros now = t0 + std::uniform_int_distribution<micros>{0, 3 * s}(rng);
      const micros end = now + 12 * s;
      while (now < end) {
        now += std::uniform_int_distribution<micros>{0, 4 * ms}(rng);
        for (auto& h : holders)
          if (h.units > 0 && h.expires <= now) {
            release(k, p, h.units, h.mark);
            given_back += h.units;
            h.units = 0;
          }
        auto& h = holders[std::uniform_int_distribution<std::size_t>{0, 3}(rng)];
        if (h.units > 0 && h.expires > now) {
          --h.units;
          at.push_back(now);
          continue;
        }
        const auto want = std::uniform_int_distribution<std::uint64_t>{2, 16}(rng);
        const auto t = take(k, p, now, want, 20 * ms);
        if (t.d.admitted) at.push_back(now);
        if (t.lease.granted > 0) {
          if (h.units > 0) {
            release(k, p, h.units, h.mark);
            given_back += h.units;
          }
          h = {t.lease.granted - 1, now + t.lease.life, t.lease.mark};
        }
      }
      expect_within_bound(p, at);
      // What the same 12 s of steady overload admit without leases: a window's worth at the
      // start and the rate after it (gcra: burst + 12 s / 50 ms; the windows: 4 to 5 windows).
      std::printf("%s seed %lu: admitted %zu, units given back %lu\n",
                  std::string{to_string(a)}.c_str(), seed, at.size(), given_back);
      const std::size_t least = a == algorithm::gcra ? 60 + 240 - 30 : 4 * 60 - 30;
      EXPECT_GE(at.size(), least);
    }
  }
}

}  // namespace
