// The proxy path end to end: the real gateway binary between a test client and a real upstream.
#include "e2e_config.hpp"
#include "support/http_client.hpp"
#include "support/test_upstream.hpp"

#include <gtest/gtest.h>

namespace {

using namespace gw::test;
using namespace std::chrono_literals;

const std::string routes = R"(routes:
  - name: login
    match: { path: /login, methods: [POST] }
    upstream: backend
  - name: public
    match: { path_prefix: /public/ }
    upstream: backend
    strip_prefix: true
  - name: api
    match: { path_prefix: /api/, host: api.example.com }
    upstream: backend
)";

class proxy_test : public ::testing::Test {
 protected:
  proxy_test() : gateway_(gateway_binary(), e2e_config(ports_, {upstream_.port()}, "", "", routes)) {
    gateway_.wait_ready(ports_.admin);
  }

  std::string get(const std::string& target, const std::string& host = "localhost") {
    return "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
  }

  test_upstream upstream_;
  e2e_ports ports_;
  gateway_process gateway_;
};

TEST_F(proxy_test, forwards_with_forwarding_headers_and_without_hop_by_hop_ones) {
  client_connection c{ports_.listen};
  c.send("POST /login HTTP/1.1\r\nHost: localhost:8080\r\nConnection: keep-alive, X-Hop\r\n"
         "X-Hop: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\n"
         "X-Forwarded-For: 203.0.113.9\r\nX-Custom: kept\r\nContent-Length: 5\r\n\r\nhello");
  const auto reply = c.read_reply();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "hello from upstream\n");
  EXPECT_EQ(reply.header("X-Upstream-Port"), std::to_string(upstream_.port()));

  const auto seen = upstream_.requests();
  ASSERT_EQ(seen.size(), 1u);
  const auto& r = seen[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/login");
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(r.header("X-Forwarded-For"), "203.0.113.9, 127.0.0.1");
  EXPECT_EQ(r.header("X-Forwarded-Proto"), e2e_over_tls() ? "https" : "http");
  EXPECT_EQ(r.header("X-Forwarded-Host"), "localhost:8080");
  EXPECT_EQ(r.header("X-Request-Id").size(), 32u);
  EXPECT_EQ(r.header("X-Custom"), "kept");
  EXPECT_EQ(r.header("Host"), "localhost:8080");
  for (auto name : {"X-Hop", "Keep-Alive", "TE", "Upgrade"})
    EXPECT_FALSE(r.has_header(name)) << name;
  // Connection is only there if the gateway itself chose to manage the upstream connection.
  EXPECT_EQ(r.header("Connection").find("X-Hop"), std::string::npos);
}

TEST_F(proxy_test, keeps_a_client_supplied_request_id_and_logs_one_json_line) {
  const auto reply = request(ports_.listen, "GET", "/public/a?x=1", {{"X-Request-Id", "abc-123"}});
  EXPECT_EQ(reply.status, 200);
  ASSERT_EQ(upstream_.requests().size(), 1u);
  EXPECT_EQ(upstream_.requests()[0].header("X-Request-Id"), "abc-123");
  EXPECT_EQ(upstream_.requests()[0].target, "/a?x=1");  // strip_prefix
  ASSERT_TRUE(gateway_.wait_for_stdout("\"request_id\":\"abc-123\"", 5s));
  const auto log = gateway_.stdout_text();
  EXPECT_NE(log.find(R"("client_ip":"127.0.0.1","method":"GET","path":"/public/a","route":"public","status":200,"decision":"allowed","upstream":"127.0.0.1:)"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("\"duration_ms\":"), std::string::npos);
  EXPECT_NE(log.find("\"bytes_in\":"), std::string::npos);
  EXPECT_NE(log.find("\"bytes_out\":"), std::string::npos);
}

TEST_F(proxy_test, no_route_is_404_json_and_nothing_is_forwarded) {
  const auto a = request(ports_.listen, "GET", "/nowhere");
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.header("Content-Type"), "application/json");
  EXPECT_EQ(a.body, R"({"error":"no_route","message":"No route matches the request"})");
  // Wrong method, wrong host: the routes do not match either.
  EXPECT_EQ(request(ports_.listen, "GET", "/login").status, 404);
  EXPECT_EQ(request(ports_.listen, "GET", "/api/users").status, 404);
  EXPECT_EQ(request(ports_.listen, "GET", "/api/users", {{"Host", "API.example.com:80"}}).status,
            200);
  // An encoded path cannot dodge its route.
  EXPECT_EQ(request(ports_.listen, "POST", "/%6Cogin").status, 200);
  EXPECT_EQ(upstream_.request_count(), 2u);
}

TEST_F(proxy_test, keep_alive_reuses_both_connections) {
  client_connection c{ports_.listen};
  for (int i = 0; i < 5; ++i) {
    c.send(get("/public/k" + std::to_string(i)));
    const auto reply = c.read_reply();
    ASSERT_EQ(reply.status, 200);
    EXPECT_TRUE(reply.keep_alive);
  }
  EXPECT_EQ(upstream_.request_count(), 5u);
  EXPECT_EQ(upstream_.connection_count(), 1u);
}

TEST_F(proxy_test, pipelined_requests_are_answered_in_order) {
  client_connection c{ports_.listen};
  c.send(get("/public/slow?ms=200") + get("/public/status/201") + get("/nowhere") +
         get("/public/status/202"));
  EXPECT_EQ(c.read_reply().body, "slow\n");
  EXPECT_EQ(c.read_reply().status, 201);
  EXPECT_EQ(c.read_reply().status, 404);
  EXPECT_EQ(c.read_reply().status, 202);
}

TEST_F(proxy_test, head_204_304_and_interim_responses_have_no_body) {
  client_connection c{ports_.listen};
  c.send("HEAD /public/download?bytes=1000 HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto head = c.read_reply(true);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("Content-Length"), "1000");
  EXPECT_TRUE(head.body.empty());
  for (int status : {204, 304}) {
    c.send(get("/public/status/" + std::to_string(status)));
    const auto reply = c.read_reply();
    EXPECT_EQ(reply.status, status);
    EXPECT_TRUE(reply.body.empty());
  }
  c.send(get("/public/interim"));
  const auto final_reply = c.read_reply(false, true);
  EXPECT_EQ(final_reply.status, 200);
  EXPECT_EQ(final_reply.body, "final\n");
  // The connection is still in sync after all of that.
  c.send(get("/public/after"));
  EXPECT_EQ(c.read_reply().body, "hello from upstream\n");
}

TEST_F(proxy_test, expect_100_continue_is_answered_before_the_body_is_sent) {
  client_connection c{ports_.listen};
  c.send("POST /public/upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
         "Content-Length: 11\r\n\r\n");
  const auto interim = c.read_reply(false, true);
  EXPECT_EQ(interim.status, 100);
  c.send("hello world");
  const auto reply = c.read_reply();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body.substr(0, 3), "11 ");
  ASSERT_EQ(upstream_.requests().size(), 1u);
  EXPECT_FALSE(upstream_.requests()[0].has_header("Expect"));
}

TEST_F(proxy_test, http10_client_gets_a_close_delimited_reply_of_a_chunked_upstream) {
  client_connection c{ports_.listen};
  c.send("GET /public/download?bytes=100000&chunked=1 HTTP/1.0\r\n\r\n");
  const auto reply = c.read_reply();
  EXPECT_EQ(reply.status, 200);
  // The body ends where the connection does: the reply parsed completely proves the close.
  EXPECT_EQ(reply.body.size(), 100000u);
  EXPECT_FALSE(reply.keep_alive);
  EXPECT_FALSE(reply.has_header("Transfer-Encoding"));
  // It came without Host: upstream it is HTTP/1.1 with the upstream's name as its Host.
  ASSERT_EQ(upstream_.requests().size(), 1u);
  EXPECT_EQ(upstream_.requests()[0].header("Host"), "backend");
  EXPECT_FALSE(upstream_.requests()[0].has_header("X-Forwarded-Host"));
}

}  // namespace

namespace {

// IPv6 end to end: the gateway listens on [::1], its upstream is on [::1], the client comes
// through a proxy trusted by an IPv6 CIDR and names itself by an IPv6 forwarded address, and a
// per-client limit counts each such client apart.
TEST(ipv6, listens_forwards_and_limits_by_forwarded_address_on_loopback) {
  test_upstream upstream{test_upstream_options{.address = "::1"}};
  e2e_ports ports;
  std::string yaml;
  yaml += "server:\n  listen: \"[::1]:" + std::to_string(ports.listen) + "\"\n";
  use_plain_by_default(ports.admin);
  yaml += "  workers: 1\n  access_log: true\n" + e2e_tls_lines(ports.listen);
  yaml += "admin:\n  listen: 127.0.0.1:" + std::to_string(ports.admin) + "\n";
  yaml += "identity:\n  trusted_proxies: [\"::1/128\"]\n";
  yaml += "upstreams:\n  backend:\n    servers: [\"[::1]:" + std::to_string(upstream.port()) +
          "\"]\n";
  yaml += "routes:\n  - name: all\n    match: { path_prefix: / }\n    upstream: backend\n";
  yaml += "    limits:\n      - name: per_ip\n        key: [client_ip]\n"
          "        algorithm: fixed_window\n        requests: 2\n        window: 1h\n";
  gateway_process gateway{gateway_binary(), yaml};
  gateway.wait_ready(ports.admin);

  auto from = [&](const std::string& forwarded) {
    client_connection c{ports.listen, "::1"};
    c.send("GET /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: " + forwarded +
           "\r\nConnection: close\r\n\r\n");
    return c.read_reply().status;
  };
  EXPECT_EQ(from("2001:db8::7"), 200);
  EXPECT_EQ(from("2001:db8::7"), 200);
  EXPECT_EQ(from("2001:db8::7"), 429);
  EXPECT_EQ(from("[2001:db8::8]"), 200);  // another client, bracketed as some proxies write it
  EXPECT_EQ(from("2001:db8::7, ::1"), 429);  // the trusted hop is skipped: still ::7
  const auto seen = upstream.requests();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].header("X-Forwarded-For"), "2001:db8::7, ::1");
  ASSERT_TRUE(gateway.wait_for_stdout(R"("client_ip":"2001:db8::8")", 5s));
}

}  // namespace
