// Malformed or ambiguous requests (SPEC 4.1): answered 400 (or 413/431), the connection closed,
// and nothing at all reaches the upstream.
#include "e2e_config.hpp"
#include "support/http_client.hpp"
#include "support/test_upstream.hpp"

#include <gtest/gtest.h>

namespace {

using namespace gw::test;
using namespace std::chrono_literals;

class framing_test : public ::testing::Test {
 protected:
  framing_test()
      : gateway_(gateway_binary(),
                 e2e_config(ports_, {upstream_.port()},
                            "  max_header_bytes: 4KiB\n  max_body_bytes: 1MiB\n")) {
    gateway_.wait_ready(ports_.admin);
  }

  // Sends `raw`, expects `status` with the JSON error body, then the connection closed.
  void expect_refused(const std::string& raw, int status, const std::string& error) {
    SCOPED_TRACE(raw.substr(0, 120));
    client_connection c{ports_.listen};
    c.try_send(raw);
    const auto reply = c.read_reply();
    EXPECT_EQ(reply.status, status);
    EXPECT_EQ(reply.header("Content-Type"), "application/json");
    EXPECT_NE(reply.body.find("\"error\":\"" + error + "\""), std::string::npos) << reply.body;
    EXPECT_FALSE(reply.keep_alive);
    EXPECT_TRUE(c.wait_closed(5s));
  }

  test_upstream upstream_;
  e2e_ports ports_;
  gateway_process gateway_;
};

TEST_F(framing_test, ambiguous_or_malformed_framing_is_400_and_never_forwarded) {
  const std::vector<std::string> cases = {
      // Content-Length and Transfer-Encoding together (request smuggling).
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
      "0\r\n\r\n",
      // Two different Content-Length values.
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!",
      // A Transfer-Encoding other than a final chunked.
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nhello",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
      "\r\n0\r\n\r\n",
      // obs-fold.
      "GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n",
      // NUL and bare CR in the head; a bare LF line ending.
      std::string("GET / HTTP/1.1\r\nHost: a\r\nX-Nul: a\0b\r\n\r\n", 39),
      "GET / HTTP/1.1\r\nHost: a\r\nX-Cr: a\rb\r\n\r\n",
      "GET / HTTP/1.1\nHost: a\r\n\r\n",
      // Invalid targets, absolute-form ones among them (userinfo, no authority, a fragment).
      "GET http://user@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
      "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET http://a/x#top HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET ftp://a/x HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /a<b> HTTP/1.1\r\nHost: a\r\n\r\n",
      // Bad chunk sizes.
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "fffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
      // Missing or repeated Host; a request line that is not HTTP/1.x.
      "GET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
      "GET /\r\n\r\n",
      "G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
  };
  for (const auto& raw : cases) expect_refused(raw, 400, "bad_request");
  EXPECT_EQ(upstream_.request_count(), 0u);
  EXPECT_EQ(upstream_.connection_count(), 0u);
}

// RFC 9112 3.2.2: an absolute-form target is accepted; its authority replaces Host, and the
// upstream receives origin-form. (Host is still required in HTTP/1.1.)
TEST_F(framing_test, an_absolute_form_target_goes_upstream_in_origin_form) {
  client_connection c{ports_.listen};
  c.send("GET http://API.example:8080/ok?x=1 HTTP/1.1\r\nHost: ignored.example\r\n\r\n");
  EXPECT_EQ(c.read_reply().status, 200);
  c.send("GET HTTPS://api.example HTTP/1.1\r\nHost: ignored.example\r\n\r\n");
  EXPECT_EQ(c.read_reply().status, 200);
  const auto seen = upstream_.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].target, "/ok?x=1");
  EXPECT_EQ(seen[0].header("Host"), "API.example:8080");
  EXPECT_EQ(seen[1].target, "/");
  EXPECT_EQ(seen[1].header("Host"), "api.example");
  expect_refused("GET http://a/x HTTP/1.1\r\n\r\n", 400, "bad_request");
}

TEST_F(framing_test, a_head_over_max_header_bytes_is_431) {
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(5000, 'x') + "\r\n\r\n", 431,
                 "header_too_large");
  // Also when the end of the head never comes.
  expect_refused("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(5000, 'x'), 431,
                 "header_too_large");
  EXPECT_EQ(upstream_.request_count(), 0u);
}

TEST_F(framing_test, a_declared_body_over_max_body_bytes_is_413_before_forwarding) {
  expect_refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n", 413,
                 "payload_too_large");
  EXPECT_EQ(upstream_.request_count(), 0u);
}

TEST_F(framing_test, a_chunked_body_growing_past_max_body_bytes_is_413) {
  const auto result = upload_pattern(ports_.listen, "/upload", 3 * 1024 * 1024, true, 30s);
  EXPECT_EQ(result.status, 413);
  EXPECT_NE(result.body_text.find("payload_too_large"), std::string::npos);
}

TEST_F(framing_test, well_formed_requests_still_pass_on_the_same_gateway) {
  EXPECT_EQ(request(ports_.listen, "GET", "/ok").status, 200);
  client_connection c{ports_.listen};
  c.send("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n");
  const auto reply = c.read_reply();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body.substr(0, 3), "11 ");
  // Same Content-Length twice is not ambiguous.
  c.send("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(c.read_reply().status, 200);
}

}  // namespace
