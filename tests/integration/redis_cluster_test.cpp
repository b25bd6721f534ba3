// The Redis store on a real three-master Redis Cluster (backend: redis_cluster): it finds the slot
// map from a seed (past a dead one), sends each check to the master of its key's slot - one call
// per master and turn, every node's calls in one write - and stays exact while a slot moves: a
// MOVED reply and an ASK reply are followed within the call, and the state moved along is what
// counts.
#include "store/redis/redis_store.hpp"
#include "store/redis/scripts.hpp"
#include "support/algorithm_cases.hpp"
#include "support/gateway_process.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_info.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace gw::test::algorithm_cases;
using namespace std::chrono_literals;
using gw::store::check_result;
using gw::store::limit_check;
using gw::store::redis::redis_store;
using gw::test::redis_cluster;

struct no_events final : gw::store::store_events {
  void batch_written(std::size_t, std::size_t) override {}
};

// `n` requests of one check each.
std::vector<std::vector<limit_check>> times(std::size_t n, const limit_check& check) {
  return std::vector<std::vector<limit_check>>(n, std::vector<limit_check>{check});
}

asio::awaitable<check_result> cluster_check(redis_store& store, std::vector<limit_check> checks) {
  co_return co_await store.check(checks);
}

// A cluster store on its own io_context, the way a gateway worker holds it.
struct cluster_client {
  explicit cluster_client(std::vector<gw::config::endpoint> seeds,
                          std::chrono::milliseconds command_timeout = 2s)
      : store(io, settings_for(std::move(seeds), command_timeout), {}, &events,
              redis_store::mode::cluster) {}

  static gw::config::redis_settings settings_for(std::vector<gw::config::endpoint> seeds,
                                                 std::chrono::milliseconds command_timeout) {
    gw::config::redis_settings rs;
    rs.nodes = std::move(seeds);
    rs.connect_timeout = 1s;
    rs.command_timeout = command_timeout;
    return rs;
  }

  // One request, whatever its outcome; nullopt if it did not end within `guard`.
  std::optional<check_result> one(const limit_check& check, std::chrono::milliseconds guard) {
    std::optional<check_result> out;
    io.restart();
    asio::co_spawn(io, cluster_check(store, {check}),
                   [&](std::exception_ptr e, check_result r) {
                     if (!e) out = std::move(r);
                     io.stop();
                   });
    io.run_for(guard);
    return out;
  }

  void idle(std::chrono::milliseconds d) {
    io.restart();
    io.run_for(d);
  }

  // Every request's checks issued in one turn; per key, how many were admitted. Any failure or
  // a hang is a test failure.
  std::map<std::string, int> run_turn(const std::vector<std::vector<limit_check>>& requests) {
    std::map<std::string, int> admitted;
    std::size_t done = 0;
    io.restart();
    for (const auto& checks : requests)
      asio::co_spawn(io, cluster_check(store, checks),
                     [&, checks](std::exception_ptr e, check_result r) {
                       if (e || !r.ok() || r.decisions.size() != checks.size()) {
                         ADD_FAILURE() << "a request failed: "
                                       << (e ? "exception" : gw::store::to_string(r.error));
                       } else {
                         for (std::size_t k = 0; k < checks.size(); ++k)
                           admitted[checks[k].key] += r.decisions[k].admitted ? 1 : 0;
                       }
                       if (++done == requests.size()) io.stop();
                     });
    io.run_for(10s);
    EXPECT_EQ(done, requests.size()) << "requests still unanswered after 10 s";
    return admitted;
  }

  asio::io_context io;
  no_events events;
  redis_store store;
};

// Runs the client's loop (releases go out from it) until `condition` holds, at most 5 s.
template <typename F>
bool eventually_in(cluster_client& client, F condition) {
  for (int i = 0; i < 50; ++i) {
    if (condition()) return true;
    client.idle(100ms);
  }
  return condition();
}

// How many error replies of `kind` (MOVED, ASK, TRYAGAIN...) a node has given (INFO errorstats).
int errors_of(gw::test::redis_server& node, const std::string& kind) {
  const auto info = node.command({"INFO", "errorstats"});
  const auto at = info.find("errorstat_" + kind + ":count=");
  if (at == std::string::npos) return 0;
  return std::stoi(info.substr(at + kind.size() + 17));
}

class redis_cluster_test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new redis_cluster(); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    cluster_->settle();  // what an earlier test moved is known to every node
    cluster_->flush_all();
  }

  static gw::config::endpoint endpoint_of(std::size_t i) {
    return {"127.0.0.1", cluster_->node(i).port()};
  }

  // The EVALSHA and EVAL calls each node has run.
  static std::vector<std::int64_t> script_calls() {
    std::vector<std::int64_t> calls;
    for (std::size_t i = 0; i < cluster_->size(); ++i)
      calls.push_back(gw::test::command_calls(cluster_->node(i), "evalsha") +
                      gw::test::command_calls(cluster_->node(i), "eval"));
    return calls;
  }

  static redis_cluster* cluster_;
};

redis_cluster* redis_cluster_test::cluster_ = nullptr;

TEST_F(redis_cluster_test, checks_go_to_the_master_of_their_slot_and_stay_exact) {
  // The first seed is dead: the slot map comes from the second.
  cluster_client client{{{"127.0.0.1", gw::test::free_port()}, endpoint_of(1)}};

  // 60 identities, 8 requests each, all in one turn: 5 admitted per identity, whichever node.
  std::vector<std::vector<limit_check>> requests;
  for (int round = 0; round < 8; ++round)
    for (int id = 0; id < 60; ++id)
      requests.push_back({{"rl:{cluster:per_ip:10.0.0." + std::to_string(id) + "}",
                           make(algorithm::gcra, 5, 3600 * s)}});
  const auto before = script_calls();
  const auto admitted = client.run_turn(requests);
  ASSERT_EQ(admitted.size(), 60u);
  for (const auto& [key, n] : admitted) EXPECT_EQ(n, 5) << key;

  // Each key's state is on the master of its slot, and every master ran scripts.
  std::vector<int> keys_per_node(cluster_->size(), 0);
  for (const auto& [key, n] : admitted) {
    const auto state = gw::store::redis::state_key(key, algorithm::gcra);
    const auto owner = cluster_->owner(cluster_->slot_of(state));
    EXPECT_EQ(cluster_->node(owner).command({"EXISTS", state}), "1") << state;
    ++keys_per_node[owner];
  }
  const auto after = script_calls();
  for (std::size_t i = 0; i < cluster_->size(); ++i) {
    EXPECT_GT(keys_per_node[i], 0) << "node " << i;
    EXPECT_GT(after[i], before[i]) << "node " << i;
  }
  // Ready once the connections to every master are up (looked at every 100 ms).
  client.io.restart();
  client.io.run_for(300ms);
  EXPECT_TRUE(client.store.available());
}

TEST_F(redis_cluster_test, a_moved_slot_is_followed_and_its_count_kept) {
  cluster_client client{{endpoint_of(0)}};
  const limit_check check{"rl:{cluster:moved:1}", make(algorithm::gcra, 10, 3600 * s)};
  const auto state = gw::store::redis::state_key(check.key, algorithm::gcra);
  const auto slot = cluster_->slot_of(state);
  const auto from = cluster_->owner(slot);
  const auto to = (from + 1) % cluster_->size();

  EXPECT_EQ(client.run_turn(times(4, check))[check.key], 4);

  // Resharded behind the gateway's back: the key's state moves with its slot.
  cluster_->begin_move(slot, to, {state});
  cluster_->finish_move(slot, to);
  const auto before = script_calls();
  // The old owner answers MOVED; the call goes on to the new one: 10 - 4 left, exactly.
  const auto moved_before = errors_of(cluster_->node(from), "MOVED");
  EXPECT_EQ(client.run_turn(times(10, check))[check.key], 6);
  EXPECT_EQ(errors_of(cluster_->node(from), "MOVED"), moved_before + 1);
  const auto after = script_calls();
  EXPECT_GT(after[to], before[to]);
  EXPECT_EQ(cluster_->node(to).command({"EXISTS", state}), "1");

  // The slot map was asked again: later calls go straight to the new owner.
  client.io.restart();
  client.io.run_for(300ms);
  const auto settled = script_calls();
  EXPECT_EQ(client.run_turn(times(2, check))[check.key], 0);
  const auto last = script_calls();
  EXPECT_EQ(last[from], settled[from]);
  EXPECT_GT(last[to], settled[to]);

  // As it was, for the other tests.
  cluster_->begin_move(slot, from, {state});
  cluster_->finish_move(slot, from);
}

TEST_F(redis_cluster_test, an_ask_during_a_migration_is_followed) {
  cluster_client client{{endpoint_of(2)}};
  const limit_check check{"rl:{cluster:ask:1}", make(algorithm::fixed_window, 10, 3600 * s)};
  const auto state = gw::store::redis::state_key(check.key, algorithm::fixed_window);
  const auto slot = cluster_->slot_of(state);
  const auto from = cluster_->owner(slot);
  const auto to = (from + 2) % cluster_->size();

  EXPECT_EQ(client.run_turn(times(3, check))[check.key], 3);

  // Half-way through a migration: the key is already on the target, the slot still the
  // source's. The source answers ASK; the call goes to the target with ASKING first.
  cluster_->begin_move(slot, to, {state});
  const auto before = script_calls();
  const auto ask_before = errors_of(cluster_->node(from), "ASK");
  EXPECT_EQ(client.run_turn(times(10, check))[check.key], 7);
  EXPECT_EQ(errors_of(cluster_->node(from), "ASK"), ask_before + 1);
  const auto after = script_calls();
  EXPECT_GT(after[to], before[to]);
  // (Mid-migration, a plain EXISTS is redirected: count the keys each node holds instead.)
  const auto slot_text = std::to_string(slot);
  EXPECT_EQ(cluster_->node(to).command({"CLUSTER", "COUNTKEYSINSLOT", slot_text}), "1");
  EXPECT_EQ(cluster_->node(from).command({"CLUSTER", "COUNTKEYSINSLOT", slot_text}), "0");

  cluster_->finish_move(slot, to);
  EXPECT_EQ(client.run_turn(times(1, check))[check.key], 0);  // the same count, now for good
  cluster_->begin_move(slot, from, {state});
  cluster_->finish_move(slot, from);
}

TEST_F(redis_cluster_test, a_call_whose_keys_are_split_by_a_migration_is_split_too) {
  cluster_client client{{endpoint_of(1)}};
  // Two keys of one slot (one hash tag): one call carries both.
  const limit_check a{"rl:{cluster:tryagain}:a", make(algorithm::gcra, 10, 3600 * s)};
  const limit_check b{"rl:{cluster:tryagain}:b", make(algorithm::gcra, 10, 3600 * s)};
  const auto state_a = gw::store::redis::state_key(a.key, algorithm::gcra);
  const auto state_b = gw::store::redis::state_key(b.key, algorithm::gcra);
  const auto slot = cluster_->slot_of(state_a);
  ASSERT_EQ(cluster_->slot_of(state_b), slot);
  const auto from = cluster_->owner(slot);
  const auto to = (from + 1) % cluster_->size();

  auto both = [&](std::size_t n) {
    auto requests = times(n, a);
    const auto more = times(n, b);
    requests.insert(requests.end(), more.begin(), more.end());
    return client.run_turn(requests);
  };
  auto first = both(2);
  EXPECT_EQ(first[a.key], 2);
  EXPECT_EQ(first[b.key], 2);

  // a's state has moved, b's not yet: the source answers the call with TRYAGAIN. Key by key,
  // b is served where it is and a follows the ASK to the target.
  cluster_->begin_move(slot, to, {state_a});
  const auto tryagain_before = errors_of(cluster_->node(from), "TRYAGAIN");
  auto during = both(3);
  EXPECT_EQ(during[a.key], 3);
  EXPECT_EQ(during[b.key], 3);
  EXPECT_GT(errors_of(cluster_->node(from), "TRYAGAIN"), tryagain_before);  // it did happen

  cluster_->begin_move(slot, to, {state_b});
  cluster_->finish_move(slot, to);
  auto after = both(10);  // 5 used of each: exactly 5 more
  EXPECT_EQ(after[a.key], 5);
  EXPECT_EQ(after[b.key], 5);

  cluster_->begin_move(slot, from, {state_a, state_b});
  cluster_->finish_move(slot, from);
}

// Keys of four slots that one master owns: a turn's checks of them go in one call (the
// cross-slot script). When one of the slots is half-way through a migration, that call fails
// before it wrote anything ("non local key"), and the keys go on slot by slot: the moving one
// follows the ASK, and every count stays exact.
TEST_F(redis_cluster_test, keys_of_several_slots_of_one_master_go_in_one_call) {
  cluster_client client{{endpoint_of(0)}};
  std::vector<limit_check> checks;
  std::vector<std::string> states;
  std::set<std::uint16_t> slots;
  for (int i = 0; checks.size() < 4; ++i) {
    limit_check c{"rl:{cross:" + std::to_string(i) + "}", make(algorithm::gcra, 5, 3600 * s)};
    const auto state = gw::store::redis::state_key(c.key, algorithm::gcra);
    const auto slot = cluster_->slot_of(state);
    if (cluster_->owner(slot) != 0 || !slots.insert(slot).second) continue;
    checks.push_back(c);
    states.push_back(state);
  }
  auto each = [&](std::size_t n) {
    std::vector<std::vector<limit_check>> requests;
    for (std::size_t round = 0; round < n; ++round)
      for (const auto& c : checks) requests.push_back({c});
    return client.run_turn(requests);
  };
  const auto before = script_calls();
  for (const auto& [key, n] : each(1)) EXPECT_EQ(n, 1) << key;
  EXPECT_EQ(script_calls()[0], before[0] + 1);  // four slots, one call

  const auto moving = cluster_->slot_of(states[1]);
  const auto to = 1;
  cluster_->begin_move(moving, to, {states[1]});
  const auto ask_before = errors_of(cluster_->node(0), "ASK");
  for (const auto& [key, n] : each(3)) EXPECT_EQ(n, 3) << key;
  EXPECT_GT(errors_of(cluster_->node(0), "ASK"), ask_before);  // the moving slot on its own
  // Nothing was started afresh on the source for the key that had left it.
  const auto slot_text = std::to_string(moving);
  EXPECT_EQ(cluster_->node(0).command({"CLUSTER", "COUNTKEYSINSLOT", slot_text}), "0");
  EXPECT_EQ(cluster_->node(to).command({"CLUSTER", "COUNTKEYSINSLOT", slot_text}), "1");

  cluster_->finish_move(moving, to);
  for (const auto& [key, n] : each(10)) EXPECT_EQ(n, 1) << key;  // 5 in all, exactly
  cluster_->begin_move(moving, 0, {states[1]});
  cluster_->finish_move(moving, 0);
}

// Leases over keys of several slots of one master: one cross-slot call takes them (the lease
// script of one node, brought by NOSCRIPT on its first use), and what is given back returns to
// each key's own slot.
TEST_F(redis_cluster_test, leases_of_several_slots_of_one_master_are_taken_and_given_back) {
  cluster_client client{{endpoint_of(0)}};
  std::vector<limit_check> checks;
  std::vector<std::string> states;
  std::set<std::uint16_t> slots;
  for (int i = 0; checks.size() < 3; ++i) {
    limit_check c{"rl:{cross-lease:" + std::to_string(i) + "}",
                  make(algorithm::fixed_window, 100, 3600 * s)};
    c.lease_want = 8;
    c.lease_max = 1'000'000;
    const auto state = gw::store::redis::state_key(c.key, algorithm::fixed_window);
    const auto slot = cluster_->slot_of(state);
    if (cluster_->owner(slot) != 0 || !slots.insert(slot).second) continue;
    checks.push_back(c);
    states.push_back(state);
  }
  const auto noscript_before = errors_of(cluster_->node(0), "NOSCRIPT");
  const auto crossslot_before = errors_of(cluster_->node(0), "CROSSSLOT");
  std::vector<std::optional<check_result>> results(checks.size());
  std::size_t done = 0;
  client.io.restart();
  for (std::size_t i = 0; i < checks.size(); ++i)
    asio::co_spawn(client.io, cluster_check(client.store, {checks[i]}),
                   [&, i](std::exception_ptr e, check_result r) {
                     if (!e) results[i] = std::move(r);
                     if (++done == checks.size()) client.io.stop();
                   });
  client.io.run_for(10s);
  for (std::size_t i = 0; i < checks.size(); ++i) {
    ASSERT_TRUE(results[i] && results[i]->ok()) << checks[i].key;
    ASSERT_EQ(results[i]->leases.size(), 1u);
    EXPECT_EQ(results[i]->leases[0].granted, 8u) << checks[i].key;  // 8 asked, 25 a quarter
    EXPECT_EQ(cluster_->node(0).command({"HGET", states[i], "count"}), "8");
  }
  // One call for the three slots: the cross-slot lease script, brought once by NOSCRIPT.
  EXPECT_EQ(errors_of(cluster_->node(0), "NOSCRIPT"), noscript_before + 1);
  EXPECT_EQ(errors_of(cluster_->node(0), "CROSSSLOT"), crossslot_before);
  for (std::size_t i = 0; i < checks.size(); ++i)
    client.store.release(checks[i].key, checks[i].policy, 5, results[i]->leases[0].mark);
  for (std::size_t i = 0; i < checks.size(); ++i)
    EXPECT_TRUE(eventually_in(client, [&] {
      return cluster_->node(0).command({"HGET", states[i], "count"}) == "3";
    })) << checks[i].key;
}

// Nodes that name themselves by host name (cluster-preferred-endpoint-type hostname): the slot
// map and the redirections give "localhost", which the store resolves (the first map's names at
// once, later ones in the background) and routes by as before.
TEST(redis_cluster_hostnames, a_slot_map_of_host_names_is_resolved_and_routed) {
  redis_cluster cluster{{.hostname = "localhost"}};
  ASSERT_NE(cluster.node(1).command({"CLUSTER", "SLOTS"}).find("localhost"), std::string::npos);
  cluster_client client{{{"127.0.0.1", cluster.node(1).port()}}};
  std::vector<std::vector<limit_check>> requests;
  for (int round = 0; round < 4; ++round)
    for (int id = 0; id < 30; ++id)
      requests.push_back({{"rl:{named:per_ip:10.0.1." + std::to_string(id) + "}",
                           make(algorithm::fixed_window, 3, 3600 * s)}});
  const auto admitted = client.run_turn(requests);
  ASSERT_EQ(admitted.size(), 30u);
  for (const auto& [key, n] : admitted) EXPECT_EQ(n, 3) << key;
  std::vector<int> keys_per_node(cluster.size(), 0);
  for (const auto& [key, n] : admitted)
    ++keys_per_node[cluster.owner(
        cluster.slot_of(gw::store::redis::state_key(key, algorithm::fixed_window)))];
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    EXPECT_GT(keys_per_node[i], 0) << "node " << i;
    EXPECT_GT(gw::test::command_calls(cluster.node(i), "evalsha"), 0) << "node " << i;
  }
}

}  // namespace
