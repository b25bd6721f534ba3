// The scalar forms of the configuration: durations, sizes, endpoints, and endpoint printing.
#include "config/config.hpp"
#include "config/units.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace gw::config {
namespace {

TEST(parse_duration, accepts_every_unit) {
  EXPECT_EQ(parse_duration("250ms"), duration{250});
  EXPECT_EQ(parse_duration("10s"), duration{10'000});
  EXPECT_EQ(parse_duration("5m"), duration{300'000});
  EXPECT_EQ(parse_duration("1h"), duration{3'600'000});
  EXPECT_EQ(parse_duration("1d"), duration{86'400'000});
  EXPECT_EQ(parse_duration("0s"), duration{0});
  EXPECT_EQ(parse_duration("007s"), duration{7'000});
}

TEST(parse_duration, requires_a_unit) {
  EXPECT_FALSE(parse_duration("10"));
  EXPECT_FALSE(parse_duration("0"));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration(""));
}

TEST(parse_duration, rejects_other_forms) {
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_FALSE(parse_duration("+1s"));
  EXPECT_FALSE(parse_duration("1.5s"));
  EXPECT_FALSE(parse_duration("10 s"));
  EXPECT_FALSE(parse_duration(" 10s"));
  EXPECT_FALSE(parse_duration("10s "));
  EXPECT_FALSE(parse_duration("10S"));
  EXPECT_FALSE(parse_duration("10sec"));
  EXPECT_FALSE(parse_duration("1m30s"));
  EXPECT_FALSE(parse_duration("10us"));
  EXPECT_FALSE(parse_duration("0x10s"));
}

TEST(parse_duration, rejects_overflow) {
  EXPECT_FALSE(parse_duration("99999999999999999999999ms"));
  EXPECT_FALSE(parse_duration("9223372036854775807d"));
  // The cap keeps the value convertible to nanoseconds: about 292 years.
  EXPECT_TRUE(parse_duration("106751d"));
  EXPECT_FALSE(parse_duration("106752d"));
  EXPECT_EQ(parse_duration("9223372036854ms"), duration{9223372036854});
  EXPECT_FALSE(parse_duration("9223372036855ms"));
}

TEST(parse_size, accepts_plain_bytes_and_binary_units) {
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("1024"), 1024u);
  EXPECT_EQ(parse_size("512B"), 512u);
  EXPECT_EQ(parse_size("16KiB"), 16u * 1024);
  EXPECT_EQ(parse_size("10MiB"), 10u * 1024 * 1024);
  EXPECT_EQ(parse_size("2GiB"), 2ull * 1024 * 1024 * 1024);
  EXPECT_EQ(parse_size("18446744073709551615"), std::numeric_limits<std::uint64_t>::max());
}

TEST(parse_size, rejects_other_forms) {
  EXPECT_FALSE(parse_size(""));
  EXPECT_FALSE(parse_size("KiB"));
  EXPECT_FALSE(parse_size("-1"));
  EXPECT_FALSE(parse_size("+1"));
  EXPECT_FALSE(parse_size("1.5MiB"));
  EXPECT_FALSE(parse_size("16KB"));
  EXPECT_FALSE(parse_size("16kib"));
  EXPECT_FALSE(parse_size("16 KiB"));
  EXPECT_FALSE(parse_size("1TiB"));
  EXPECT_FALSE(parse_size("0x10"));
}

TEST(parse_size, rejects_overflow) {
  EXPECT_FALSE(parse_size("18446744073709551616"));
  EXPECT_FALSE(parse_size("17179869184GiB"));  // 2^34 GiB = 2^64
  EXPECT_EQ(parse_size("17179869183GiB"), 17179869183ull << 30);
}

TEST(parse_endpoint, accepts_ipv4_ipv6_and_names) {
  EXPECT_EQ(parse_endpoint("0.0.0.0:8080"), (endpoint{"0.0.0.0", 8080}));
  EXPECT_EQ(parse_endpoint("127.0.0.1:1"), (endpoint{"127.0.0.1", 1}));
  EXPECT_EQ(parse_endpoint("[::]:8080"), (endpoint{"::", 8080}));
  EXPECT_EQ(parse_endpoint("[2001:db8::1]:65535"), (endpoint{"2001:db8::1", 65535}));
  EXPECT_EQ(parse_endpoint("localhost:9000"), (endpoint{"localhost", 9000}));
  EXPECT_EQ(parse_endpoint("users-1.svc.cluster.local:80"),
            (endpoint{"users-1.svc.cluster.local", 80}));
}

TEST(parse_endpoint, rejects_bad_ports) {
  EXPECT_FALSE(parse_endpoint("localhost"));
  EXPECT_FALSE(parse_endpoint("localhost:"));
  EXPECT_FALSE(parse_endpoint("localhost:0"));
  EXPECT_FALSE(parse_endpoint("localhost:65536"));
  EXPECT_FALSE(parse_endpoint("localhost:99999999999999999999"));
  EXPECT_FALSE(parse_endpoint("localhost:-1"));
  EXPECT_FALSE(parse_endpoint("localhost:+80"));
  EXPECT_FALSE(parse_endpoint("localhost:http"));
  EXPECT_FALSE(parse_endpoint("localhost:80 "));
  EXPECT_FALSE(parse_endpoint("[::1]"));
  EXPECT_FALSE(parse_endpoint("[::1]80"));
}

TEST(parse_endpoint, rejects_bad_hosts) {
  EXPECT_FALSE(parse_endpoint(":80"));
  EXPECT_FALSE(parse_endpoint("[]:80"));
  EXPECT_FALSE(parse_endpoint("::1:80"));  // IPv6 needs brackets
  EXPECT_FALSE(parse_endpoint("[1.2.3.4]:80"));
  EXPECT_FALSE(parse_endpoint("[fe80::1%eth0]:80"));
  EXPECT_FALSE(parse_endpoint("[::1:80"));
  EXPECT_FALSE(parse_endpoint("300.1.1.1:80"));
  EXPECT_FALSE(parse_endpoint("10.1:80"));
  EXPECT_FALSE(parse_endpoint("under_score:80"));
  EXPECT_FALSE(parse_endpoint("-lead.example:80"));
  EXPECT_FALSE(parse_endpoint("a..b:80"));
  EXPECT_FALSE(parse_endpoint("a b:80"));
  EXPECT_FALSE(parse_endpoint("http://a:80"));
  EXPECT_FALSE(parse_endpoint(std::string(64, 'a') + ":80"));
}

TEST(endpoint, prints_ipv6_in_brackets) {
  EXPECT_EQ((endpoint{"1.2.3.4", 80}).to_string(), "1.2.3.4:80");
  EXPECT_EQ((endpoint{"::1", 80}).to_string(), "[::1]:80");
  EXPECT_EQ((endpoint{"localhost", 9000}).to_string(), "localhost:9000");
}

TEST(endpoint, round_trips_through_the_parser) {
  for (const char* text : {"0.0.0.0:8080", "[::]:8080", "[2001:db8::1]:443", "redis:6379"}) {
    auto parsed = parse_endpoint(text);
    ASSERT_TRUE(parsed) << text;
    EXPECT_EQ(parsed->to_string(), text);
  }
}

}  // namespace
}  // namespace gw::config
