// The gateway on a Redis Cluster end to end (backend: redis_cluster): two gateways, each knowing
// a different seed, share exact limits whose keys spread over all three masters; /readyz and the
// store metrics say redis_cluster; a master that stops fails only the checks of its slots, each
// within command_timeout and as its route's failure mode says, and once it is back the limits are
// enforced again without a restart.
#include "admin_probes.hpp"
#include "e2e_config.hpp"
#include "support/http_client.hpp"
#include "support/redis_cluster.hpp"
#include "support/test_upstream.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace gw::test;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// Generous where counts must be exact: a check that times out under load is a 503 even though
// Redis may have counted it. Short where failing fast is the point.
constexpr auto exact_timeout = 1000ms;
constexpr auto command_timeout = 100ms;

// A gateway on the cluster through `seed`, with a per-path limit of `requests` per hour (a path
// per user here: the key stays readable, where a header's value would be hashed), failing as
// `failure_mode` says.
std::string cluster_config(const e2e_ports& ports, std::uint16_t upstream, std::uint16_t seed,
                           int requests, const std::string& failure_mode,
                           std::chrono::milliseconds timeout) {
  std::string yaml;
  yaml += "server:\n  listen: 127.0.0.1:" + std::to_string(ports.listen) + "\n";
  yaml += "  workers: 2\n  access_log: false\n  log_level: info\n";
  yaml += "admin:\n  listen: 127.0.0.1:" + std::to_string(ports.admin) + "\n";
  yaml += "storage:\n  backend: redis_cluster\n  local_cache: false\n";
  yaml += "  failure_mode: " + failure_mode + "\n";
  yaml += "  redis:\n    nodes: [127.0.0.1:" + std::to_string(seed) + "]\n";
  yaml += "    command_timeout: " + std::to_string(timeout.count()) + "ms\n";
  yaml += "upstreams:\n  backend:\n    servers: " + server_list({upstream}) + "\n";
  yaml += "routes:\n  - name: api\n    match: { path_prefix: / }\n    upstream: backend\n";
  yaml += "    limits:\n      - name: per_user\n        key: [path]\n";
  yaml += "        requests: " + std::to_string(requests) + "\n        window: 1h\n";
  return yaml;
}

int status_for(std::uint16_t port, const std::string& user) {
  try {
    return request(port, "GET", "/" + user, {}, {}, 3s).status;
  } catch (const std::exception&) {
    return -1;
  }
}

TEST(redis_cluster, two_gateways_share_exact_limits_spread_over_every_master) {
  redis_cluster cluster;
  test_upstream upstream;
  e2e_ports ports_a, ports_b;
  gateway_process a{gateway_binary(),
                    cluster_config(ports_a, upstream.port(), cluster.node(0).port(), 10, "closed",
                                   exact_timeout)};
  gateway_process b{gateway_binary(),
                    cluster_config(ports_b, upstream.port(), cluster.node(2).port(), 10, "closed",
                                   exact_timeout)};
  a.wait_ready(ports_a.admin);
  b.wait_ready(ports_b.admin);
  EXPECT_TRUE(eventually([&] { return readyz(ports_a.admin) == 200; }, 5s));

  // 24 users, 25 requests each from 8 threads over both gateways: 10 per user get through.
  constexpr int users = 24, per_user = 25;
  std::mutex mutex;
  std::map<std::string, std::map<int, int>> statuses;  // user -> status -> count
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = t; i < users * per_user; i += 8) {
        const auto user = "user-" + std::to_string(i % users);
        const auto status = status_for(i % 2 ? ports_b.listen : ports_a.listen, user);
        std::lock_guard lock{mutex};
        ++statuses[user][status];
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& [user, by_status] : statuses) {
    EXPECT_EQ(by_status.count(200) ? by_status.at(200) : 0, 10) << user;
    EXPECT_EQ(by_status.count(429) ? by_status.at(429) : 0, per_user - 10) << user;
  }
  EXPECT_EQ(upstream.request_count(), static_cast<std::size_t>(users * 10));

  // The users' state is on all three masters.
  for (std::size_t i = 0; i < cluster.size(); ++i)
    EXPECT_NE(cluster.node(i).command({"DBSIZE"}), "0") << "node " << i;
  EXPECT_GT(metric(ports_a.admin, "gateway_store_duration_seconds_count",
                   {"backend=\"redis_cluster\""}),
            0);
}

TEST(redis_cluster, a_stopped_master_fails_its_slots_fast_and_counts_again_once_back) {
  // The other masters go on serving while one is gone, however long the test takes to look.
  cluster_options options;
  options.require_full_coverage = false;
  redis_cluster cluster{options};
  test_upstream upstream;
  e2e_ports ports;
  gateway_process gateway{gateway_binary(),
                          cluster_config(ports, upstream.port(), cluster.node(1).port(), 1000,
                                         "closed", command_timeout)};
  gateway.wait_ready(ports.admin);

  // One user whose key lives on node 0 and one whose key lives elsewhere.
  auto user_on = [&](bool on_zero) {
    for (int i = 0;; ++i) {
      const auto user = "u" + std::to_string(i);
      const auto slot = cluster.slot_of("rl:{api:per_user:/" + user + "}:gcra");
      if ((cluster.owner(slot) == 0) == on_zero) return user;
    }
  };
  const auto lost = user_on(true), kept = user_on(false);
  ASSERT_TRUE(eventually([&] { return status_for(ports.listen, lost) == 200; }, 5s));
  ASSERT_EQ(status_for(ports.listen, kept), 200);

  cluster.node(0).stop();
  // Closed: the lost slots' checks fail, answered 503 within command_timeout plus room for a
  // busy machine; the others go on.
  const auto start = steady::now();
  EXPECT_EQ(status_for(ports.listen, lost), 503);
  EXPECT_LT(steady::now() - start, command_timeout + 400ms);
  EXPECT_EQ(status_for(ports.listen, kept), 200);
  EXPECT_TRUE(eventually([&] { return readyz(ports.admin) == 503; }, 3s));

  cluster.node(0).start();  // rejoins with its slots (its nodes.conf), data gone
  EXPECT_TRUE(eventually([&] { return status_for(ports.listen, lost) == 200; }, 10s));
  EXPECT_TRUE(eventually([&] { return readyz(ports.admin) == 200; }, 5s));
  EXPECT_EQ(status_for(ports.listen, kept), 200);
  EXPECT_TRUE(gateway.running());
}

}  // namespace
