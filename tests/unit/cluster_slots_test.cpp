// Redis Cluster routing facts (store/redis/cluster_slots.hpp): key slots as Redis computes them,
// and MOVED/ASK redirections read right or not at all.
#include "store/redis/cluster_slots.hpp"

#include <gtest/gtest.h>

namespace {

using namespace gw::store::redis;

TEST(cluster_slots, key_slot_is_redis_crc16_of_the_hash_tag) {
  // The cluster specification's own check value: CRC16("123456789") = 0x31C3.
  EXPECT_EQ(key_slot("123456789"), 0x31C3 % 16384);
  // Values as CLUSTER KEYSLOT gives them (Redis 7.0).
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot("somekey"), 11058);
  EXPECT_EQ(key_slot("foo{hash_tag}"), 2515);
  EXPECT_EQ(key_slot(""), 0);
  // The hash tag decides: keys of one limit and identity share a slot, whatever follows.
  EXPECT_EQ(key_slot("rl:{api:per_ip:10.0.0.1}:gcra"), key_slot("api:per_ip:10.0.0.1"));
  EXPECT_EQ(key_slot("x{user1000}.following"), key_slot("y{user1000}.followers"));
  // Only the first '{' and the first '}' after it count; an empty tag means the whole key.
  EXPECT_EQ(key_slot("{a}{b}"), key_slot("a"));
  EXPECT_EQ(key_slot("{}a"), key_slot(std::string_view{"{}a"}));
  EXPECT_NE(key_slot("{}a"), key_slot(""));
  EXPECT_EQ(key_slot("a{b"), key_slot(std::string_view{"a{b"}));
  EXPECT_EQ(key_slot("{{a}}"), key_slot("{a"));
}

TEST(cluster_slots, redirections_are_read_exactly) {
  auto moved = parse_redirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(moved);
  EXPECT_TRUE(moved->moved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->host, "127.0.0.1");
  EXPECT_EQ(moved->port, 6381);

  auto ask = parse_redirect("ASK 16383 ::1:7000");
  ASSERT_TRUE(ask);
  EXPECT_FALSE(ask->moved);
  EXPECT_EQ(ask->slot, 16383);
  EXPECT_EQ(ask->host, "::1");
  EXPECT_EQ(ask->port, 7000);

  // Only a port: the sender's own host.
  auto own = parse_redirect("MOVED 12 :6390");
  ASSERT_TRUE(own);
  EXPECT_EQ(own->host, "");
  EXPECT_EQ(own->port, 6390);

  for (auto bad : {"NOSCRIPT No matching script", "MOVED 16384 127.0.0.1:1",
                   "MOVED 1 127.0.0.1", "MOVED 1 127.0.0.1:0", "MOVED 1 127.0.0.1:65536",
                   "MOVED 1 6379",
                   "MOVED x 127.0.0.1:1", "ASK 12", "CLUSTERDOWN The cluster is down"})
    EXPECT_FALSE(parse_redirect(bad)) << bad;
}

}  // namespace
