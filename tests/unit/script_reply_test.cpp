// What the Redis store makes of a script's reply (store/redis/scripts.hpp): 32 bytes per check,
// four big-endian 8-byte integers; anything else is a reply error, never a decision.
#include "store/redis/scripts.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>

namespace {

using gw::algorithms::decision;
using gw::store::redis::read_decision;

std::string packed(std::initializer_list<std::int64_t> fields) {
  std::string out;
  for (auto f : fields) {
    const auto v = static_cast<std::uint64_t>(f);
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
  }
  return out;
}

TEST(script_reply, each_check_reads_its_own_32_bytes) {
  const auto reply = packed({1, 4, 250'000, 0,                       // admitted
                             0, 0, 1'000'000, 9'007'199'254'740'991});  // rejected, 2^53 - 1
  decision first, second;
  ASSERT_TRUE(read_decision(reply, 0, first));
  ASSERT_TRUE(read_decision(reply, 1, second));
  EXPECT_TRUE(first.admitted);
  EXPECT_EQ(first.remaining, 4u);
  EXPECT_EQ(first.reset, 250'000);
  EXPECT_EQ(first.retry_after, 0);
  EXPECT_FALSE(second.admitted);
  EXPECT_EQ(second.remaining, 0u);
  EXPECT_EQ(second.reset, 1'000'000);
  EXPECT_EQ(second.retry_after, 9'007'199'254'740'991);
}

TEST(script_reply, a_short_or_senseless_reply_is_no_decision) {
  decision d;
  const auto good = packed({1, 4, 250'000, 0});
  EXPECT_FALSE(read_decision(good, 1, d));                         // no second check in it
  EXPECT_FALSE(read_decision(good.substr(0, 31), 0, d));          // cut short
  EXPECT_FALSE(read_decision("", 0, d));
  EXPECT_FALSE(read_decision(packed({2, 4, 250'000, 0}), 0, d));  // admitted neither 0 nor 1
  EXPECT_FALSE(read_decision(packed({1, -1, 250'000, 0}), 0, d));
  EXPECT_FALSE(read_decision(packed({1, 4, -5, 0}), 0, d));
  EXPECT_FALSE(read_decision(packed({0, 0, 5, -1}), 0, d));
}

}  // namespace
