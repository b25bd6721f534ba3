// Faults between the gateway and what it depends on, with real processes: a fault proxy
// (tests/support/fault_proxy.hpp) between the gateway and Redis and between the gateway and its
// upstream adds delay, black-holes, resets a reply half-way, or drips it a byte at a time; Redis
// is frozen (SIGSTOP), full (maxmemory, noeviction) or out of client slots (maxclients); the
// upstream answers garbage, closes mid-body or sends a header without end. Each
// case asserts what a user sees: the SPEC's status, no request waiting past its configured
// timeout, the gateway still running with no descriptor left behind, and limits exact again once
// the fault is gone.
#include "admin_probes.hpp"
#include "e2e_config.hpp"
#include "support/fault_proxy.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/redis_server.hpp"
#include "support/test_upstream.hpp"

#include <gtest/gtest.h>

#include <csignal>

#include <chrono>
#include <string>

namespace {

using namespace gw::test;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr auto command_timeout = 200ms;
constexpr auto upstream_timeout = 500ms;
// Room for a busy machine on top of a configured timeout (a sanitizer's build is slower).
#ifdef GATEWAY_SANITIZED
constexpr auto room = 1500ms;
#else
constexpr auto room = 400ms;
#endif

std::string route(const std::string& name, const std::string& failure_mode,
                  std::uint64_t requests) {
  return "  - name: " + name + "\n    match: { path_prefix: /" + name + " }\n" +
         "    upstream: backend\n    failure_mode: " + failure_mode + "\n" +
         "    limits:\n      - name: whole_route\n        key: [route]\n" +
         "        algorithm: fixed_window\n        requests: " + std::to_string(requests) +
         "\n        window: 1h\n";
}

// Redis and the upstream, each behind a fault proxy, and one gateway of one worker.
class faults_test : public ::testing::Test {
 protected:
  faults_test()
      : to_redis_{redis_.port()},
        to_upstream_{upstream_.port()},
        gateway_{gateway_binary(), config()} {
    gateway_.wait_ready(ports_.admin);
    EXPECT_TRUE(eventually([&] { return readyz(ports_.admin) == 200; }, 5s));
    // Warm: the connections to Redis and the upstream exist before anything is counted.
    EXPECT_EQ(get("/open").status, 200);
    fds_ = gateway_.open_fds();
    rss_kib_ = gateway_.rss_kib();
  }

  std::string config() const {
    std::string yaml = "server:\n  listen: 127.0.0.1:" + std::to_string(ports_.listen) + "\n";
    yaml += "  workers: 1\n  access_log: false\n";
    yaml += "admin:\n  listen: 127.0.0.1:" + std::to_string(ports_.admin) + "\n";
    yaml += "storage:\n  backend: redis\n  local_cache: false\n  redis:\n";
    yaml += "    address: 127.0.0.1:" + std::to_string(to_redis_.port()) + "\n";
    yaml += "    command_timeout: " + std::to_string(command_timeout.count()) + "ms\n";
    yaml += "upstreams:\n  backend:\n    servers: [127.0.0.1:" +
            std::to_string(to_upstream_.port()) + "]\n";
    yaml += "    timeout: " + std::to_string(upstream_timeout.count()) + "ms\n";
    yaml += "routes:\n" + route("open", "open", 1'000'000) + route("closed", "closed", 1'000'000) +
            route("exact", "closed", 5) + route("download", "open", 1'000'000) +
            route("truncated", "open", 1'000'000) + route("garbage", "open", 1'000'000) + route("endless-header", "open", 1'000'000);
    return yaml;
  }

  // One request on a fresh connection; fails the test if it took longer than `most`.
  http_reply get(const std::string& target,
                 std::chrono::milliseconds most = upstream_timeout + command_timeout + room) {
    const auto start = steady::now();
    auto reply = request(ports_.listen, "GET", target, {}, {}, 10s);
    EXPECT_LT(steady::now() - start, most) << target << " answered " << reply.status;
    return reply;
  }

  // After the fault: the store is used again, and /exact admits exactly its 5.
  void expect_recovered() {
    to_redis_.set(fault::none);
    to_upstream_.set(fault::none);
    EXPECT_TRUE(eventually([&] { return get("/closed").status == 200; }, 5s));
    int ok = 0, limited = 0, other = 0;
    for (int i = 0; i < 8; ++i) {
      const auto status = get("/exact").status;
      (status == 200 ? ok : status == 429 ? limited : other)++;
    }
    EXPECT_EQ(ok, 5);
    EXPECT_EQ(limited, 3);
    EXPECT_EQ(other, 0);
    EXPECT_TRUE(gateway_.running()) << gateway_.stderr_text();
    // The fault's connections are gone; at most a pooled one more than before.
    EXPECT_TRUE(eventually([&] { return gateway_.open_fds() <= fds_ + 1; }, 5s))
        << gateway_.open_fds() << " descriptors open, " << fds_ << " before";
#ifdef GATEWAY_SANITIZED
    constexpr long most_growth_kib = 64 * 1024;  // a sanitizer's quarantine is its own
#else
    constexpr long most_growth_kib = 8 * 1024;
#endif
    EXPECT_LT(gateway_.rss_kib(), rss_kib_ + most_growth_kib)
        << "RSS in KiB, " << rss_kib_ << " before the fault";
  }

  redis_server redis_;
  test_upstream upstream_;
  fault_proxy to_redis_, to_upstream_;
  e2e_ports ports_;
  gateway_process gateway_;
  std::size_t fds_ = 0;
  long rss_kib_ = 0;
};

TEST_F(faults_test, redis_black_hole_fails_by_mode_within_command_timeout) {
  to_redis_.set(fault::black_hole);
  for (int i = 0; i < 3; ++i) {
    const auto closed = get("/closed", std::chrono::duration_cast<std::chrono::milliseconds>(
                                           command_timeout + room));
    EXPECT_EQ(closed.status, 503);
    EXPECT_NE(closed.body.find("\"error\":\"unavailable\""), std::string::npos) << closed.body;
    EXPECT_EQ(get("/open").status, 200);
  }
  EXPECT_GT(metric(ports_.admin, "gateway_store_errors_total",
                   {R"(backend="redis")", R"(kind="timeout")"}),
            0);
  expect_recovered();
}

TEST_F(faults_test, redis_reply_reset_half_way_fails_by_mode) {
  to_redis_.set(fault::reset_reply, 0ms, 3);  // 3 bytes of the next reply, then a reset
  EXPECT_EQ(get("/closed").status, 503);
  EXPECT_EQ(get("/open").status, 200);
  expect_recovered();
}

TEST_F(faults_test, redis_replies_dripped_or_delayed_still_count_exactly) {
  to_redis_.set(fault::drip, 1ms);  // a check's reply is about 40 bytes: well within the timeout
  EXPECT_EQ(get("/closed").status, 200);
  to_redis_.set(fault::delay, 50ms);
  EXPECT_EQ(get("/closed").status, 200);
  expect_recovered();  // under no fault: counted from here
  to_redis_.set(fault::drip, 1ms);
  EXPECT_EQ(get("/exact").status, 429);  // the 5 were spent: still refused, through the drip
}

TEST_F(faults_test, upstream_black_hole_is_504_within_the_upstream_timeout) {
  to_upstream_.set(fault::black_hole);
  const auto reply = get("/open");
  EXPECT_EQ(reply.status, 504);
  EXPECT_GT(metric(ports_.admin, "gateway_upstream_errors_total",
                   {R"(upstream="backend")", R"(kind="timeout")"}),
            0);
  expect_recovered();
}

TEST_F(faults_test, upstream_reply_reset_half_way_is_502) {
  to_upstream_.set(fault::reset_reply, 0ms, 10);  // "HTTP/1.1 2", then a reset
  EXPECT_EQ(get("/open").status, 502);
  expect_recovered();
}

TEST_F(faults_test, upstream_reply_dripped_arrives_whole) {
  to_upstream_.set(fault::drip, 1ms);
  const auto reply = get("/download?bytes=64", 5s);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body.size(), 64u);
  expect_recovered();
}

TEST_F(faults_test, redis_frozen_by_sigstop_fails_by_mode_then_counts_exactly_when_resumed) {
  const auto connects_before = to_redis_.accepted();
  ASSERT_EQ(kill(redis_.pid(), SIGSTOP), 0);
  struct resume {
    pid_t pid;
    ~resume() { kill(pid, SIGCONT); }
  } guard{redis_.pid()};
  // Each check waits out command_timeout; once replies have stalled long enough the connection
  // is dropped and made anew, and the kernel accepts that connect for the stopped process: only
  // its handshake's timeout tells. Meanwhile every check fails by mode.
  const auto connection_errors = [&] {
    return metric(ports_.admin, "gateway_store_errors_total",
                  {R"(backend="redis")", R"(kind="connection")"});
  };
  EXPECT_TRUE(eventually(
      [&] {
        EXPECT_EQ(get("/closed", command_timeout + room).status, 503);
        EXPECT_EQ(get("/open").status, 200);
        return to_redis_.accepted() > connects_before && connection_errors() > 0;
      },
      20s));
  // Known down now: a check fails at once, without waiting for Redis.
  EXPECT_EQ(get("/closed", room).status, 503);
  ASSERT_EQ(kill(redis_.pid(), SIGCONT), 0);
  expect_recovered();
}

TEST_F(faults_test, redis_at_maxmemory_with_noeviction_fails_by_mode) {
  const auto connects_before = to_redis_.accepted();
  redis_.command({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
  redis_.command({"CONFIG", "SET", "maxmemory", "1"});
  const auto closed = get("/closed");
  EXPECT_EQ(closed.status, 503);
  EXPECT_NE(closed.body.find("\"error\":\"unavailable\""), std::string::npos) << closed.body;
  EXPECT_EQ(get("/open").status, 200);
  // An OOM is Redis answering: the connection stays, the error is the reply's.
  EXPECT_GT(metric(ports_.admin, "gateway_store_errors_total",
                   {R"(backend="redis")", R"(kind="reply")"}),
            0);
  EXPECT_EQ(to_redis_.accepted(), connects_before);
  redis_.command({"CONFIG", "SET", "maxmemory", "0"});
  expect_recovered();
}

TEST_F(faults_test, redis_at_maxclients_refuses_the_reconnect_and_the_gateway_retries) {
  // Room for the harness' own connection only, then the gateway's killed: each reconnect is
  // answered "max number of clients reached" and closed.
  const auto rejected_before = redis_.info_stat("rejected_connections");
  redis_.command({"CONFIG", "SET", "maxclients", "1"});
  redis_.command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
  ASSERT_TRUE(eventually(
      [&] { return redis_.info_stat("rejected_connections") > rejected_before; }, 10s));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(get("/closed").status, 503);
    EXPECT_EQ(get("/open").status, 200);
  }
  redis_.command({"CONFIG", "SET", "maxclients", "10000"});
  expect_recovered();
}

TEST_F(faults_test, upstream_garbage_is_502) {
  EXPECT_EQ(get("/garbage").status, 502);
  EXPECT_GT(metric(ports_.admin, "gateway_upstream_errors_total",
                   {R"(upstream="backend")", R"(kind="protocol")"}),
            0);
  expect_recovered();
}

TEST_F(faults_test, upstream_closing_mid_body_ends_the_client_connection_early) {
  client_connection client{ports_.listen};
  client.send("GET /truncated?bytes=4096 HTTP/1.1\r\nHost: localhost\r\n\r\n");
  // The head went out before the upstream stopped: too late for a 502, so the client sees the
  // connection end short of the Content-Length, not a complete-looking response.
  const auto raw = client.read_until_close();
  EXPECT_EQ(raw.rfind("HTTP/1.1 200", 0), 0u) << raw.substr(0, 200);
  EXPECT_NE(raw.find("Content-Length: 4096"), std::string::npos);
  const auto body = raw.size() - raw.find("\r\n\r\n") - 4;
  EXPECT_EQ(body, 2048u);
  expect_recovered();
}

TEST_F(faults_test, upstream_header_without_end_is_502_within_the_timeout) {
  const auto reply = get("/endless-header");
  EXPECT_EQ(reply.status, 502);
  EXPECT_GT(metric(ports_.admin, "gateway_upstream_errors_total",
                   {R"(upstream="backend")", R"(kind="protocol")"}),
            0);
  expect_recovered();
}

}  // namespace
