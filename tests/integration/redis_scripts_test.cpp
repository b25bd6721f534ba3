// The Redis scripts against the pure functions of limit/algorithms.cpp: every case runs through
// both, on a real redis-server with EVALSHA and an explicit now, and every decision field must be
// equal. Also what Redis keeps: a TTL on every key, no key for a rejected cold request, the state
// itself, the hash tag of the key, and NOSCRIPT after SCRIPT FLUSH.
#include "algorithms/algorithms.hpp"
#include "store/redis/scripts.hpp"
#include "support/algorithm_cases.hpp"
#include "support/redis_server.hpp"
#include "support/script_client.hpp"

#include <hiredis/hiredis.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace {

using namespace gw::algorithms;
using namespace gw::test::algorithm_cases;
namespace scripts = gw::store::redis;
using gw::test::reply_ptr;
using gw::test::script_client;

bool same(const decision& a, const decision& b) {
  return a.admitted == b.admitted && a.remaining == b.remaining && a.reset == b.reset &&
         a.retry_after == b.retry_after;
}

std::string text(const decision& d) {
  std::ostringstream out;
  out << "{admitted=" << d.admitted << " remaining=" << d.remaining << " reset=" << d.reset
      << " retry_after=" << d.retry_after << "}";
  return out.str();
}

// PEXPIRE of a state whose reset is `reset` us, as the scripts compute it.
std::int64_t ttl_ms_for(micros reset) { return std::max<micros>(1, (reset + 999) / 1000 + 1); }

micros real_now() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

// ---- the in-process side ----

using any_state = std::variant<gcra_state, token_bucket_state, sliding_window_state,
                               sliding_log_state, fixed_window_state>;

any_state cold(algorithm a) {
  switch (a) {
    case algorithm::gcra: return gcra_state{};
    case algorithm::token_bucket: return token_bucket_state{};
    case algorithm::sliding_window: return sliding_window_state{};
    case algorithm::sliding_log: return sliding_log_state{};
    case algorithm::fixed_window: return fixed_window_state{};
  }
  return gcra_state{};
}

decision check_model(any_state& st, micros now, const policy& p) {
  return std::visit([&](auto& state) { return check(state, now, p); }, st);
}

// ---- the harness ----

class redis_scripts : public ::testing::Test {
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
  }

  std::string fresh_key(algorithm a, std::string_view name) {
    return scripts::state_key("rl:{it:" + std::string{name} + ":" + std::to_string(++keys_) + "}",
                              a);
  }

  bool exists(const std::string& key) { return client_->integer_reply({"EXISTS", key}) == 1; }

  // What Redis holds must be what the model holds, right after an admitted request (a rejected
  // one changes nothing in Redis, while the model may have rolled a window or refilled).
  void expect_same_state(const std::string& key, const any_state& st) {
    if (auto* g = std::get_if<gcra_state>(&st)) {
      EXPECT_EQ(client_->string_reply({"GET", key}), std::to_string(g->tat));
    } else if (auto* tb = std::get_if<token_bucket_state>(&st)) {
      EXPECT_EQ(client_->string_reply({"HGET", key, "level"}), std::to_string(tb->level));
      EXPECT_EQ(client_->string_reply({"HGET", key, "last"}), std::to_string(tb->last));
    } else if (auto* sw = std::get_if<sliding_window_state>(&st)) {
      EXPECT_EQ(client_->string_reply({"HGET", key, "start"}), std::to_string(sw->current_start));
      EXPECT_EQ(client_->string_reply({"HGET", key, "curr"}), std::to_string(sw->current));
      EXPECT_EQ(client_->string_reply({"HGET", key, "prev"}), std::to_string(sw->previous));
    } else if (auto* sl = std::get_if<sliding_log_state>(&st)) {
      std::uint64_t units = 0;
      for (const auto& e : sl->entries) units += e.cost;
      EXPECT_EQ(static_cast<std::uint64_t>(client_->integer_reply({"ZCARD", key})), units);
      if (!sl->entries.empty()) {
        auto newest = client_->command({"ZRANGE", key, "-1", "-1", "WITHSCORES"});
        ASSERT_EQ(newest->elements, 2u);
        EXPECT_EQ(std::string(newest->element[1]->str, newest->element[1]->len),
                  std::to_string(sl->entries.back().at));
      }
    } else if (auto* fw = std::get_if<fixed_window_state>(&st)) {
      EXPECT_EQ(client_->string_reply({"HGET", key, "start"}), std::to_string(fw->window_start));
      EXPECT_EQ(client_->string_reply({"HGET", key, "count"}), std::to_string(fw->count));
    }
  }

  // One request through both sides; false (with a failure recorded) when they disagree.
  struct tracker {
    std::string key;
    any_state model;
    bool written = false;  // some request was admitted, so Redis may hold the key
    micros last_reset = 0;     // of the last admitted request: the key's TTL comes from it
    micros last_admitted = 0;  // its now
  };

  bool step(tracker& t, const policy& p, micros now, std::string_view where) {
    const decision expected = check_model(t.model, now, p);
    decision got;
    try {
      got = client_->check(t.key, p, now);
    } catch (const std::exception& e) {
      ADD_FAILURE() << where << ": " << e.what();
      return false;
    }
    if (!same(got, expected)) {
      ADD_FAILURE() << where << " (now = t0 + " << now - t0 << " us, cost " << p.cost
                    << "): C++ " << text(expected) << ", Lua " << text(got);
      return false;
    }
    if (got.admitted) {
      t.written = true;
      t.last_reset = got.reset;
      t.last_admitted = now;
    }
    const long long pttl = client_->integer_reply({"PTTL", t.key});
    if (!t.written) {
      EXPECT_EQ(pttl, -2) << where << ": a key before any admitted request";
    } else {
      EXPECT_NE(pttl, -1) << where << ": a key without a TTL";
      if (pttl >= 0) {
        EXPECT_LE(pttl, ttl_ms_for(t.last_reset)) << where;
      }
      // A TTL of a few ms may pass before PTTL runs; long ones must still be there.
      if (got.admitted && got.reset >= 100 * ms) {
        EXPECT_GT(pttl, 0) << where;
        expect_same_state(t.key, t.model);
      }
    }
    return !::testing::Test::HasFailure();
  }

  static gw::test::redis_server* server_;
  std::unique_ptr<script_client> client_;
  int keys_ = 0;
};

gw::test::redis_server* redis_scripts::server_ = nullptr;

class scenarios : public redis_scripts {
 protected:
  void run(const scenario& sc) {
    tracker t{fresh_key(sc.p.algo, sc.name), cold(sc.p.algo)};
    for (std::size_t i = 0; i < sc.requests.size(); ++i) {
      const auto& r = sc.requests[i];
      policy p = sc.p;
      if (r.cost) p.cost = r.cost;
      for (int n = 0; n < r.times; ++n) {
        const std::string where = sc.name + " request " + std::to_string(i) + "." +
                                  std::to_string(n);
        if (!step(t, p, r.at, where)) return;
      }
    }
  }
};

// ---- the cases of tests/unit/algorithms_test.cpp, and more (support/algorithm_cases.hpp) ----

TEST_F(scenarios, gcra) {
  for (const auto& sc : gcra_cases()) run(sc);
}

TEST_F(scenarios, token_bucket) {
  for (const auto& sc : token_bucket_cases()) run(sc);
}

TEST_F(scenarios, fixed_window) {
  for (const auto& sc : fixed_window_cases()) run(sc);
}

TEST_F(scenarios, sliding_window) {
  for (const auto& sc : sliding_window_cases()) run(sc);
}

TEST_F(scenarios, sliding_log) {
  for (const auto& sc : sliding_log_cases()) run(sc);
}

// ---- random walks: many more cases than anyone would write, the same on both sides ----

class random_walks : public redis_scripts {
 protected:
  // Times and costs drawn at random, including window edges, long idles and costs above the
  // capacity. The script's TTLs run on Redis' real clock while `now` is the test's, so the fake
  // clock is never allowed to fall behind the real one since the walk began: a key that has
  // expired in real time is then also dead in the model.
  void walk(const policy& base, std::uint64_t seed, int steps) {
    std::mt19937_64 rng{seed};
    auto uniform = [&](micros lo, micros hi) {
      return std::uniform_int_distribution<micros>{lo, hi}(rng);
    };
    const micros w = base.window;
    const micros t = std::max<micros>(1, w / static_cast<micros>(base.requests));
    const auto capacity = static_cast<micros>(takes_burst(base.algo) ? base.burst : base.requests);
    // A sliding log keeps one member per unit: keep its costs small enough to be quick.
    const micros max_cost = base.algo == algorithm::sliding_log ? std::min<micros>(capacity, 50)
                                                                : capacity;

    tracker tr{fresh_key(base.algo, "walk"), cold(base.algo)};
    micros now = t0 + uniform(0, w);
    micros lead = now - real_now();
    for (int i = 0; i < steps; ++i) {
      micros candidate = now;
      const int r = static_cast<int>(uniform(0, 99));
      if (r < 20) {
        candidate = now;
      } else if (r < 45) {
        candidate = now + uniform(1, t);
      } else if (r < 65) {
        candidate = now + uniform(1, w);
      } else if (r < 80) {
        candidate = (now / w + 1) * w + uniform(-1, 1);  // a window edge
      } else if (r < 92) {
        candidate = now + uniform(w, 3 * w);
      } else {
        candidate = now + w * uniform(3, 50);
      }
      policy p = base;
      const int c = static_cast<int>(uniform(0, 99));
      if (c < 65) {
        p.cost = 1;
      } else if (c < 90) {
        p.cost = static_cast<std::uint64_t>(uniform(1, max_cost));
      } else if (c < 95) {
        p.cost = static_cast<std::uint64_t>(max_cost);
      } else {
        p.cost = static_cast<std::uint64_t>(capacity + 1);
      }
      // A state that dies within a few ms of real time may be gone from Redis before the next
      // step however the clocks are kept: step past its end, where both sides agree it is dead.
      if (tr.written && tr.last_reset < 50 * ms)
        candidate = std::max(candidate, tr.last_admitted + tr.last_reset);
      const micros real = real_now();
      now = std::max(candidate, real + lead);
      lead = now - real;
      if (!step(tr, p, now, "step " + std::to_string(i) + " of seed " + std::to_string(seed)))
        return;
    }
  }

  void walk_all(algorithm a) {
    const std::vector<policy> policies{
        make(a, 5, 60 * s),
        make(a, 3, 10 * s),                // T and refill rounding
        make(a, 7, 9'999'991, 11),         // odd window, burst above requests
        make(a, 1, 2 * s),
        make(a, 100, 10 * s, 150),
        make(a, 9'007'199, 999'999'999),  // requests x window at 2^53
    };
    std::uint64_t seed = 1000 * static_cast<std::uint64_t>(a);
    for (const auto& p : policies) {
      SCOPED_TRACE("requests " + std::to_string(p.requests) + " window " +
                   std::to_string(p.window) + " burst " + std::to_string(p.burst));
      walk(p, ++seed, 300);
      if (HasFailure()) return;
    }
  }
};

TEST_F(random_walks, gcra) { walk_all(algorithm::gcra); }
TEST_F(random_walks, token_bucket) { walk_all(algorithm::token_bucket); }
TEST_F(random_walks, fixed_window) { walk_all(algorithm::fixed_window); }
TEST_F(random_walks, sliding_window) { walk_all(algorithm::sliding_window); }
TEST_F(random_walks, sliding_log) { walk_all(algorithm::sliding_log); }

// ---- keys, TTLs, script loading ----

TEST_F(redis_scripts, a_rejected_request_on_a_cold_key_creates_no_key) {
  for (auto a : all_algorithms) {
    SCOPED_TRACE(std::string{to_string(a)});
    const auto key = fresh_key(a, "cold");
    const auto p = make(a, 3, 10 * s, 3, 4);  // cost above capacity: never admitted
    const auto d = client_->check(key, p, t0 + 1 * s);
    EXPECT_FALSE(d.admitted);
    EXPECT_FALSE(exists(key));
  }
}

TEST_F(redis_scripts, every_key_written_has_a_ttl_within_its_reset) {
  for (auto a : all_algorithms) {
    SCOPED_TRACE(std::string{to_string(a)});
    const auto key = fresh_key(a, "ttl");
    const auto p = make(a, 5, 60 * s);
    for (int i = 0; i < 7; ++i) {
      const auto d = client_->check(key, p, t0 + 7 * s);
      const long long pttl = client_->integer_reply({"PTTL", key});
      EXPECT_GT(pttl, 0) << i;
      EXPECT_LE(pttl, ttl_ms_for(d.reset)) << i;
      // Within a few ms of the reset itself: the TTL is the reset, not some longer bound.
      if (d.admitted) {
        EXPECT_GE(pttl, d.reset / 1000 - 1000) << i;
      }
    }
  }
}

TEST_F(redis_scripts, with_redis_time_the_state_expires_with_its_reset) {
  // Without now_us the script reads Redis TIME; a 5 ms window must leave nothing behind.
  for (auto a : all_algorithms) {
    SCOPED_TRACE(std::string{to_string(a)});
    const auto key = fresh_key(a, "time");
    const auto p = make(a, 2, 5 * ms);
    auto r = client_->evalsha(key, p, std::nullopt);
    const auto d = script_client::to_decision(r.get());
    EXPECT_TRUE(d.admitted);
    EXPECT_GT(d.reset, 0);
    EXPECT_LE(d.reset, 2 * 5 * ms);  // sliding_window: two windows
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (exists(key) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_FALSE(exists(key));
  }
}

TEST_F(redis_scripts, state_key_keeps_the_hash_tag) {
  auto hash_tag = [](std::string_view key) {
    const auto open = key.find('{');
    const auto close = key.find('}', open);
    return std::string{key.substr(open + 1, close - open - 1)};
  };
  for (auto a : all_algorithms) {
    const std::string base = "gw:rl:{r:l:1.2.3.4}";
    const auto key = scripts::state_key(base, a);
    EXPECT_EQ(key, base + ":" + std::string{to_string(a)});
    EXPECT_EQ(hash_tag(key), "r:l:1.2.3.4");
    EXPECT_TRUE(key.starts_with(base));
  }
  EXPECT_EQ(scripts::state_key("rl:{r:l:1.2.3.4}", algorithm::gcra), "rl:{r:l:1.2.3.4}:gcra");
  // The script writes exactly that key, nothing else.
  const auto key = scripts::state_key("rl:{tag}", algorithm::fixed_window);
  EXPECT_TRUE(client_->check(key, make(algorithm::fixed_window, 3, 10 * s), t0).admitted);
  auto keys = client_->command({"KEYS", "*"});
  ASSERT_EQ(keys->elements, 1u);
  EXPECT_EQ(std::string(keys->element[0]->str, keys->element[0]->len), key);
}

TEST_F(redis_scripts, scripts_are_named_and_hashed) {
  std::vector<std::string> shas;
  for (auto a : all_algorithms) {
    const auto& sc = scripts::script_for(a);
    EXPECT_EQ(sc.name, to_string(a));
    EXPECT_EQ(&sc, &scripts::script_for(a));  // built once
    ASSERT_EQ(sc.sha1.size(), 40u);
    EXPECT_EQ(sc.sha1.find_first_not_of("0123456789abcdef"), std::string::npos);
    // SCRIPT LOAD in SetUp checked that Redis computes the same SHA-1.
    shas.push_back(sc.sha1);
  }
  std::sort(shas.begin(), shas.end());
  EXPECT_EQ(std::unique(shas.begin(), shas.end()), shas.end());
}

TEST_F(redis_scripts, evalsha_answers_noscript_after_script_flush_and_eval_recaches) {
  const auto a = algorithm::gcra;
  const auto& sc = scripts::script_for(a);
  const auto key = fresh_key(a, "noscript");
  const auto p = make(a, 5, 60 * s);
  EXPECT_TRUE(client_->check(key, p, t0).admitted);

  server_->flush_scripts();
  auto r = client_->evalsha(key, p, t0);
  ASSERT_EQ(r->type, REDIS_REPLY_ERROR);
  EXPECT_TRUE(std::string_view(r->str, r->len).starts_with("NOSCRIPT")) << r->str;

  // The fallback: EVAL with the source gives the same answer and caches the script again.
  auto by_source =
      client_->command(script_client::argv_for(std::string{sc.source}, true, key, p, t0));
  const auto d = script_client::to_decision(by_source.get());
  EXPECT_TRUE(d.admitted);
  EXPECT_EQ(d.remaining, 3u);
  auto again = client_->evalsha(key, p, t0);
  ASSERT_EQ(again->type, REDIS_REPLY_STRING) << script_client::describe(again.get());
  EXPECT_EQ(script_client::to_decision(again.get()).remaining, 2u);
}

TEST_F(redis_scripts, a_bad_argument_is_an_error_reply_not_a_decision) {
  auto r = client_->command({"EVALSHA", scripts::script_for(algorithm::gcra).sha1, "1",
                             fresh_key(algorithm::gcra, "bad"), "", "1", "x", "1000000", "1",
                             "1", "1"});
  EXPECT_EQ(r->type, REDIS_REPLY_ERROR);
}

// ---- many checks in one call ----

TEST_F(redis_scripts, many_checks_in_one_call_decide_as_the_same_checks_one_by_one) {
  // Each key is read once and written once per call; checks of one key within the call must
  // still see each other, and what Redis keeps afterwards must be the model's state.
  for (auto a : all_algorithms) {
    SCOPED_TRACE(std::string{to_string(a)});
    std::mt19937_64 rng{static_cast<std::uint64_t>(a) + 77};
    const std::vector<policy> policies{make(a, 5, 10 * s), make(a, 3, 2 * s, 6),
                                       make(a, 20, 60 * s)};
    struct keyed {
      std::string key;
      policy p;
      any_state model;
      bool written = false;        // ever admitted: Redis has the key
      bool last_admitted = false;  // in this call: Redis holds what the model holds
    };
    std::vector<keyed> keys;
    for (std::size_t i = 0; i < 4; ++i)
      keys.push_back({fresh_key(a, "many"), policies[i % policies.size()], cold(a)});
    micros now = t0 + 3 * s;
    for (int call = 0; call < 6; ++call) {
      now += std::uniform_int_distribution<micros>{0, 3 * s}(rng);
      std::vector<std::pair<std::string, policy>> checks;
      std::vector<decision> expected;
      for (int i = 0; i < 40; ++i) {
        auto& k = keys[std::uniform_int_distribution<std::size_t>{0, keys.size() - 1}(rng)];
        policy p = k.p;
        p.cost = std::uniform_int_distribution<std::uint64_t>{0, 9}(rng) < 7 ? 1 : 2;
        checks.emplace_back(k.key, p);
        expected.push_back(check_model(k.model, now, p));
        k.last_admitted = expected.back().admitted;
        if (k.last_admitted) k.written = true;
      }
      const auto got = client_->check_all(checks, now);
      for (std::size_t i = 0; i < checks.size(); ++i)
        ASSERT_TRUE(same(expected[i], got[i]))
            << "call " << call << ", check " << i << " (" << checks[i].first
            << "): model " << text(expected[i]) << ", redis " << text(got[i]);
      for (const auto& k : keys) {
        EXPECT_EQ(exists(k.key), k.written) << k.key;
        if (k.last_admitted) expect_same_state(k.key, k.model);
      }
    }
  }
}

}  // namespace
