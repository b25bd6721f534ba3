// What the client sees of the decisions: 429 or not, Retry-After, and the header fields.
#include "limit/verdict.hpp"

#include <gtest/gtest.h>

namespace {

using namespace gw;
using limit::micros;

constexpr micros s = 1'000'000;

TEST(verdict, rejection_picks_the_limit_that_frees_up_last) {
  config::limit a, b;
  a.name = "per_ip";
  b.name = "per_key";
  const std::vector<limit::applied_limit> applied = {
      {&a, {limit::algorithm::gcra, 5, 60 * s, 5, 1}},
      {&b, {limit::algorithm::fixed_window, 100, 3600 * s, 100, 1}}};
  const std::vector<limit::decision> decisions = {{false, 0, 60 * s, 11 * s + 1},
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
  EXPECT_EQ(limit::rejection_body("login", "per_ip", 12),
            R"({"error":"rate_limited","message":"Rate limit exceeded","route":"login","limit":"per_ip","retry_after":12})");
}

TEST(verdict, admitted_legacy_headers_follow_the_limit_closest_to_exhaustion) {
  config::limit a, b;
  a.name = "a";
  b.name = "b";
  const std::vector<limit::applied_limit> applied = {
      {&a, {limit::algorithm::gcra, 10, 10 * s, 10, 1}},
      {&b, {limit::algorithm::gcra, 1000, 10 * s, 1000, 1}}};
  const std::vector<limit::decision> decisions = {{true, 5, 5 * s, 0}, {true, 10, 1 * s, 0}};
  const auto v = limit::judge(applied, decisions);
  EXPECT_FALSE(v.limited);
  EXPECT_EQ(v.deciding, 1u);  // 10 of 1000 left is closer to exhaustion than 5 of 10
  limit::header_list headers;
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
      {&a, {limit::algorithm::token_bucket, 10, 1 * s, 20, 1}}};
  const std::vector<limit::decision> decisions = {{true, 19, 100'000, 0}};
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
  const std::vector<limit::applied_limit> applied = {{&a, {limit::algorithm::gcra, 1, s, 1, 1}}};
  const std::vector<limit::decision> decisions = {{false, 0, 1, 1}};
  EXPECT_EQ(limit::judge(applied, decisions).retry_after_seconds, 1);
}

}  // namespace
