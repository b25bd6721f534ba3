// A real three-master Redis Cluster for integration tests: three redis-servers in cluster mode on
// loopback ports picked at run time (their cluster bus ports too), slots split in three equal
// ranges, started and joined with CLUSTER ADDSLOTSRANGE and CLUSTER MEET, and waited for until
// every node says cluster_state:ok. Slots can be moved between nodes the way redis-cli --cluster
// reshard does it, to test MOVED and ASK.
#pragma once

#include "support/redis_server.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace gw::test {

struct cluster_options {
  int node_timeout_ms = 2000;  // cluster-node-timeout: how soon a silent master counts as failed
  bool require_full_coverage = true;  // no: the other masters keep serving while one is gone
  std::string hostname;  // given: the nodes announce it, and name themselves by it to clients
};

class redis_cluster {
 public:
  explicit redis_cluster(cluster_options options = {});
  redis_cluster(const redis_cluster&) = delete;
  redis_cluster& operator=(const redis_cluster&) = delete;

  std::size_t size() const { return nodes_.size(); }
  redis_server& node(std::size_t i) { return *nodes_.at(i); }
  const std::string& id(std::size_t i) const { return ids_.at(i); }
  // The node serving `slot` now, by the harness' own reckoning (initial split plus moves).
  std::size_t owner(std::uint16_t slot) const;
  std::uint16_t slot_of(const std::string& key);  // CLUSTER KEYSLOT

  // Starts moving `slot` to node `to`: the target imports, the source migrates, and the keys
  // given are moved (MIGRATE). Until finish_move, the source answers ASK for moved keys.
  void begin_move(std::uint16_t slot, std::size_t to, const std::vector<std::string>& keys);
  // Makes `to` the owner on every node; the old owner answers MOVED from then on.
  void finish_move(std::uint16_t slot, std::size_t to);

  // Gives the empty slots [first, last] to node `to` at once (CLUSTER SETSLOT ... NODE on every
  // node): the way a node is emptied before it leaves.
  void reassign(std::uint16_t first, std::uint16_t last, std::size_t to);
  // The first and last slot node i was given at the start.
  std::pair<std::uint16_t, std::uint16_t> initial_range(std::size_t i) const;

  // FLUSHALL on every node.
  void flush_all();

  // Waits (up to 10 s) until every node is ok and sees every slot where the harness put it: the
  // nodes spread slot changes among themselves by gossip, a moment after the commands.
  void settle();

 private:
  void wait_until_ok();
  bool agrees(std::size_t i);  // node i's CLUSTER NODES matches slot_owner_

  std::vector<std::unique_ptr<redis_server>> nodes_;
  std::vector<std::uint16_t> bus_ports_;
  std::vector<std::string> ids_;
  std::vector<std::size_t> slot_owner_;
};

}  // namespace gw::test
