// The process: worker threads, the control thread (signals, reload, drain, admin), wiring.
#pragma once

#include "config/config.hpp"

#include <memory>
#include <optional>
#include <string>

namespace gw::app {

struct options {
  std::string config_path;
  std::optional<std::string> log_level;  // --log-level, wins over server.log_level
  bool metrics = true;                    // --no-metrics: record nothing (to measure the cost)
};

// Runs the gateway until SIGTERM/SIGINT have drained it. Returns the process exit code.
int run(const options& opts, std::shared_ptr<const config::gateway_config> cfg);

// Sets spdlog's level from a config name ("trace" ... "error").
void apply_log_level(const std::string& level);

}  // namespace gw::app
