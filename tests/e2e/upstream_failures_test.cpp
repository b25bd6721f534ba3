// What the client sees when the upstream misbehaves (SPEC 6): 502 refused/reset/garbage, 504 too
// slow, 503 when every server is ejected; and round robin over healthy servers.
#include "e2e_config.hpp"
#include "support/http_client.hpp"
#include "support/test_upstream.hpp"

#include <gtest/gtest.h>

namespace {

using namespace gw::test;
using namespace std::chrono_literals;

TEST(upstream_failures, refused_reset_garbage_and_slow) {
  test_upstream upstream;
  const auto closed_port = free_port();  // nothing listens there
  e2e_ports ports;
  const std::string routes = "routes:\n"
                             "  - name: down\n    match: { path_prefix: /down }\n"
                             "    upstream: dead\n"
                             "  - name: all\n    match: { path_prefix: / }\n"
                             "    upstream: backend\n";
  const std::string yaml = e2e_config(ports, {upstream.port()}, "",
                                      "    timeout: 500ms\n"
                                      "  dead:\n    servers: [127.0.0.1:" +
                                          std::to_string(closed_port) +
                                          "]\n    eject_after_failures: 100\n",
                                      routes);
  gateway_process gateway{gateway_binary(), yaml};
  gateway.wait_ready(ports.admin);

  const auto refused = request(ports.listen, "GET", "/down/x");
  EXPECT_EQ(refused.status, 502);
  EXPECT_EQ(refused.header("Content-Type"), "application/json");
  EXPECT_NE(refused.body.find(R"("error":"bad_gateway")"), std::string::npos);

  EXPECT_EQ(request(ports.listen, "GET", "/reset").status, 502);
  EXPECT_EQ(request(ports.listen, "GET", "/garbage").status, 502);
  // One or a few interim responses are consumed; an upstream sending them without end is broken.
  EXPECT_EQ(request(ports.listen, "GET", "/endless-interim").status, 502);

  const auto slow = request(ports.listen, "GET", "/slow?ms=3000");
  EXPECT_EQ(slow.status, 504);
  EXPECT_NE(slow.body.find(R"("error":"gateway_timeout")"), std::string::npos);

  // The gateway is fine afterwards.
  EXPECT_EQ(request(ports.listen, "GET", "/slow?ms=10").status, 200);
}

TEST(upstream_failures, round_robin_and_ejection_after_consecutive_connect_failures) {
  test_upstream a, b;
  const auto dead_port = free_port();
  e2e_ports ports;
  // One worker, so that all requests see the same round-robin position and failure counts.
  std::string yaml = e2e_config(ports, {a.port(), b.port(), dead_port}, "",
                                "    eject_after_failures: 2\n    eject_for: 1h\n");
  yaml.replace(yaml.find("workers: 2"), 10, "workers: 1");
  gateway_process gateway{gateway_binary(), yaml};
  gateway.wait_ready(ports.admin);

  for (int i = 0; i < 30; ++i) EXPECT_EQ(request(ports.listen, "GET", "/rr").status, 200);
  // The dead server's turns moved on to the next server until it was ejected; a and b then
  // share the rest evenly.
  EXPECT_EQ(a.request_count() + b.request_count(), 30u);
  EXPECT_GE(a.request_count(), 12u);
  EXPECT_GE(b.request_count(), 12u);
}

TEST(upstream_failures, every_server_ejected_is_503) {
  const auto dead_port = free_port();
  e2e_ports ports;
  std::string yaml = e2e_config(ports, {dead_port}, "",
                                "    eject_after_failures: 1\n    eject_for: 1h\n");
  yaml.replace(yaml.find("workers: 2"), 10, "workers: 1");
  gateway_process gateway{gateway_binary(), yaml};
  gateway.wait_ready(ports.admin);
  EXPECT_EQ(request(ports.listen, "GET", "/").status, 502);  // the failure that ejects it
  const auto reply = request(ports.listen, "GET", "/");
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(reply.body, R"({"error":"unavailable","message":"No healthy upstream server"})");
}

TEST(upstream_failures, an_idle_connection_closed_by_the_upstream_is_not_a_failure) {
  test_upstream upstream;
  e2e_ports ports;
  std::string yaml = e2e_config(ports, {upstream.port()});
  yaml.replace(yaml.find("workers: 2"), 10, "workers: 1");
  gateway_process gateway{gateway_binary(), yaml};
  gateway.wait_ready(ports.admin);
  for (int round = 0; round < 5; ++round) {
    EXPECT_EQ(request(ports.listen, "GET", "/x").status, 200);
    upstream.close_connections();
  }
}

}  // namespace
