// What the client sees of the decisions: 429 or not, Retry-After, and the header fields; and
// which checks a request makes, on vectors kept from request to request.
#include "limit/route_limits.hpp"
#include "limit/verdict.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace gw;
using algorithms::micros;

constexpr micros s = 1'000'000;

TEST(verdict, rejection_picks_the_limit_that_frees_up_last) {
  config::limit a, b;
  a.name = "per_ip";
  b.name = "per_key";
  const std::vector<limit::applied_limit> applied = {
      {&a, {algorithms::algorithm::gcra, 5, 60 * s, 5, 1}},
      {&b, {algorithms::algorithm::fixed_window, 100, 3600 * s, 100, 1}}};
  const std::vector<algorithms::decision> decisions = {{false, 0, 60 * s, 11 * s + 1},
                                                  {true, 40, 1800 * s, 0}};
  const auto v = limit::judge(applied, decisions);
  EXPECT_TRUE(v.limited);
  EXPECT_EQ(v.deciding, 0u);
  EXPECT_EQ(v.retry_after_seconds, 12);

  limit::header_list headers;
  limit::render_headers(applied, decisions, v, true, true, headers);
  const limit::header_list expected = {
      {"RateLimit-Policy", R"("per_ip";q=5;w=60, "per_key";q=100;w=3600)"},
      {"RateLimit", R"("per_ip";r=0;t=12, "per_key";r=40;t=1800)"},
      {"X-RateLimit-Limit", "5"},
      {"X-RateLimit-Remaining", "0"},
      {"X-RateLimit-Reset", "12"}};
  EXPECT_EQ(headers, expected);
  std::string body = "kept:";  // appended to, not replaced
  limit::append_rejection_body(body, "login", "per_ip", 12);
  EXPECT_EQ(body,
            R"(kept:{"error":"rate_limited","message":"Rate limit exceeded","route":"login","limit":"per_ip","retry_after":12})");
}

TEST(verdict, admitted_legacy_headers_follow_the_limit_closest_to_exhaustion) {
  config::limit a, b;
  a.name = "a";
  b.name = "b";
  const std::vector<limit::applied_limit> applied = {
      {&a, {algorithms::algorithm::gcra, 10, 10 * s, 10, 1}},
      {&b, {algorithms::algorithm::gcra, 1000, 10 * s, 1000, 1}}};
  const std::vector<algorithms::decision> decisions = {{true, 5, 5 * s, 0}, {true, 10, 1 * s, 0}};
  const auto v = limit::judge(applied, decisions);
  EXPECT_FALSE(v.limited);
  EXPECT_EQ(v.deciding, 1u);  // 10 of 1000 left is closer to exhaustion than 5 of 10
  // A list kept from an earlier 429 (the session reuses it): replaced, nothing stale left.
  limit::header_list headers = {{"RateLimit-Policy", "stale"}, {"RateLimit", "stale"},
                                {"X-RateLimit-Limit", "9"},    {"X-RateLimit-Remaining", "9"},
                                {"X-RateLimit-Reset", "9"},    {"Retry-After", "9"}};
  limit::render_headers(applied, decisions, v, false, true, headers);
  const limit::header_list expected = {{"X-RateLimit-Limit", "1000"},
                                       {"X-RateLimit-Remaining", "10"},
                                       {"X-RateLimit-Reset", "1"}};
  EXPECT_EQ(headers, expected);
}

TEST(verdict, bucket_algorithms_announce_their_burst_as_the_quota) {
  config::limit a;
  a.name = "public";
  // 10 per second with bursts of 20: q=20 refilled over 2 s, so r never exceeds q.
  const std::vector<limit::applied_limit> applied = {
      {&a, {algorithms::algorithm::token_bucket, 10, 1 * s, 20, 1}}};
  const std::vector<algorithms::decision> decisions = {{true, 19, 100'000, 0}};
  const auto v = limit::judge(applied, decisions);
  limit::header_list headers;
  limit::render_headers(applied, decisions, v, true, true, headers);
  const limit::header_list expected = {{"RateLimit-Policy", R"("public";q=20;w=2)"},
                                       {"RateLimit", R"("public";r=19;t=1)"},
                                       {"X-RateLimit-Limit", "20"},
                                       {"X-RateLimit-Remaining", "19"},
                                       {"X-RateLimit-Reset", "1"}};
  EXPECT_EQ(headers, expected);
}

TEST(verdict, retry_after_is_never_zero) {
  config::limit a;
  a.name = "a";
  const std::vector<limit::applied_limit> applied = {{&a, {algorithms::algorithm::gcra, 1, s, 1, 1}}};
  const std::vector<algorithms::decision> decisions = {{false, 0, 1, 1}};
  EXPECT_EQ(limit::judge(applied, decisions).retry_after_seconds, 1);
}

// ---- which checks a request makes (route_limits::plan) ----

// A request as the limits see it: an address, and an API key or not.
struct facts final : limit::request_facts {
  std::string ip;
  std::optional<std::string> key;
  std::string_view client_ip() const override { return ip; }
  std::optional<std::string_view> api_key_sha256() const override {
    if (!key) return std::nullopt;
    return std::string_view{*key};
  }
  const config::consumer* consumer() const override { return nullptr; }
  std::string_view method() const override { return "GET"; }
  std::string_view path() const override { return "/"; }
  std::optional<std::string_view> header(std::string_view) const override { return std::nullopt; }
  std::optional<std::string_view> query(std::string_view) const override { return std::nullopt; }
};

TEST(route_limits, plan_replaces_the_previous_requests_checks) {
  config::route route;
  route.name = "api";
  config::limit per_key;
  per_key.name = "per_key";
  per_key.key = {{config::key_part::api_key, ""}};
  per_key.requests = 100;
  per_key.window = std::chrono::seconds(60);
  config::limit per_ip = per_key;
  per_ip.name = "per_ip";
  per_ip.key = {{config::key_part::client_ip, ""}};
  per_ip.requests = 5;
  route.limits = {per_key, per_ip};
  const limit::route_limits limits{route, "rl:"};

  // The session keeps these vectors from request to request.
  std::vector<store::limit_check> checks;
  std::vector<limit::applied_limit> applied;
  facts with_key;
  with_key.ip = "10.0.0.1";
  with_key.key = std::string(64, 'a');
  limits.plan(with_key, checks, applied);
  ASSERT_EQ(checks.size(), 2u);
  EXPECT_EQ(checks[0].key, "rl:{api:per_key:aaaaaaaaaaaaaaaa}");
  EXPECT_EQ(checks[1].key, "rl:{api:per_ip:10.0.0.1}");

  // Without a key the per-key limit does not apply: one check, in the first slot, nothing stale.
  facts without_key;
  without_key.ip = "10.0.0.2";
  limits.plan(without_key, checks, applied);
  ASSERT_EQ(checks.size(), 1u);
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(checks[0].key, "rl:{api:per_ip:10.0.0.2}");
  EXPECT_EQ(checks[0].policy.requests, 5u);
  EXPECT_EQ(applied[0].limit->name, "per_ip");
}

}  // namespace
