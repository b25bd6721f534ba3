// Rate limiting end to end with the memory store: exact counts under concurrency for every
// algorithm, overrides, auth, shadow mode, client identity and the headers a client reads.
#include "e2e_config.hpp"
#include "support/http_client.hpp"
#include "support/test_upstream.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <thread>

namespace {

using namespace gw::test;
using namespace std::chrono_literals;

// sha256("gold-key"), sha256("silver-key"), sha256("plain-key") are computed by the gateway from
// `key`; plain keys in a config only earn a warning.
const std::string consumers = R"(consumers:
  - name: acme
    key: gold-key
    tier: gold
  - name: bob
    key: silver-key
    tier: silver
  - name: carol
    key: plain-key
)";

std::string config_with(const e2e_ports& ports, std::uint16_t upstream, const std::string& routes,
                        const std::string& identity = "") {
  std::string yaml = e2e_config(ports, {upstream}, "", "", routes);
  return yaml + identity + consumers;
}

// Fires `count` requests at once, each on its own connection; returns the statuses.
std::vector<int> burst_of(std::uint16_t port, int count, const std::string& target,
                          header_list headers = {}) {
  std::vector<int> statuses(count, 0);
  std::barrier start{count};
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i)
    threads.emplace_back([&, i] {
      bool arrived = false;
      try {
        client_connection c{port};
        std::string raw = "GET " + target + " HTTP/1.1\r\nHost: x\r\n";
        for (const auto& [k, v] : headers) raw += k + ": " + v + "\r\n";
        raw += "\r\n";
        arrived = true;
        start.arrive_and_wait();
        c.send(raw);
        statuses[i] = c.read_reply().status;
      } catch (const std::exception&) {
        // A thread that never reached the barrier must not leave the others waiting on it.
        if (!arrived) start.arrive_and_drop();
        statuses[i] = -1;
      }
    });
  for (auto& t : threads) t.join();
  return statuses;
}

int count_of(const std::vector<int>& statuses, int status) {
  return static_cast<int>(std::count(statuses.begin(), statuses.end(), status));
}

class algorithm_test : public ::testing::TestWithParam<std::string> {};

TEST_P(algorithm_test, two_hundred_concurrent_requests_against_fifty_admit_exactly_fifty) {
  test_upstream upstream;
  e2e_ports ports;
  const std::string routes = "routes:\n  - name: api\n    match: { path_prefix: / }\n"
                             "    upstream: backend\n    limits:\n      - name: per_ip\n"
                             "        key: [client_ip]\n        algorithm: " + GetParam() +
                             "\n        requests: 50\n        window: 1h\n";
  gateway_process gateway{gateway_binary(), config_with(ports, upstream.port(), routes)};
  gateway.wait_ready(ports.admin);

  const auto statuses = burst_of(ports.listen, 200, "/burst");
  EXPECT_EQ(count_of(statuses, 200), 50);
  EXPECT_EQ(count_of(statuses, 429), 150);
  EXPECT_EQ(upstream.request_count(), 50u);
}

INSTANTIATE_TEST_SUITE_P(every_algorithm, algorithm_test,
                         ::testing::Values("gcra", "token_bucket", "sliding_window",
                                           "sliding_log", "fixed_window"));

class rate_limit_test : public ::testing::Test {
 protected:
  void start(const std::string& routes, const std::string& identity = "") {
    gateway_.emplace(gateway_binary(), config_with(ports_, upstream_.port(), routes, identity));
    gateway_->wait_ready(ports_.admin);
  }

  test_upstream upstream_;
  e2e_ports ports_;
  std::optional<gateway_process> gateway_;
};

TEST_F(rate_limit_test, headers_and_the_429_carry_the_right_numbers) {
  start("routes:\n  - name: login\n    match: { path: /login }\n    upstream: backend\n"
        "    limits:\n      - name: per_ip\n        key: [client_ip]\n"
        "        requests: 5\n        window: 1m\n");
  const auto first = request(ports_.listen, "POST", "/login");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.header("RateLimit-Policy"), R"("per_ip";q=5;w=60)");
  EXPECT_EQ(first.header("RateLimit"), R"("per_ip";r=4;t=12)");
  EXPECT_EQ(first.header("X-RateLimit-Limit"), "5");
  EXPECT_EQ(first.header("X-RateLimit-Remaining"), "4");
  EXPECT_EQ(first.header("X-RateLimit-Reset"), "12");
  for (int i = 0; i < 4; ++i) EXPECT_EQ(request(ports_.listen, "POST", "/login").status, 200);

  const auto limited = request(ports_.listen, "POST", "/login");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.header("Content-Type"), "application/json");
  const int retry_after = std::stoi(limited.header("Retry-After"));
  EXPECT_GE(retry_after, 11);
  EXPECT_LE(retry_after, 12);
  EXPECT_EQ(limited.body, R"({"error":"rate_limited","message":"Rate limit exceeded","route":"login","limit":"per_ip","retry_after":)" +
                              std::to_string(retry_after) + "}");
  EXPECT_EQ(limited.header("RateLimit"),
            R"("per_ip";r=0;t=)" + std::to_string(retry_after));
  EXPECT_EQ(limited.header("X-RateLimit-Remaining"), "0");
  EXPECT_EQ(upstream_.request_count(), 5u);
  EXPECT_TRUE(gateway_->wait_for_stdout("\"status\":429,\"decision\":\"limited\"", 5s));
}

TEST_F(rate_limit_test, overrides_by_tier_and_consumer_and_keys_absent_from_a_request) {
  start("routes:\n  - name: api\n    match: { path_prefix: /api/ }\n    upstream: backend\n"
        "    headers: []\n"
        "    limits:\n      - name: per_consumer\n        key: [consumer]\n"
        "        algorithm: fixed_window\n        requests: 2\n        window: 1h\n"
        "        overrides:\n"
        "          - when: { tier: gold }\n            requests: 5\n"
        "          - when: { consumer: bob }\n            requests: 3\n");
  auto admitted = [&](const std::string& key) {
    int ok = 0;
    for (int i = 0; i < 8; ++i) {
      header_list headers;
      if (!key.empty()) headers.emplace_back("X-API-Key", key);
      const auto reply = request(ports_.listen, "GET", "/api/things", headers);
      if (reply.status == 200) ++ok;
      EXPECT_FALSE(reply.has_header("RateLimit"));  // headers: []
    }
    return ok;
  };
  EXPECT_EQ(admitted("gold-key"), 5);
  EXPECT_EQ(admitted("silver-key"), 3);
  EXPECT_EQ(admitted("plain-key"), 2);
  // No key, or an unknown one: no consumer, so a consumer-keyed limit does not apply.
  EXPECT_EQ(admitted(""), 8);
  EXPECT_EQ(admitted("who-knows"), 8);
}

TEST_F(rate_limit_test, auth_required_answers_401_and_the_upstream_learns_the_consumer) {
  start("routes:\n  - name: private\n    match: { path_prefix: / }\n    upstream: backend\n"
        "    auth: required\n");
  const auto none = request(ports_.listen, "GET", "/x");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.body, R"({"error":"unauthorized","message":"A valid API key is required"})");
  EXPECT_EQ(request(ports_.listen, "GET", "/x", {{"X-API-Key", "wrong"}}).status, 401);
  EXPECT_EQ(upstream_.request_count(), 0u);

  const auto ok = request(ports_.listen, "GET", "/x",
                          {{"X-API-Key", "gold-key"}, {"X-Consumer", "forged"}});
  EXPECT_EQ(ok.status, 200);
  ASSERT_EQ(upstream_.requests().size(), 1u);
  EXPECT_EQ(upstream_.requests()[0].header("X-Consumer"), "acme");
  // The key never shows up in the access log.
  EXPECT_TRUE(gateway_->wait_for_stdout("\"status\":200", 5s));
  EXPECT_EQ(gateway_->stdout_text().find("gold-key"), std::string::npos);
  EXPECT_EQ(gateway_->stderr_text().find("gold-key"), std::string::npos);
}

TEST_F(rate_limit_test, shadow_route_admits_everything_and_records_what_it_would_limit) {
  start("routes:\n  - name: dry\n    match: { path_prefix: / }\n    upstream: backend\n"
        "    shadow: true\n"
        "    limits:\n      - name: per_ip\n        key: [client_ip]\n"
        "        requests: 2\n        window: 1h\n");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(request(ports_.listen, "GET", "/dry").status, 200);
  EXPECT_EQ(upstream_.request_count(), 5u);
  ASSERT_TRUE(gateway_->wait_for_stdout("shadow_limited", 5s));
  std::this_thread::sleep_for(200ms);
  const auto log = gateway_->stdout_text();
  std::size_t shadow = 0;
  for (auto at = log.find("\"decision\":\"shadow_limited\""); at != std::string::npos;
       at = log.find("\"decision\":\"shadow_limited\"", at + 1))
    ++shadow;
  EXPECT_EQ(shadow, 3u);
}

TEST_F(rate_limit_test, client_ip_comes_from_the_forwarded_header_only_behind_trusted_proxies) {
  const std::string routes = "routes:\n  - name: api\n    match: { path_prefix: / }\n"
                             "    upstream: backend\n    limits:\n      - name: per_ip\n"
                             "        key: [client_ip]\n        algorithm: fixed_window\n"
                             "        requests: 1\n        window: 1h\n";
  start(routes, "identity:\n  trusted_proxies: [127.0.0.1/32]\n");
  // Behind the trusted proxy (the test client on 127.0.0.1) every forwarded client counts alone,
  // and a forged leftmost entry does not make a new client.
  EXPECT_EQ(request(ports_.listen, "GET", "/", {{"X-Forwarded-For", "198.51.100.1"}}).status, 200);
  EXPECT_EQ(request(ports_.listen, "GET", "/", {{"X-Forwarded-For", "198.51.100.2"}}).status, 200);
  EXPECT_EQ(request(ports_.listen, "GET", "/", {{"X-Forwarded-For", "198.51.100.1"}}).status, 429);
  EXPECT_EQ(request(ports_.listen, "GET", "/",
                    {{"X-Forwarded-For", "203.0.113.99, 198.51.100.2"}})
                .status,
            429);
  EXPECT_TRUE(gateway_->wait_for_stdout("\"client_ip\":\"198.51.100.2\"", 5s));
}

TEST_F(rate_limit_test, an_untrusted_peer_cannot_choose_its_address) {
  const std::string routes = "routes:\n  - name: api\n    match: { path_prefix: / }\n"
                             "    upstream: backend\n    limits:\n      - name: per_ip\n"
                             "        key: [client_ip]\n        algorithm: fixed_window\n"
                             "        requests: 1\n        window: 1h\n";
  start(routes);  // no trusted proxies
  EXPECT_EQ(request(ports_.listen, "GET", "/", {{"X-Forwarded-For", "198.51.100.1"}}).status, 200);
  EXPECT_EQ(request(ports_.listen, "GET", "/", {{"X-Forwarded-For", "198.51.100.2"}}).status, 429);
}

}  // namespace
