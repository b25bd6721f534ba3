// The five algorithms of limit/algorithms.cpp as Redis Lua scripts, one per algorithm, so that a
// check and its update are one atomic step in Redis and agree case for case with the memory store.
#pragma once

#include "limit/algorithms.hpp"

#include <string>
#include <string_view>

namespace gw::store::redis {

// Calling convention, the same for all five:
//   EVALSHA <sha1> 1 <state_key> <requests> <window_us> <burst> <cost> [<now_us>]
// now_us is for tests only; without it the script reads Redis TIME (sec * 1000000 + usec), so
// that gateways with skewed clocks agree. The reply is an array of four integers, the fields of
// limit::decision in order: admitted (1/0), remaining, reset_us, retry_after_us.
// Every key a script writes carries a TTL (ceil(reset_us / 1000) + 1 ms): when it expires the
// state is the same as cold. A rejected request writes nothing.
struct script {
  std::string_view name;    // the algorithm's name, as limit::to_string
  std::string_view source;  // Lua, for SCRIPT LOAD and the EVAL fallback on NOSCRIPT
  std::string sha1;         // lower-case hex SHA-1 of source, for EVALSHA
};

const script& script_for(limit::algorithm a);

// The key the script keeps its state under: the base key (SPEC 10, `prefix{route:limit:id}`)
// plus ":" and the algorithm's name, outside the braces so the hash tag, and so the Cluster slot,
// stays that of the base key.
std::string state_key(std::string_view base_key, limit::algorithm a);

}  // namespace gw::store::redis
