// The five algorithms of algorithms/algorithms.cpp as Redis Lua scripts, one per algorithm, so
// that a check and its update are one atomic step in Redis and agree case for case with the
// memory store. One call carries many checks: a worker sends the checks of all requests of one
// event-loop turn as one EVALSHA per algorithm, so Redis runs one script, not one per request.
#pragma once

#include "algorithms/algorithms.hpp"
#include "store/store.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace gw::store::redis {

// Calling convention, the same for all five: any number n >= 1 of checks in one call,
//   EVALSHA <sha1> <n> <key_1> .. <key_n> <now_us> <m> <policy_1> .. <policy_m> <p_1> .. <p_n>
// where a policy is four arguments, <requests> <window_us> <burst> <cost>, and p_i is the
// (1-based) number of key i's policy: the checks of one call mostly share a few policies.
// now_us is for tests only; empty, the script reads Redis TIME (sec * 1000000 + usec) once, so
// that gateways with skewed clocks agree. The checks run in order, each seeing the ones before it
// as if it were a call of its own (a key's state is read once and written once per call). The
// reply is one bulk string of 32n bytes: for each key in order, the fields of algorithms::decision as
// 8-byte big-endian signed integers: admitted (1/0), remaining, reset_us, retry_after_us.
// Every key a script writes carries a TTL (ceil(reset_us / 1000) + 1 ms): when it expires the
// state is the same as cold. A rejected request writes nothing.
struct script {
  std::string_view name;    // the algorithm's name, as algorithms::to_string
  std::string_view source;  // Lua, for SCRIPT LOAD and the EVAL fallback on NOSCRIPT
  std::string sha1;         // lower-case hex SHA-1 of source, for EVALSHA
};

const script& script_for(algorithms::algorithm a);

// Leases (SPEC 12), for every algorithm: the lease script takes the calling convention above
// plus <want_i> <max_us_i> per key and answers seven integers per key; the release script gives
// unused units back (KEYS: state keys; ARGV: <now> as the checks', then <unused_i> <mark_i>
// <unit_i>, the unit being release_unit()). Null for an algorithm that has none.
const script* lease_script_for(algorithms::algorithm a);
const script* release_script_for(algorithms::algorithm a);
// The release script's third argument for a policy: gcra's emission interval, else the window.
algorithms::micros release_unit(const algorithms::policy& p);

inline constexpr std::size_t lease_reply_bytes_per_check = 56;

// The check and lease scripts for a Redis Cluster call that carries the keys of several slots
// of one node: flagged allow-cross-slot-keys, one key declared (the cluster routes the call by
// it) and the others first in ARGV: EVALSHA sha 1 key_1 <n - 1> key_2 .. key_n, then the
// arguments as above. A key of a slot the node does not serve fails the whole call ("non local
// key") before anything is written.
const script& node_script_for(algorithms::algorithm a);
const script* node_lease_script_for(algorithms::algorithm a);

// Check i's decision and lease from a lease script's reply; false as read_decision.
bool read_lease(std::string_view reply, std::size_t i, algorithms::decision& d,
                lease_grant& lease);

inline constexpr std::size_t reply_bytes_per_check = 32;

// Check i's decision from a script's reply; false when the reply is too short or its fields make
// no decision (admitted neither 0 nor 1, a negative number).
bool read_decision(std::string_view reply, std::size_t i, algorithms::decision& d);

// The key the script keeps its state under: the base key (SPEC 10, `prefix{route:limit:id}`)
// plus ":" and the algorithm's name, outside the braces so the hash tag, and so the Cluster slot,
// stays that of the base key.
std::string state_key(std::string_view base_key, algorithms::algorithm a);

}  // namespace gw::store::redis
