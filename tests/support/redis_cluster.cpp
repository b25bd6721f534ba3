// Starting and reshaping a three-master Redis Cluster (see redis_cluster.hpp).
#include "support/redis_cluster.hpp"

#include "support/gateway_process.hpp"

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace gw::test {

using namespace std::chrono_literals;

namespace {

constexpr std::size_t masters = 3;
constexpr int all_slots = 16384;

}  // namespace

redis_cluster::redis_cluster(cluster_options options) : slot_owner_(all_slots, 0) {
  for (std::size_t i = 0; i < masters; ++i) {
    // The bus port is picked here, so a taken one needs a fresh pick (redis_server retries only
    // its own port).
    for (int attempt = 1;; ++attempt) {
      const auto bus = free_port();
      redis_options node;
      node.extra_args = {"--cluster-enabled",        "yes",
                         "--cluster-config-file",     "nodes.conf",
                         "--cluster-node-timeout",    std::to_string(options.node_timeout_ms),
                         "--cluster-require-full-coverage",
                         options.require_full_coverage ? "yes" : "no",
                         // An emptied master stays a master (tests give it slots back).
                         "--cluster-allow-replica-migration", "no",
                         "--cluster-port",            std::to_string(bus)};
      if (!options.hostname.empty()) {
        node.extra_args.insert(node.extra_args.end(),
                               {"--cluster-announce-hostname", options.hostname,
                                "--cluster-preferred-endpoint-type", "hostname"});
      }
      try {
        nodes_.push_back(std::make_unique<redis_server>(node));
        bus_ports_.push_back(bus);
        break;
      } catch (const std::exception&) {
        if (attempt == 3) throw;
      }
    }
    ids_.push_back(nodes_.back()->command({"CLUSTER", "MYID"}));
  }
  for (std::size_t i = 0; i < masters; ++i) {
    const int first = static_cast<int>(i) * all_slots / static_cast<int>(masters);
    const int last = static_cast<int>(i + 1) * all_slots / static_cast<int>(masters) - 1;
    nodes_[i]->command(
        {"CLUSTER", "ADDSLOTSRANGE", std::to_string(first), std::to_string(last)});
    for (int s = first; s <= last; ++s) slot_owner_[static_cast<std::size_t>(s)] = i;
  }
  for (std::size_t i = 1; i < masters; ++i)
    nodes_[0]->command({"CLUSTER", "MEET", "127.0.0.1", std::to_string(nodes_[i]->port()),
                        std::to_string(bus_ports_[i])});
  wait_until_ok();
}

void redis_cluster::wait_until_ok() {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  for (;;) {
    bool ok = true;
    for (auto& n : nodes_) {
      const auto info = n->command({"CLUSTER", "INFO"});
      if (info.find("cluster_state:ok") == std::string::npos ||
          info.find("cluster_known_nodes:" + std::to_string(masters)) == std::string::npos) {
        ok = false;
        break;
      }
    }
    if (ok) return;
    if (std::chrono::steady_clock::now() >= deadline)
      throw std::runtime_error("the test Redis Cluster did not come up within 20 s; node 0:\n" +
                               nodes_[0]->command({"CLUSTER", "NODES"}));
    std::this_thread::sleep_for(50ms);
  }
}

std::size_t redis_cluster::owner(std::uint16_t slot) const { return slot_owner_.at(slot); }

std::uint16_t redis_cluster::slot_of(const std::string& key) {
  return static_cast<std::uint16_t>(std::stoi(nodes_[0]->command({"CLUSTER", "KEYSLOT", key})));
}

void redis_cluster::begin_move(std::uint16_t slot, std::size_t to,
                               const std::vector<std::string>& keys) {
  const auto from = owner(slot);
  const auto s = std::to_string(slot);
  nodes_[to]->command({"CLUSTER", "SETSLOT", s, "IMPORTING", ids_[from]});
  nodes_[from]->command({"CLUSTER", "SETSLOT", s, "MIGRATING", ids_[to]});
  if (keys.empty()) return;
  std::vector<std::string> migrate{"MIGRATE", "127.0.0.1", std::to_string(nodes_[to]->port()),
                                   "", "0", "5000", "KEYS"};
  migrate.insert(migrate.end(), keys.begin(), keys.end());
  nodes_[from]->command(migrate);
}

void redis_cluster::finish_move(std::uint16_t slot, std::size_t to) {
  const auto s = std::to_string(slot);
  // The target first, then the source, then the rest: the order redis-cli uses.
  nodes_[to]->command({"CLUSTER", "SETSLOT", s, "NODE", ids_[to]});
  nodes_[owner(slot)]->command({"CLUSTER", "SETSLOT", s, "NODE", ids_[to]});
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (i != to && i != owner(slot)) nodes_[i]->command({"CLUSTER", "SETSLOT", s, "NODE", ids_[to]});
  slot_owner_[slot] = to;
}

void redis_cluster::reassign(std::uint16_t first, std::uint16_t last, std::size_t to) {
  // The new owner's claim must win when the nodes compare notes: give it the newest config
  // epoch first (what SETSLOT NODE does by itself on a node that was importing).
  nodes_[to]->command({"CLUSTER", "BUMPEPOCH"});
  for (int slot = first; slot <= last; ++slot) {
    const auto s = std::to_string(slot);
    const auto from = owner(static_cast<std::uint16_t>(slot));
    if (from == to) continue;
    nodes_[to]->command({"CLUSTER", "SETSLOT", s, "NODE", ids_[to]});
    nodes_[from]->command({"CLUSTER", "SETSLOT", s, "NODE", ids_[to]});
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (i != to && i != from) nodes_[i]->command({"CLUSTER", "SETSLOT", s, "NODE", ids_[to]});
    slot_owner_[static_cast<std::size_t>(slot)] = to;
  }
}

std::pair<std::uint16_t, std::uint16_t> redis_cluster::initial_range(std::size_t i) const {
  const int first = static_cast<int>(i) * all_slots / static_cast<int>(masters);
  const int last = static_cast<int>(i + 1) * all_slots / static_cast<int>(masters) - 1;
  return {static_cast<std::uint16_t>(first), static_cast<std::uint16_t>(last)};
}

bool redis_cluster::agrees(std::size_t i) {
  std::istringstream lines{nodes_[i]->command({"CLUSTER", "NODES"})};
  std::vector<std::size_t> seen(all_slots, masters);  // masters = nobody
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields{line};
    std::string id, address, flags, master, ping, pong, epoch, link, range;
    fields >> id >> address >> flags >> master >> ping >> pong >> epoch >> link;
    std::size_t owner = masters;
    for (std::size_t n = 0; n < ids_.size(); ++n)
      if (ids_[n] == id) owner = n;
    while (fields >> range) {
      if (range.starts_with("[")) continue;  // a migration in progress: not an owner change
      const auto dash = range.find('-');
      const int first = std::stoi(range.substr(0, dash));
      const int last = dash == std::string::npos ? first : std::stoi(range.substr(dash + 1));
      for (int slot = first; slot <= last; ++slot) seen[static_cast<std::size_t>(slot)] = owner;
    }
  }
  return seen == slot_owner_;
}

void redis_cluster::settle() {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    bool all = true;
    for (std::size_t i = 0; i < nodes_.size() && all; ++i) {
      all = agrees(i) &&
            nodes_[i]->command({"CLUSTER", "INFO"}).find("cluster_state:ok") != std::string::npos;
    }
    if (all) return;
    if (std::chrono::steady_clock::now() >= deadline)
      throw std::runtime_error("the test Redis Cluster did not settle within 10 s; node 0:\n" +
                               nodes_[0]->command({"CLUSTER", "NODES"}));
    std::this_thread::sleep_for(20ms);
  }
}

void redis_cluster::flush_all() {
  for (auto& n : nodes_) n->command({"FLUSHALL"});
}

}  // namespace gw::test
