// Starting and reshaping a three-master Redis Cluster (see redis_cluster.hpp).
#include "support/redis_cluster.hpp"

#include "support/gateway_process.hpp"

#include <chrono>
#include <stdexcept>
#include <thread>

namespace gw::test {

using namespace std::chrono_literals;

namespace {

constexpr std::size_t masters = 3;
constexpr int all_slots = 16384;

}  // namespace

redis_cluster::redis_cluster() : slot_owner_(all_slots, 0) {
  for (std::size_t i = 0; i < masters; ++i) {
    const auto bus = free_port();
    redis_options options;
    options.extra_args = {"--cluster-enabled",    "yes",
                          "--cluster-config-file", "nodes.conf",
                          "--cluster-node-timeout", "2000",
                          "--cluster-port",         std::to_string(bus)};
    nodes_.push_back(std::make_unique<redis_server>(options));
    bus_ports_.push_back(bus);
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

void redis_cluster::flush_all() {
  for (auto& n : nodes_) n->command({"FLUSHALL"});
}

}  // namespace gw::test
