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
#include <cinttypes>
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

  void release(const std::string& k, const policy& p, std::uint64_t unused, micros mark,
               micros now) {
    const auto* sc = scripts::release_script_for(p.algo);
    auto r = client_->command({"EVALSHA", sc->sha1, "1", k, std::to_string(now),
                               std::to_string(unused),
                               std::to_string(mark), std::to_string(scripts::release_unit(p))});
    if (r->type == REDIS_REPLY_ERROR)
      throw std::runtime_error("release: " + script_client::describe(r.get()));
  }

  static gw::test::redis_server* server_;
  std::unique_ptr<script_client> client_;
};

gw::test::redis_server* redis_leases::server_ = nullptr;

TEST_F(redis_leases, every_algorithm_leases) {
  for (auto a : gw::test::algorithm_cases::all_algorithms) {
    EXPECT_NE(scripts::lease_script_for(a), nullptr) << to_string(a);
    EXPECT_NE(scripts::release_script_for(a), nullptr) << to_string(a);
  }
}

// A lease given back whole, before anyone else took anything, leaves what one request leaves.
TEST_F(redis_leases, a_lease_given_back_at_once_leaves_the_state_of_one_request) {
  for (auto a : gw::test::algorithm_cases::all_algorithms) {
    SCOPED_TRACE(std::string{to_string(a)});
    const auto p = make(a, 100, 60 * s);
    const auto leased = key(a, "whole");
    const auto plain = key(a, "plain");
    const auto t = take(leased, p, t0, 20, 50 * ms);
    ASSERT_EQ(t.lease.granted, 20u);  // a quarter of what there is (24 to 25): all 20 asked for
    EXPECT_TRUE(t.d.admitted);
    release(leased, p, 19, t.lease.mark, t0);
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
  release(k, p, 15, first.lease.mark, t0);  // 5 of the first lease used, 15 slots back
  EXPECT_NE(client_->string_reply({"GET", k}), tat);  // a hole after the tat
  EXPECT_TRUE(client_->string_reply({"GET", k}).starts_with(tat + ","));
  // 100 in all, less the one slot the first lease's 50 ms life skipped (its slots start after it
  // ends); 30 leased, 15 of them back: 84 more now, then none.
  int admitted = 0;
  while (client_->check(k, p, t0 + 10 * ms).admitted) ++admitted;
  EXPECT_EQ(admitted, 84);
  EXPECT_EQ(client_->string_reply({"GET", k}).find(','), std::string::npos);  // hole used up
}

// The front of a hole that has partly passed still serves: a lease takes a hole's slots from its
// end, and ordinary requests its front, so time given back is lost only as it passes.
TEST_F(redis_leases, gcra_a_hole_partly_past_is_spent_to_the_last_slot_ahead) {
  const auto p = make(algorithm::gcra, 100, 100 * s);  // one slot per second, burst 100
  const auto k = key(algorithm::gcra, "past");
  const auto first = take(k, p, t0, 20, 50 * ms);  // slots [0.05 s, 20.05 s)
  ASSERT_EQ(first.lease.granted, 20u);
  ASSERT_EQ(take(k, p, t0, 10, 50 * ms).lease.granted, 10u);  // tat 30.05 s
  release(k, p, 15, first.lease.mark, t0);                   // hole [5.05 s, 20.05 s)
  // 10 s on, the hole's first 5 slots have passed. A lease ending at 10.1 s gets the 9 slots that
  // start after it, from the hole's end, and leaves the slot at 10.05 s to a request.
  const micros now = t0 + 10 * s + 50 * ms;
  const auto lease = take(k, p, now, 10, 50 * ms);
  EXPECT_EQ(lease.lease.granted, 9u);
  EXPECT_EQ(lease.lease.mark, first.lease.mark);
  int admitted = 0;
  while (client_->check(k, p, now).admitted) ++admitted;
  // The hole's last slot, then tat from 30.05 s up to now + 99 s: 1 + 80.
  EXPECT_EQ(admitted, 81);
}

// Holes are time: a policy with another emission interval on the same key (a tier's override, a
// reload) spends a 15 s hole as 7 slots of 2 s, not as the 15 slots of 1 s it was given back as.
TEST_F(redis_leases, gcra_holes_are_time_to_a_policy_with_another_interval) {
  const auto fine = make(algorithm::gcra, 100, 100 * s);   // a slot a second
  const auto coarse = make(algorithm::gcra, 50, 100 * s);  // one every 2 s, burst 50
  const auto k = key(algorithm::gcra, "two");
  const auto first = take(k, fine, t0, 20, 50 * ms);
  ASSERT_EQ(take(k, fine, t0, 10, 50 * ms).lease.granted, 10u);
  release(k, fine, 15, first.lease.mark, t0);  // hole [5.05 s, 20.05 s), tat 30.05 s
  int admitted = 0;
  while (client_->check(k, coarse, t0 + 10 * ms).admitted) ++admitted;
  // 7 slots of 2 s in the hole, then tat from 30.05 s by 2 s up to now + 98 s: 7 + 34.
  EXPECT_EQ(admitted, 41);
}

// A hole is spent only up to the requesting policy's own horizon, now + burst x t: a reload to a
// faster limit (or a tier with a smaller burst) on the same key never gets more than its burst
// out of time a slower policy gave back.
TEST_F(redis_leases, gcra_holes_are_spent_only_within_the_requesting_policys_burst) {
  const auto slow = make(algorithm::gcra, 100, 100 * s);  // a slot a second, horizon 100 s
  const auto k = key(algorithm::gcra, "horizon");
  const auto first = take(k, slow, t0, 20, 50 * ms);
  ASSERT_EQ(take(k, slow, t0, 10, 50 * ms).lease.granted, 10u);
  release(k, slow, 15, first.lease.mark, t0);  // hole [5.05 s, 20.05 s), tat 30.05 s
  // 100 per 10 s: a slot every 0.1 s, horizon 10 s. Only the hole's time up to 10.01 s serves:
  // 49 slots, and tat (30 s ahead) nothing. Without the horizon it would be 150. A lease takes
  // its 10 from the end of that, [9.01 s, 10.01 s), the hole's rest past the horizon kept.
  const auto fast = make(algorithm::gcra, 100, 10 * s);
  const auto lease = take(k, fast, t0 + 10 * ms, 10, 50 * ms);
  EXPECT_EQ(lease.lease.granted, 10u);
  EXPECT_EQ(lease.lease.mark, t0 + 10 * s + 10 * ms);
  const auto at = [](micros us) { return std::to_string(t0 + us); };
  EXPECT_NE(client_->string_reply({"GET", k})
                .find("," + at(5'050'000) + "-" + at(9'010'000) + "," + at(10'010'000) + "-" +
                      at(20'050'000)),
            std::string::npos)
      << client_->string_reply({"GET", k});
  int admitted = 0;
  while (client_->check(k, fast, t0 + 10 * ms).admitted) ++admitted;
  EXPECT_EQ(admitted, 39);  // 49 with the lease's 10
  // And nothing more past the horizon, for a lease either.
  EXPECT_EQ(take(k, fast, t0 + 10 * ms, 10, 50 * ms).lease.granted, 0u);
}

// Ten holes given back between leases still held: the 8 that are gone last are kept.
TEST_F(redis_leases, gcra_keeps_the_eight_holes_that_last_longest) {
  const auto p = make(algorithm::gcra, 100, 100 * s);
  const auto k = key(algorithm::gcra, "many");
  std::vector<taken> leases;
  for (int i = 0; i < 20; ++i) leases.push_back(take(k, p, t0, 2, 50 * ms));
  for (const auto& l : leases) ASSERT_EQ(l.lease.granted, 2u);  // tat 40.05 s
  for (int i = 0; i < 20; i += 2) release(k, p, 2, leases[i].lease.mark, t0);
  const auto state = client_->string_reply({"GET", k});
  EXPECT_EQ(std::count(state.begin(), state.end(), ','), 8) << state;
  int admitted = 0;
  while (client_->check(k, p, t0 + 10 * ms).admitted) ++admitted;
  // 8 holes of 2 slots, then tat from 40.05 s up to now + 99 s: 16 + 59.
  EXPECT_EQ(admitted, 75);
}

// A state that is not gcra's is an error for a check (the failure mode decides), never a fresh
// burst; a release leaves it alone, and still gives back into the other keys of its call.
TEST_F(redis_leases, gcra_state_that_cannot_be_read_is_an_error_and_left_alone) {
  const auto p = make(algorithm::gcra, 100, 100 * s);
  const auto bad = key(algorithm::gcra, "bad");
  const auto good = key(algorithm::gcra, "good");
  for (const std::string garbage : {"abc", "abc,123", ",5-6"}) {
    SCOPED_TRACE(garbage);
    client_->command({"SET", bad, garbage});
    EXPECT_EQ(client_->evalsha(bad, p, t0)->type, REDIS_REPLY_ERROR);
    const auto first = take(good, p, t0, 20, 50 * ms);
    ASSERT_EQ(take(good, p, t0, 10, 50 * ms).lease.granted, 10u);
    const auto* sc = scripts::release_script_for(algorithm::gcra);
    const auto unit = std::to_string(scripts::release_unit(p));
    auto r = client_->command({"EVALSHA", sc->sha1, "2", bad, good, std::to_string(t0), "5",
                               "1000", unit, "15", std::to_string(first.lease.mark), unit});
    EXPECT_EQ(r->type, REDIS_REPLY_INTEGER) << script_client::describe(r.get());
    EXPECT_EQ(client_->string_reply({"GET", bad}), garbage);
    EXPECT_NE(client_->string_reply({"GET", good}).find(','), std::string::npos);  // a hole
    client_->command({"DEL", good});
  }
}

// token_bucket: units given back after another holder took from the bucket are lost (they were
// not the last taken); given back before, they return whole.
TEST_F(redis_leases, token_bucket_gives_back_only_into_the_state_its_lease_left) {
  const auto p = make(algorithm::token_bucket, 100, 100 * s);
  const auto k = key(algorithm::token_bucket, "stamp");
  const auto first = take(k, p, t0, 20, 50 * ms);
  ASSERT_EQ(first.lease.granted, 20u);
  const auto second = take(k, p, t0 + 1 * ms, 10, 50 * ms);
  ASSERT_EQ(second.lease.granted, 10u);
  release(k, p, 15, first.lease.mark, t0 + 2 * ms);   // lost: the second lease came after
  release(k, p, 5, second.lease.mark, t0 + 2 * ms);   // back
  int admitted = 0;
  while (client_->check(k, p, t0 + 2 * ms).admitted) ++admitted;
  // 100 less the first lease's 20 (5 spent, 15 lost) and the second's 5 spent: 75, less the
  // refill a lease does not bank (0.05 s of a token a second, so the 75th is not whole yet).
  EXPECT_EQ(admitted, 74);
}

// Random holders against one key. Each holder's lease is spent at once or later, renewed, left
// to expire, given back. Whatever the order, the bound holds for every interval.
void expect_within_bound(const policy& p, std::vector<micros> at) {
  std::sort(at.begin(), at.end());
  const auto n = at.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (p.algo == algorithm::token_bucket) {
      // burst + rate x interval, the rate exactly requests per window.
      for (std::size_t j = i; j < n; ++j) {
        const auto count = j - i + 1;
        const auto bound =
            p.burst + static_cast<std::uint64_t>((at[j] - at[i]) * static_cast<micros>(p.requests) /
                                                 p.window);
        ASSERT_LE(count, bound) << "from " << at[i] - t0 << " to " << at[j] - t0 << " us";
      }
    } else if (p.algo == algorithm::gcra) {
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
  for (auto a : gw::test::algorithm_cases::all_algorithms) {
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
            release(k, p, h.units, h.mark, now);
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
            release(k, p, h.units, h.mark, now);
            given_back += h.units;
          }
          h = {t.lease.granted - 1, now + t.lease.life, t.lease.mark};
        }
      }
      expect_within_bound(p, at);
      // What the same 12 s of steady overload admit without leases: a window's worth at the
      // start and the rate after it (the buckets: burst + 12 s / 50 ms; the windows: 4 to 5).
      std::printf("%s seed %" PRIu64 ": admitted %zu, units given back %" PRIu64 "\n",
                  std::string{to_string(a)}.c_str(), seed, at.size(), given_back);
      const bool bucket = a == algorithm::gcra || a == algorithm::token_bucket;
      const std::size_t least = bucket ? 60 + 240 - 30 : 4 * 60 - 30;
      EXPECT_GE(at.size(), least);
    }
  }
}

}  // namespace
