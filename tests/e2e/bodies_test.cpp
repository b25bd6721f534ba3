// Bodies stream through the gateway in both directions with bounded memory: chunked and
// Content-Length, up to 1 GiB each way while the gateway's peak RSS stays under 64 MiB.
#include "e2e_config.hpp"
#include "support/http_client.hpp"
#include "support/test_upstream.hpp"

#include <gtest/gtest.h>

namespace {

using namespace gw::test;
using namespace std::chrono_literals;

constexpr std::uint64_t gib = 1024ull * 1024 * 1024;

class bodies_test : public ::testing::Test {
 protected:
  bodies_test()
      : gateway_(gateway_binary(),
                 e2e_config(ports_, {upstream_.port()}, "  max_body_bytes: 0\n")) {
    gateway_.wait_ready(ports_.admin);
  }

  test_upstream upstream_;
  e2e_ports ports_;
  gateway_process gateway_;
};

TEST_F(bodies_test, chunked_both_ways) {
  const auto up = upload_pattern(ports_.listen, "/upload", 1'000'003, true);
  EXPECT_EQ(up.status, 200);
  EXPECT_EQ(up.body_text, "1000003 " + fnv1a64_hex_of_pattern(1'000'003));
  ASSERT_EQ(upstream_.requests().size(), 1u);
  EXPECT_EQ(upstream_.requests()[0].header("Transfer-Encoding"), "chunked");

  const auto down = download(ports_.listen, "/download?bytes=1000003&chunked=1");
  EXPECT_EQ(down.status, 200);
  EXPECT_EQ(down.bytes, 1'000'003u);
  EXPECT_EQ(down.fnv_hex, fnv1a64_hex_of_pattern(1'000'003));
  EXPECT_EQ(down.header("Transfer-Encoding"), "chunked");
}

TEST_F(bodies_test, content_length_both_ways) {
  const auto up = upload_pattern(ports_.listen, "/upload", 777'777, false);
  EXPECT_EQ(up.body_text, "777777 " + fnv1a64_hex_of_pattern(777'777));
  ASSERT_EQ(upstream_.requests().size(), 1u);
  EXPECT_EQ(upstream_.requests()[0].header("Content-Length"), "777777");

  const auto down = download(ports_.listen, "/download?bytes=777777");
  EXPECT_EQ(down.bytes, 777'777u);
  EXPECT_EQ(down.header("Content-Length"), "777777");
  EXPECT_EQ(down.fnv_hex, fnv1a64_hex_of_pattern(777'777));
}

TEST_F(bodies_test, one_gib_each_way_in_bounded_memory) {
  const auto up = upload_pattern(ports_.listen, "/upload", gib, false, 240s);
  EXPECT_EQ(up.status, 200);
  EXPECT_EQ(up.body_text, std::to_string(gib) + " " + fnv1a64_hex_of_pattern(gib));

  const auto down = download(ports_.listen, "/download?bytes=" + std::to_string(gib), 240s);
  EXPECT_EQ(down.status, 200);
  EXPECT_EQ(down.bytes, gib);
  EXPECT_EQ(down.fnv_hex, fnv1a64_hex_of_pattern(gib));

#ifdef GATEWAY_SANITIZED
  // A sanitizer's shadow memory and quarantine are its own; the bound is the release build's.
  constexpr long most_kib = 512 * 1024;
#else
  constexpr long most_kib = 64 * 1024;
#endif
  EXPECT_LT(gateway_.peak_rss_kib(), most_kib) << "peak RSS in KiB";
}

}  // namespace
