// Shared by the end-to-end tests: waiting for a condition, and reading a running gateway's admin
// port (/readyz, /metrics).
#pragma once

#include "support/http_client.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace gw::test {

// Polls `condition` every 10 ms until it holds; false after `timeout`.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::steady_clock::duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

inline int readyz(std::uint16_t admin_port) {
  return request(admin_port, "GET", "/readyz", {}, {}, std::chrono::seconds(2)).status;
}

// The sum of the samples of `name` (exactly: not its _sum or _bucket) on /metrics whose labels
// include every one of `labels` (each as written: key="value").
inline double metric(std::uint16_t admin_port, const std::string& name,
                     const std::vector<std::string>& labels = {}) {
  const auto text = request(admin_port, "GET", "/metrics", {}, {}, std::chrono::seconds(2)).body;
  double total = 0;
  std::size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    if (!line.starts_with(name) || line.size() <= name.size()) continue;
    if (line[name.size()] != '{' && line[name.size()] != ' ') continue;
    if (!std::all_of(labels.begin(), labels.end(),
                     [&](const auto& l) { return line.find(l) != std::string::npos; }))
      continue;
    total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

}  // namespace gw::test
