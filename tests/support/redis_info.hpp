// Per-command counts from a test redis-server (INFO commandstats): how tests tell an EVALSHA from
// its EVAL fallback, or see that no command reached Redis at all.
#pragma once

#include "support/redis_server.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace gw::test {

// Calls of `command` (lower case: "evalsha", "eval") since the server started; 0 before the
// first. Costs one INFO, which counts in total_commands_processed.
inline std::int64_t command_calls(redis_server& server, std::string_view command) {
  const std::string stats = server.command({"INFO", "commandstats"});
  const std::string needle = "cmdstat_" + std::string{command} + ":calls=";
  const auto at = stats.find(needle);
  if (at == std::string::npos) return 0;
  return std::stoll(stats.substr(at + needle.size()));
}

}  // namespace gw::test
