// Redis Cluster routing facts: which of the 16384 slots a key hashes to (CRC16 of its hash tag),
// and the slot map a node gives in its CLUSTER SLOTS reply.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace gw::store::redis {

inline constexpr std::uint16_t cluster_slots = 16384;

// The slot of `key` as Redis computes it: CRC16 (XMODEM) of the hash tag, the text between the
// first '{' and the first '}' after it when that text is not empty, else of the whole key.
std::uint16_t key_slot(std::string_view key);

struct slot_range {
  std::uint16_t first = 0, last = 0;  // inclusive
  std::string host;
  std::uint16_t port = 0;
};

// The master of each slot range from a CLUSTER SLOTS reply; replicas are not used. An endpoint
// given empty or NIL is the answering node's own: `asked_host` stands in. "?" (a node without a
// known hostname) is kept as the host: no way to reach it, the caller skips it. nullopt when the
// reply is not a slot map.
std::optional<std::vector<slot_range>> parse_cluster_slots(const redisReply* reply,
                                                           std::string_view asked_host);

// "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381": where a slot's keys are now. The host
// is empty when the node sent only a port (the host is then its own).
struct redirect {
  bool moved = false;  // MOVED: the slot belongs there now; ASK: this one command only
  std::uint16_t slot = 0;
  std::string host;
  std::uint16_t port = 0;
};
std::optional<redirect> parse_redirect(std::string_view error);

}  // namespace gw::store::redis
