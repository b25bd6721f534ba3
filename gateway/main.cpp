// Command line (SPEC section 2): arguments -> config -> app::run.
#include "app/app.hpp"
#include "config/loader.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <set>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view usage =
    "usage: gateway [--config FILE] [--log-level trace|debug|info|warn|error] [--no-metrics]\n"
    "       gateway --check-config FILE\n"
    "       gateway --version\n";

int check_config(const std::string& path) {
  const auto result = gw::config::load_file(path);
  for (const auto& p : result.problems)
    std::cout << gw::config::format_problem(path, p) << '\n';
  if (!result.ok()) return 1;
  std::cout << "ok\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gw::app::options opts{"conf/gateway.yaml", std::nullopt};
  const std::set<std::string_view> levels{"trace", "debug", "info", "warn", "error"};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--version") {
      std::cout << "gateway " << GATEWAY_VERSION << '\n';
      return 0;
    } else if (arg == "--check-config" && has_value) {
      return check_config(argv[i + 1]);
    } else if (arg == "--config" && has_value) {
      opts.config_path = argv[++i];
    } else if (arg == "--log-level" && has_value && levels.contains(argv[i + 1])) {
      opts.log_level = argv[++i];
    } else if (arg == "--no-metrics") {
      opts.metrics = false;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    } else {
      std::cerr << "gateway: bad argument: " << arg << '\n' << usage;
      return 2;
    }
  }

  // Operational logs go to stderr; stdout carries only the access log.
  auto logger = spdlog::stderr_color_mt("gateway");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);

  auto result = gw::config::load_file(opts.config_path);
  for (const auto& p : result.problems) {
    const auto line = gw::config::format_problem(opts.config_path, p);
    if (p.warning)
      spdlog::warn("{}", line);
    else
      spdlog::error("{}", line);
  }
  if (!result.ok()) return 1;
  gw::app::apply_log_level(opts.log_level.value_or(result.config->server.log_level));
  return gw::app::run(opts, result.config);
}
