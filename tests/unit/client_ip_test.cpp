// Client IP resolution behind trusted proxies (SPEC 4.3): a forged header from an untrusted
// peer never counts; trusted chains are walked right to left across every header line.
#include "identity/client_ip.hpp"

#include <gtest/gtest.h>

namespace {

using gw::identity::cidr_set;
using gw::identity::client_ip_resolver;

std::string resolve(const client_ip_resolver& r, std::string_view peer,
                    std::vector<std::string_view> lines) {
  return r.resolve(boost::asio::ip::make_address(std::string{peer}), lines).to_string();
}

TEST(client_ip, table) {
  const client_ip_resolver r{cidr_set{{"127.0.0.1/32", "10.0.0.0/8", "::1", "fd00::/8"}}};
  struct row {
    const char* peer;
    std::vector<std::string_view> lines;
    const char* client;
  } rows[] = {
      // Untrusted peer: the header is ignored, however it looks.
      {"203.0.113.7", {"1.2.3.4"}, "203.0.113.7"},
      {"203.0.113.7", {"10.0.0.1, 127.0.0.1"}, "203.0.113.7"},
      // Trusted peer: the rightmost untrusted entry, not the leftmost (which anyone can forge).
      {"127.0.0.1", {"6.6.6.6, 198.51.100.1"}, "198.51.100.1"},
      {"127.0.0.1", {"6.6.6.6, 198.51.100.1, 10.1.1.1, 10.2.2.2"}, "198.51.100.1"},
      // Several lines are one list.
      {"10.0.0.5", {"6.6.6.6, 198.51.100.2", "10.9.9.9"}, "198.51.100.2"},
      {"10.0.0.5", {"198.51.100.3", "10.1.1.1, 10.2.2.2"}, "198.51.100.3"},
      // Everything trusted: the leftmost.
      {"127.0.0.1", {"10.1.1.1, 10.2.2.2"}, "10.1.1.1"},
      // Garbage stops the walk at the last address checked.
      {"127.0.0.1", {"198.51.100.4, garbage, 10.3.3.3"}, "10.3.3.3"},
      {"127.0.0.1", {"198.51.100.4, unknown"}, "127.0.0.1"},
      {"127.0.0.1", {"198.51.100.4,, 10.3.3.3"}, "10.3.3.3"},
      // Empty header: the peer.
      {"127.0.0.1", {""}, "127.0.0.1"},
      {"127.0.0.1", {}, "127.0.0.1"},
      // IPv6, bracketed entries, and IPv4-mapped addresses counted as IPv4.
      {"::1", {"2001:db8::1"}, "2001:db8::1"},
      {"::1", {"[2001:db8::2], fd00::1"}, "2001:db8::2"},
      {"::ffff:127.0.0.1", {"198.51.100.5"}, "198.51.100.5"},
      {"127.0.0.1", {"::ffff:10.0.0.1, ::ffff:198.51.100.6"}, "198.51.100.6"},
      {"127.0.0.1", {"198.51.100.7, ::ffff:10.0.0.1"}, "198.51.100.7"},
  };
  for (const auto& row : rows)
    EXPECT_EQ(resolve(r, row.peer, row.lines), row.client)
        << "peer " << row.peer << " lines " << (row.lines.empty() ? "" : row.lines[0]);
}

TEST(client_ip, nothing_trusted_means_the_peer) {
  const client_ip_resolver r{cidr_set{}};
  EXPECT_EQ(resolve(r, "127.0.0.1", {"1.2.3.4"}), "127.0.0.1");
}

TEST(cidr_set, prefixes) {
  const cidr_set set{{"192.168.0.0/16", "2001:db8::/32", "0.0.0.0/0"}};
  EXPECT_TRUE(set.contains(boost::asio::ip::make_address("8.8.8.8")));
  const cidr_set v6{{"2001:db8::/32"}};
  EXPECT_TRUE(v6.contains(boost::asio::ip::make_address("2001:db8:ffff::1")));
  EXPECT_FALSE(v6.contains(boost::asio::ip::make_address("2001:db9::1")));
  EXPECT_FALSE(v6.contains(boost::asio::ip::make_address("10.0.0.1")));
  EXPECT_THROW(cidr_set({"10.0.0.0/33"}), std::invalid_argument);
  EXPECT_THROW(cidr_set({"nonsense"}), std::invalid_argument);
}

}  // namespace
