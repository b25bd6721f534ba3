// The gateway on the Redis store end to end: limits exact across two gateways sharing one Redis,
// for every algorithm; a Redis that stops, restarts or stalls costs at most command_timeout per
// request and the route's failure mode decides; a password from the environment; the checks of
// concurrent requests pipelined; and the local over-limit cache sparing Redis.
#include "admin_probes.hpp"
#include "e2e_config.hpp"
#include "support/http_client.hpp"
#include "support/redis_info.hpp"
#include "support/redis_server.hpp"
#include "support/test_upstream.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace gw::test;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto command_timeout = 100ms;
// What a request may take at most while Redis fails: the timeout plus room for a busy machine.
constexpr auto slowest_allowed = command_timeout + 300ms;

double ms_of(steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct redis_gateway {
  unsigned workers = 2;
  bool local_cache = false;
  std::string redis_extra;  // more lines under storage.redis, indented by four spaces
  std::string redis_host = "127.0.0.1";  // an IPv6 literal in brackets, or a name
};

// A gateway on the Redis store at `redis_port`, command_timeout 100 ms, one upstream "backend".
std::string redis_config(const e2e_ports& ports, std::uint16_t upstream, std::uint16_t redis_port,
                         const std::string& routes, const redis_gateway& options = {}) {
  std::string yaml;
  yaml += "server:\n  listen: 127.0.0.1:" + std::to_string(ports.listen) + "\n";
  yaml += "  workers: " + std::to_string(options.workers) + "\n";
  yaml += "  access_log: false\n  log_level: info\n";
  yaml += "admin:\n  listen: 127.0.0.1:" + std::to_string(ports.admin) + "\n";
  yaml += "storage:\n  backend: redis\n";
  yaml += std::string{"  local_cache: "} + (options.local_cache ? "true" : "false") + "\n";
  yaml += "  redis:\n    address: \"" + options.redis_host + ":" + std::to_string(redis_port) + "\"\n";
  yaml += "    command_timeout: " + std::to_string(command_timeout.count()) + "ms\n";
  yaml += options.redis_extra;
  yaml += "upstreams:\n  backend:\n    servers: " + server_list({upstream}) + "\n";
  return yaml + routes;
}

// One route on `prefix` with a per-IP limit.
std::string route(const std::string& name, const std::string& prefix, const std::string& limit,
                  const std::string& failure_mode = "") {
  std::string yaml = "  - name: " + name + "\n    match: { path_prefix: " + prefix + " }\n";
  yaml += "    upstream: backend\n";
  if (!failure_mode.empty()) yaml += "    failure_mode: " + failure_mode + "\n";
  yaml += "    limits:\n      - name: per_ip\n        key: [client_ip]\n" + limit;
  return yaml;
}

std::string limit_of(std::uint64_t requests, const std::string& window,
                     const std::string& algorithm = "gcra") {
  return "        algorithm: " + algorithm + "\n        requests: " + std::to_string(requests) +
         "\n        window: " + window + "\n";
}

int count_of(const std::vector<int>& statuses, int status) {
  return static_cast<int>(std::count(statuses.begin(), statuses.end(), status));
}

// ---- limits shared by two gateways ----

class two_gateways : public ::testing::TestWithParam<std::string> {};

TEST_P(two_gateways, four_hundred_concurrent_requests_against_a_hundred_admit_a_hundred) {
  redis_server redis;
  test_upstream upstream;
  // Fail closed: a store failure would show as a 503, never as one request too many admitted.
  const std::string routes =
      "routes:\n" + route("api", "/", limit_of(100, "1h", GetParam()), "closed");
  e2e_ports ports_a, ports_b;
  gateway_process a{gateway_binary(), redis_config(ports_a, upstream.port(), redis.port(), routes)};
  gateway_process b{gateway_binary(), redis_config(ports_b, upstream.port(), redis.port(), routes)};
  a.wait_ready(ports_a.admin);
  b.wait_ready(ports_b.admin);

  // Every request on its own connection, half to each gateway, all sent at once.
  constexpr int count = 400;
  std::vector<int> statuses(count, 0);
  std::barrier start{count};
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i)
    threads.emplace_back([&, i] {
      bool started = false;
      try {
        client_connection c{i % 2 ? ports_b.listen : ports_a.listen};
        start.arrive_and_wait();
        started = true;
        c.send("GET /burst HTTP/1.1\r\nHost: x\r\n\r\n");
        statuses[i] = c.read_reply().status;
      } catch (const std::exception&) {
        if (!started) start.arrive_and_drop();  // the others must not wait for this one
        statuses[i] = -1;
      }
    });
  for (auto& t : threads) t.join();

  EXPECT_EQ(count_of(statuses, 200), 100);
  EXPECT_EQ(count_of(statuses, 429), 300);
  EXPECT_EQ(count_of(statuses, 503), 0);
  EXPECT_EQ(upstream.request_count(), 100u);
  EXPECT_TRUE(a.running());
  EXPECT_TRUE(b.running());
}

INSTANTIATE_TEST_SUITE_P(every_algorithm, two_gateways,
                         ::testing::Values("gcra", "token_bucket", "sliding_window",
                                           "sliding_log", "fixed_window"),
                         [](const auto& info) { return info.param; });

// ---- Redis failures ----

// Requests in a loop on fresh connections, one thread per target, each one timed.
class traffic {
 public:
  struct sample {
    std::string target;
    steady::time_point start, end;
    int status = 0;  // -1: no reply (refused, reset, timed out)
    std::string body;
  };

  traffic(std::uint16_t port, const std::vector<std::string>& targets) {
    for (const auto& target : targets)
      threads_.emplace_back([this, port, target] {
        while (!stop_) {
          sample s{target, steady::now(), {}, 0, {}};
          try {
            auto reply = request(port, "GET", target, {}, {}, 3s);
            s.status = reply.status;
            s.body = std::move(reply.body);
          } catch (const std::exception&) {
            s.status = -1;
          }
          s.end = steady::now();
          {
            std::lock_guard lock{mutex_};
            samples_.push_back(std::move(s));
          }
          std::this_thread::sleep_for(5ms);
        }
      });
  }
  ~traffic() { stop(); }

  std::vector<sample> stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    std::lock_guard lock{mutex_};
    return samples_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<sample> samples_;
  std::vector<std::thread> threads_;
};

const std::string failure_routes =
    "routes:\n" + route("open", "/open", limit_of(1'000'000, "1h"), "open") +
    route("closed", "/closed", limit_of(1'000'000, "1h"), "closed") +
    route("tight", "/tight", limit_of(3, "1h"), "open");

TEST(redis_failures, redis_stopped_mid_traffic_fails_open_or_closed_fast_and_comes_back) {
  redis_server redis;
  test_upstream upstream;
  e2e_ports ports;
  gateway_process gateway{gateway_binary(),
                          redis_config(ports, upstream.port(), redis.port(), failure_routes)};
  gateway.wait_ready(ports.admin);
  // Ready once every worker's connection has finished its handshake (AUTH, SCRIPT LOAD).
  EXPECT_TRUE(eventually([&] { return readyz(ports.admin) == 200; }, 5s));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(request(ports.listen, "GET", "/tight").status, 200);
  EXPECT_EQ(request(ports.listen, "GET", "/tight").status, 429);

  traffic load{ports.listen, {"/open", "/closed"}};
  std::this_thread::sleep_for(300ms);
  redis.stop();
  const auto stopped = steady::now();
  // No ready connection in any worker: a fail-closed route cannot be served.
  EXPECT_TRUE(eventually([&] { return readyz(ports.admin) == 503; }, 1s));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(readyz(ports.admin), 503);

  const auto restarting = steady::now();
  redis.start();  // a fresh process: no state, no scripts
  const auto restarted = steady::now();
  // /tight fails open while the gateway reconnects; once it is back, three pass and a 429 shows.
  std::vector<int> tight;
  const bool enforced = eventually(
      [&] {
        tight.push_back(request(ports.listen, "GET", "/tight", {}, {}, 2s).status);
        return tight.back() == 429;
      },
      3s);
  const auto enforced_after = steady::now() - restarted;
  // How soon is a figure (printed below), not an assertion: that it happens, in order, is.
  EXPECT_TRUE(enforced) << "no 429 within 3 s of the restart";
  EXPECT_EQ(count_of(tight, 429), 1);
  EXPECT_EQ(count_of(tight, 200), static_cast<int>(tight.size()) - 1);
  EXPECT_TRUE(eventually([&] { return readyz(ports.admin) == 200; }, 2s));
  const auto recovered = steady::now();
  std::this_thread::sleep_for(300ms);
  const auto samples = load.stop();

  steady::duration slowest{};
  int open_down = 0, closed_down = 0, closed_after = 0;
  for (const auto& s : samples) {
    SCOPED_TRACE(s.target + " at " + std::to_string(ms_of(s.start - stopped)) +
                 " ms after the stop");
    slowest = std::max(slowest, s.end - s.start);
    EXPECT_LT(s.end - s.start, slowest_allowed);
    const bool while_down = s.start > stopped && s.end < restarting;
    if (s.target == "/open") {
      EXPECT_EQ(s.status, 200);
      if (while_down) ++open_down;
    } else if (while_down) {
      ++closed_down;
      EXPECT_EQ(s.status, 503);
      EXPECT_TRUE(s.body.starts_with(R"({"error":"unavailable",)")) << s.body;
    } else if (s.start > recovered) {
      ++closed_after;
      EXPECT_EQ(s.status, 200);
    } else {
      EXPECT_TRUE(s.status == 200 || s.status == 503) << s.status;
    }
  }
  std::cout << "[ measured ] " << samples.size() << " requests, slowest " << ms_of(slowest)
            << " ms; 429 enforced again " << ms_of(enforced_after)
            << " ms after the restart (request " << tight.size() << ")\n";
  EXPECT_GT(open_down, 10);
  EXPECT_GT(closed_down, 10);
  EXPECT_GT(closed_after, 5);
  EXPECT_TRUE(gateway.running()) << gateway.stderr_text();
  // What an operator sees: the failures, by kind and by the mode that handled them.
  EXPECT_GT(metric(ports.admin, "gateway_store_errors_total",
                   {R"(backend="redis")", R"(kind="connection")"}),
            0);
  EXPECT_GE(metric(ports.admin, "gateway_ratelimit_failures_total",
                   {R"(route="closed")", R"(mode="closed")"}),
            closed_down);
  EXPECT_GE(metric(ports.admin, "gateway_ratelimit_failures_total",
                   {R"(route="open")", R"(mode="open")"}),
            open_down);
}

TEST(redis_failures, a_paused_redis_costs_at_most_command_timeout_per_request) {
  redis_server redis;
  test_upstream upstream;
  e2e_ports ports;
  gateway_process gateway{gateway_binary(),
                          redis_config(ports, upstream.port(), redis.port(), failure_routes)};
  gateway.wait_ready(ports.admin);
  EXPECT_TRUE(eventually([&] { return readyz(ports.admin) == 200; }, 5s));
  EXPECT_EQ(request(ports.listen, "GET", "/closed").status, 200);

  // Shorter than the 2 s after which missing replies drop the connection: every request waits
  // out its own command_timeout, on a connection that stays up.
  constexpr auto pause = 1200ms;
  traffic load{ports.listen, {"/open", "/open", "/closed"}};
  std::this_thread::sleep_for(100ms);
  redis.pause(pause);
  const auto paused = steady::now();
  std::this_thread::sleep_for(pause + 300ms);
  const auto samples = load.stop();

  steady::duration slowest{};
  int open_paused = 0, closed_paused = 0;
  for (const auto& s : samples) {
    SCOPED_TRACE(s.target + " at " + std::to_string(ms_of(s.start - paused)) +
                 " ms after the pause began");
    slowest = std::max(slowest, s.end - s.start);
    EXPECT_LT(s.end - s.start, slowest_allowed);
    const bool during = s.start > paused && s.end < paused + pause;
    if (s.target == "/open") {
      EXPECT_EQ(s.status, 200);
      if (during) ++open_paused;
    } else if (during) {
      ++closed_paused;
      EXPECT_EQ(s.status, 503);
    }
  }
  std::cout << "[ measured ] " << samples.size() << " requests around a " << pause.count()
            << " ms pause, slowest " << ms_of(slowest) << " ms\n";
  EXPECT_GT(open_paused, 5);
  EXPECT_GT(closed_paused, 2);
  EXPECT_GE(metric(ports.admin, "gateway_store_errors_total",
                   {R"(backend="redis")", R"(kind="timeout")"}),
            open_paused + closed_paused);
  // After the pause the store answers again.
  EXPECT_TRUE(eventually(
      [&] { return request(ports.listen, "GET", "/closed", {}, {}, 2s).status == 200; }, 1s));
  EXPECT_TRUE(gateway.running());
}

// ---- password from the environment ----

class scoped_env {
 public:
  scoped_env(std::string name, const std::string& value) : name_(std::move(name)) {
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~scoped_env() { ::unsetenv(name_.c_str()); }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  std::string name_;
};

TEST(redis_password, read_from_password_env_and_required_to_start) {
  redis_options options;
  options.password = "e2e-s3cret";
  redis_server redis{options};
  test_upstream upstream;
  const std::string routes = "routes:\n" + route("api", "/", limit_of(3, "1h"), "closed");
  redis_gateway with_password;
  with_password.redis_extra = "    password_env: TEST_REDIS_PASSWORD\n";
  {
    // The gateway takes its environment from the test process.
    scoped_env env{"TEST_REDIS_PASSWORD", "e2e-s3cret"};
    e2e_ports ports;
    gateway_process gateway{gateway_binary(), redis_config(ports, upstream.port(), redis.port(),
                                                           routes, with_password)};
    gateway.wait_ready(ports.admin);
    EXPECT_TRUE(eventually([&] { return readyz(ports.admin) == 200; }, 5s));
    // Fail closed: a 200 means Redis answered, so the password was accepted.
    for (int i = 0; i < 3; ++i) EXPECT_EQ(request(ports.listen, "GET", "/x").status, 200) << i;
    EXPECT_EQ(request(ports.listen, "GET", "/x").status, 429);
    EXPECT_EQ(upstream.request_count(), 3u);
    EXPECT_EQ(readyz(ports.admin), 200);
  }
  ::unsetenv("TEST_REDIS_PASSWORD");
  e2e_ports ports;
  const auto path = write_temp_file(
      redis_config(ports, upstream.port(), redis.port(), routes, with_password), "gateway.yaml");
  const auto result = run_gateway(gateway_binary(), {"--config", path});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE((result.out + result.err).find("TEST_REDIS_PASSWORD"), std::string::npos)
      << result.err;
}

// ---- Redis over IPv6 ----

// A Redis on ::1, reached by the literal and by a name that has only an IPv6 address (it used to
// crash the gateway at start: the address chooser looked for IPv4 forever). The name comes from a
// hosts file of the gateway's own, bound over /etc/hosts in a mount namespace (root only).
TEST(redis_ipv6, by_an_ipv6_literal_and_by_a_name_with_only_ipv6_addresses) {
  redis_options options;
  options.extra_args = {"--bind", "127.0.0.1 ::1"};
  redis_server redis{options};
  test_upstream upstream;
  const std::string routes = "routes:\n" + route("api", "/", limit_of(3, "1h"), "closed");
  auto admits_three = [&](const std::string& binary, const std::string& host) {
    redis_gateway v6;
    v6.redis_host = host;
    e2e_ports ports;
    gateway_process gateway{binary, redis_config(ports, upstream.port(), redis.port(), routes, v6)};
    gateway.wait_ready(ports.admin);
    EXPECT_TRUE(eventually([&] { return readyz(ports.admin) == 200; }, 5s)) << host;
    // Fail closed: a 200 means Redis answered over IPv6.
    for (int i = 0; i < 3; ++i) EXPECT_EQ(request(ports.listen, "GET", "/x").status, 200) << host;
    EXPECT_EQ(request(ports.listen, "GET", "/x").status, 429) << host;
    EXPECT_TRUE(gateway.running());
    redis.command({"FLUSHALL"});
  };
  admits_three(gateway_binary(), "[::1]");
  EXPECT_EQ(upstream.request_count(), 3u);

  const auto hosts = write_temp_file("::1 redis-v6-only.test\n", "hosts");
  const std::string in_namespace =
      "unshare --mount sh -c 'mount --bind " + hosts + " /etc/hosts && exec \"$0\" \"$@\"'";
  if (std::system((in_namespace + " getent ahosts redis-v6-only.test >/dev/null 2>&1").c_str()) != 0) {
    std::printf("no mount namespace here (not root, or no unshare): the IPv6-only name is not "
                "tried\n");
    return;
  }
  const auto wrapper = write_temp_file("#!/bin/sh\nexec " + in_namespace + " " +
                                           gateway_binary() + " \"$@\"\n",
                                       "gateway-v6");
  ASSERT_EQ(::chmod(wrapper.c_str(), 0755), 0);
  admits_three(wrapper, "redis-v6-only.test");
  EXPECT_EQ(upstream.request_count(), 6u);
}

// ---- what reaches Redis ----

TEST(redis_commands, concurrent_requests_share_script_calls_and_writes_to_redis) {
  redis_server redis;
  test_upstream upstream;
  e2e_ports ports;
  // All but the first request are answered 429, so the gateway and Redis are what is measured.
  const std::string routes = "routes:\n" + route("api", "/", limit_of(1, "1h"), "closed");
  redis_gateway one_worker;
  one_worker.workers = 1;
  gateway_process gateway{gateway_binary(), redis_config(ports, upstream.port(), redis.port(),
                                                         routes, one_worker)};
  gateway.wait_ready(ports.admin);
  EXPECT_EQ(request(ports.listen, "GET", "/").status, 200);

  const auto commands_before = redis.info_stat("total_commands_processed");
  const auto reads_before = redis.info_stat("total_reads_processed");
  const auto evalsha_before = command_calls(redis, "evalsha");
  constexpr int connections = 64;
  std::atomic<int> replies{0}, limited{0}, unavailable{0}, failed_connections{0};
  std::mutex error_mutex;
  std::string first_error;
  std::barrier start{connections};
  const auto deadline = steady::now() + 1s + 100ms;  // connecting takes the first moments
  std::vector<std::thread> threads;
  for (int i = 0; i < connections; ++i)
    threads.emplace_back([&] {
      bool started = false;
      try {
        client_connection c{ports.listen, "127.0.0.1", 5s};
        start.arrive_and_wait();
        started = true;
        while (steady::now() < deadline) {
          c.send("GET /loop HTTP/1.1\r\nHost: x\r\n\r\n");
          const auto reply = c.read_reply();
          ++replies;
          if (reply.status == 429) ++limited;
          if (reply.status == 503) ++unavailable;
        }
      } catch (const std::exception& e) {
        if (!started) start.arrive_and_drop();  // the others must not wait for this one
        ++failed_connections;
        std::lock_guard lock{error_mutex};
        if (first_error.empty()) first_error = e.what();
      }
    });
  for (auto& t : threads) t.join();
  const auto evalsha = command_calls(redis, "evalsha") - evalsha_before;
  // Less the harness' own INFOs counted in between: four commands, four reads.
  const auto commands = redis.info_stat("total_commands_processed") - commands_before - 4;
  const auto reads = redis.info_stat("total_reads_processed") - reads_before - 4;

  EXPECT_EQ(failed_connections.load(), 0) << first_error;
  // 503: a reply later than command_timeout, which only a starved machine produces.
  EXPECT_EQ(limited.load() + unavailable.load(), replies.load());
  EXPECT_LT(unavailable.load(), replies.load() / 10);
  EXPECT_GT(replies.load(), 500);
  // No local cache: every request, 429 or not, is checked in Redis; the checks of one event-loop
  // turn share one EVALSHA, so there are far fewer script calls than requests.
  ASSERT_GT(evalsha, 0);
  ASSERT_GT(reads, 0);
  const double requests_per_evalsha = static_cast<double>(replies) / static_cast<double>(evalsha);
  const double requests_per_read = static_cast<double>(replies) / static_cast<double>(reads);
  std::cout << "[ measured ] " << replies.load() << " requests on " << connections
            << " connections in ~1 s: " << evalsha << " EVALSHA (" << commands
            << " commands with those the scripts ran) in " << reads << " Redis reads: "
            << requests_per_evalsha << " requests per EVALSHA, " << requests_per_read
            << " per read; " << unavailable.load() << " store timeouts\n";
  EXPECT_GE(requests_per_evalsha, 4.0);
  EXPECT_GE(requests_per_read, 4.0);
  // The gateway's own view of the same batching: every request's check left in some write.
  const auto writes = metric(ports.admin, "gateway_redis_batch_checks_count");
  ASSERT_GT(writes, 0);
  const auto checks = metric(ports.admin, "gateway_redis_batch_checks_sum");
  EXPECT_LE(checks, replies.load() + 1);  // and the first request's
  EXPECT_GE(checks, replies.load() + 1 - unavailable.load());
  EXPECT_EQ(metric(ports.admin, "gateway_redis_batch_commands_count"), writes);
  const auto commands_per_write = metric(ports.admin, "gateway_redis_batch_commands_sum") / writes;
  std::cout << "[ measured ] gateway_redis_batch_checks: " << checks / writes
            << " checks per write on average, in " << commands_per_write << " commands\n";
  EXPECT_GE(checks / writes, 4.0);
}

TEST(redis_commands, with_the_local_cache_a_key_over_its_limit_is_answered_without_redis) {
  redis_server redis;
  test_upstream upstream;
  e2e_ports ports;
  const std::string routes = "routes:\n" + route("api", "/", limit_of(5, "1h"), "closed");
  redis_gateway cached;
  cached.workers = 1;
  cached.local_cache = true;
  gateway_process gateway{gateway_binary(),
                          redis_config(ports, upstream.port(), redis.port(), routes, cached)};
  gateway.wait_ready(ports.admin);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(request(ports.listen, "GET", "/x").status, 200) << i;
  EXPECT_EQ(request(ports.listen, "GET", "/x").status, 429);  // from Redis, and remembered

  const auto evalsha_before = command_calls(redis, "evalsha");
  const auto commands_before = redis.info_stat("total_commands_processed");
  for (int i = 0; i < 50; ++i) {
    const auto reply = request(ports.listen, "GET", "/x");
    EXPECT_EQ(reply.status, 429) << i;
    EXPECT_FALSE(reply.header("Retry-After").empty()) << i;
  }
  const auto evalsha = command_calls(redis, "evalsha") - evalsha_before;
  const auto commands = redis.info_stat("total_commands_processed") - commands_before;
  std::cout << "[ measured ] 50 requests over the limit: " << evalsha << " EVALSHA, "
            << commands << " commands in all (2 of them INFO)\n";
  EXPECT_EQ(evalsha, 0);
  EXPECT_LT(commands, 5);
  EXPECT_EQ(upstream.request_count(), 5u);
}

}  // namespace
