// Reads and validates the YAML configuration. Every problem is reported with its position;
// a file with any error yields no config.
#pragma once

#include "config/config.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gw::config {

struct problem {
  int line = 0;    // 1-based; 0 when the problem has no position (file unreadable)
  int column = 0;  // 1-based
  std::string message;
  bool warning = false;  // warnings do not make the file invalid
  std::string file;      // "" for the gateway file itself; else an RLS domain file it names
};

struct load_result {
  std::shared_ptr<const gateway_config> config;  // null when any error was found
  std::vector<problem> problems;                 // errors and warnings, in file order

  bool ok() const { return config != nullptr; }
};

load_result load_file(const std::string& path);
load_result load_string(std::string_view yaml);

// "FILE:LINE:COL: message" ("FILE:LINE:COL: warning: message" for warnings); FILE is `file`
// unless the problem is in a file of its own.
std::string format_problem(std::string_view file, const problem& p);

}  // namespace gw::config
