// The limiter both front ends share, against the real memory store and no sockets: outcomes in
// order, headers, shadow limits, the failure mode, and the local over-limit cache.
#include "limit/limiter.hpp"
#include "store/memory_store.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace gw;
using algorithms::micros;
namespace asio = boost::asio;

constexpr micros s = 1'000'000;

// Runs one decision to its end on an io_context of its own (bounded: a hang fails the test).
limit::outcome decide(limit::limiter& l, limit::request_limits& r, const limit::judging& how) {
  asio::io_context io;
  auto f = asio::co_spawn(io, l.decide(r, how), asio::use_future);
  io.run_for(std::chrono::seconds(5));
  EXPECT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  return f.get();
}

struct fixture : ::testing::Test {
  micros now = 1000 * s;
  std::shared_ptr<store::memory_store> memory =
      std::make_shared<store::memory_store>(1000, [this] { return now; });
  config::limit per_ip = [] {
    config::limit l;
    l.name = "per_ip";
    l.algorithm = config::limit_algorithm::fixed_window;
    l.requests = 3;
    l.window = std::chrono::minutes(1);
    return l;
  }();
  algorithms::policy policy{algorithms::algorithm::fixed_window, 3, 60 * s, 3, 1};

  void plan(limit::request_limits& r, std::string key, bool shadow = false) {
    r.checks = {{std::move(key), policy}};
    r.applied = {{&per_ip, policy, 0, shadow}};
  }
};

TEST_F(fixture, admits_up_to_the_limit_then_limits_with_headers) {
  limit::limiter limiter{memory, nullptr, 0};
  limit::request_limits r;
  limit::judging how;
  how.now = now;
  std::vector<limit::outcome> seen;
  for (int i = 0; i < 5; ++i) {
    plan(r, "rl:{t:per_ip:1.2.3.4}");
    seen.push_back(decide(limiter, r, how));
  }
  const std::vector<limit::outcome> expected = {
      limit::outcome::admitted, limit::outcome::admitted, limit::outcome::admitted,
      limit::outcome::limited, limit::outcome::limited};
  EXPECT_EQ(seen, expected);
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[0].first, "RateLimit-Policy");
  EXPECT_EQ(r.headers[0].second, R"("per_ip";q=3;w=60)");
  EXPECT_EQ(r.headers[1].first, "RateLimit");
  EXPECT_EQ(r.headers[1].second.rfind(R"("per_ip";r=0;t=)", 0), 0u) << r.headers[1].second;
  EXPECT_TRUE(r.v.limited);
  EXPECT_GE(r.v.retry_after_seconds, 1);

  // Another identity has its own count.
  plan(r, "rl:{t:per_ip:5.6.7.8}");
  EXPECT_EQ(decide(limiter, r, how), limit::outcome::admitted);
}

TEST_F(fixture, the_memory_store_answers_without_a_wait) {
  limit::limiter limiter{memory, nullptr, 0};
  limit::request_limits r;
  plan(r, "rl:{t:per_ip:now}");
  limit::judging how;
  const auto o = limiter.decide_now(r, how);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(*o, limit::outcome::admitted);
  EXPECT_EQ(r.result.decisions.at(0).remaining, 2u);
}

TEST_F(fixture, a_shadow_limit_reports_and_does_not_enforce) {
  limit::limiter limiter{memory, nullptr, 0};
  limit::request_limits r;
  limit::judging how;
  for (int i = 0; i < 3; ++i) {
    plan(r, "rl:{t:per_ip:shadow}", true);
    EXPECT_EQ(decide(limiter, r, how), limit::outcome::admitted);
  }
  plan(r, "rl:{t:per_ip:shadow}", true);
  EXPECT_EQ(decide(limiter, r, how), limit::outcome::shadow_limited);
  EXPECT_FALSE(r.v.limited);
  EXPECT_TRUE(r.v.shadow_limited);

  // Beside an enforced limit that rejects, the enforced one decides.
  config::limit other = per_ip;
  other.name = "per_key";
  for (int i = 0; i < 3; ++i) {
    r.checks = {{"rl:{t:per_key:k}", policy}};
    r.applied = {{&other, policy, 1, false}};
    decide(limiter, r, how);
  }
  r.checks = {{"rl:{t:per_ip:shadow}", policy}, {"rl:{t:per_key:k}", policy}};
  r.applied = {{&per_ip, policy, 0, true}, {&other, policy, 1, false}};
  EXPECT_EQ(decide(limiter, r, how), limit::outcome::limited);
  EXPECT_EQ(r.v.deciding, 1u);
}

// A store that cannot be reached: every call fails as a timed-out Redis would.
class unreachable_store final : public gw::store::store {
 public:
  std::string_view backend() const override { return "redis"; }
  asio::awaitable<gw::store::check_result> check(std::span<const gw::store::limit_check>) override {
    ++calls;
    gw::store::check_result failed;
    failed.error = gw::store::error_kind::timeout;
    co_return failed;
  }
  bool caches_rejections() const override { return true; }
  int calls = 0;
};

TEST_F(fixture, a_failed_store_call_follows_the_failure_mode) {
  auto store = std::make_shared<unreachable_store>();
  limit::limiter limiter{store, nullptr, 0};
  limit::request_limits r;
  limit::judging how;
  plan(r, "rl:{t:per_ip:x}");
  how.on_failure = config::failure_mode::open;
  EXPECT_EQ(decide(limiter, r, how), limit::outcome::failed_open);
  EXPECT_TRUE(r.headers.empty());
  plan(r, "rl:{t:per_ip:x}");
  how.on_failure = config::failure_mode::closed;
  EXPECT_EQ(decide(limiter, r, how), limit::outcome::failed_closed);
  EXPECT_EQ(store->calls, 2);
}

// The memory store, seen as a store a round trip away (as Redis is), counting its calls.
class distant_store final : public gw::store::store {
 public:
  explicit distant_store(std::shared_ptr<gw::store::memory_store> inner) : inner_(std::move(inner)) {}
  std::string_view backend() const override { return "redis"; }
  asio::awaitable<gw::store::check_result> check(std::span<const gw::store::limit_check> c) override {
    ++calls;
    co_return co_await inner_->check(c);
  }
  bool caches_rejections() const override { return true; }
  int calls = 0;

 private:
  std::shared_ptr<gw::store::memory_store> inner_;
};

TEST_F(fixture, a_key_over_its_limit_is_answered_locally_until_it_could_pass) {
  auto store = std::make_shared<distant_store>(memory);
  limit::limiter limiter{store, nullptr, 0};
  limit::request_limits r;
  limit::judging how;
  how.now = now;
  for (int i = 0; i < 4; ++i) {
    plan(r, "rl:{t:per_ip:cached}");
    decide(limiter, r, how);
  }
  EXPECT_EQ(store->calls, 4);  // the fourth was the first rejection
  plan(r, "rl:{t:per_ip:cached}");
  EXPECT_EQ(decide(limiter, r, how), limit::outcome::limited);
  EXPECT_EQ(store->calls, 4);  // answered from the cache
  how.local_cache = false;
  plan(r, "rl:{t:per_ip:cached}");
  EXPECT_EQ(decide(limiter, r, how), limit::outcome::limited);
  EXPECT_EQ(store->calls, 5);

  // Once the window has passed the store is asked again.
  how.local_cache = true;
  now += 61 * s;
  how.now = now;
  plan(r, "rl:{t:per_ip:cached}");
  EXPECT_EQ(decide(limiter, r, how), limit::outcome::admitted);
  EXPECT_EQ(store->calls, 6);
}

TEST_F(fixture, a_cached_shadow_rejection_never_stops_the_enforced_limits) {
  auto store = std::make_shared<distant_store>(memory);
  limit::limiter limiter{store, nullptr, 0};
  limit::request_limits r;
  limit::judging how;
  how.now = now;
  config::limit enforced = per_ip;
  enforced.name = "per_key";
  auto both = [&] {
    r.checks = {{"rl:{t:shadow:s}", policy}, {"rl:{t:per_key:e}", policy}};
    r.applied = {{&per_ip, policy, 0, true}, {&enforced, policy, 1, false}};
  };
  // The shadow key alone goes over first.
  for (int i = 0; i < 4; ++i) {
    r.checks = {{"rl:{t:shadow:s}", policy}};
    r.applied = {{&per_ip, policy, 0, true}};
    decide(limiter, r, how);
  }
  // Both together: the enforced one is still counted by the store, three times, then rejected.
  std::vector<limit::outcome> seen;
  for (int i = 0; i < 4; ++i) {
    both();
    seen.push_back(decide(limiter, r, how));
  }
  const std::vector<limit::outcome> expected = {
      limit::outcome::shadow_limited, limit::outcome::shadow_limited,
      limit::outcome::shadow_limited, limit::outcome::limited};
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(store->calls, 8);
}

TEST_F(fixture, a_costly_rejection_in_the_cache_does_not_refuse_a_cheaper_request) {
  auto store = std::make_shared<distant_store>(memory);
  limit::limiter limiter{store, nullptr, 0};
  limit::request_limits r;
  limit::judging how;
  how.now = now;
  auto with_cost = [&](std::uint64_t cost) {
    auto p = policy;
    p.cost = cost;
    r.checks = {{"rl:{t:per_ip:cost}", p}};
    r.applied = {{&per_ip, p, 0, false}};
    return decide(limiter, r, how);
  };
  EXPECT_EQ(with_cost(1), limit::outcome::admitted);  // 2 left
  EXPECT_EQ(with_cost(3), limit::outcome::limited);   // remembered with cost 3
  EXPECT_EQ(with_cost(3), limit::outcome::limited);
  EXPECT_EQ(store->calls, 2);                           // the second from the cache
  EXPECT_EQ(with_cost(1), limit::outcome::admitted);  // asks the store, and fits
  EXPECT_EQ(store->calls, 3);
}

TEST_F(fixture, the_cache_narrows_a_rejection_to_the_cached_limits_or_asks_for_all) {
  auto store = std::make_shared<distant_store>(memory);
  limit::limiter limiter{store, nullptr, 0};
  limit::request_limits r;
  limit::judging how;
  how.now = now;
  config::limit other = per_ip;
  other.name = "per_route";
  for (int i = 0; i < 4; ++i) {
    r.checks = {{"rl:{t:per_ip:full}", policy}};
    r.applied = {{&per_ip, policy, 0, false}};
    decide(limiter, r, how);
  }
  auto both = [&] {
    r.checks = {{"rl:{t:per_route:r}", policy}, {"rl:{t:per_ip:full}", policy}};
    r.applied = {{&other, policy, 0, false}, {&per_ip, policy, 1, false}};
  };
  const int before = store->calls;
  both();
  EXPECT_EQ(decide(limiter, r, how), limit::outcome::limited);
  EXPECT_EQ(store->calls, before);  // the proxy's way: the cached rejection alone
  ASSERT_EQ(r.applied.size(), 1u);
  EXPECT_EQ(r.applied[0].index, 1u);
  EXPECT_EQ(r.v.deciding, 0u);

  how.cache_answers_alone = false;  // the rate limit service's way: every limit's numbers
  both();
  EXPECT_EQ(decide(limiter, r, how), limit::outcome::limited);
  EXPECT_EQ(store->calls, before + 1);
  ASSERT_EQ(r.applied.size(), 2u);
  EXPECT_TRUE(r.result.decisions[0].admitted);
  EXPECT_EQ(r.result.decisions[0].remaining, 2u);  // per_route: counted once, now
}

}  // namespace
