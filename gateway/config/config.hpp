// The gateway's configuration as plain, immutable structs with the defaults of SPEC section 3.
// config/loader.hpp fills them from YAML; nothing here knows about YAML.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gw::config {

using duration = std::chrono::milliseconds;
using namespace std::chrono_literals;

// host:port as written; host is an IP literal or a name, resolved when a snapshot is built.
struct endpoint {
  std::string host;
  std::uint16_t port = 0;

  std::string to_string() const;  // "1.2.3.4:80", "[::1]:80"
  bool operator==(const endpoint&) const = default;
};

struct server_settings {
  endpoint listen{"0.0.0.0", 8080};
  unsigned workers = 0;  // 0 = one per CPU core
  std::size_t max_connections = 10000;
  duration header_timeout = 10s;
  duration idle_timeout = 60s;
  std::size_t max_header_bytes = 16 * 1024;
  std::uint64_t max_body_bytes = 10 * 1024 * 1024;  // 0 = no limit
  duration drain_timeout = 15s;
  std::string log_level = "info";
  bool access_log = true;
};

struct admin_settings {
  endpoint listen{"127.0.0.1", 9901};
};

struct upstream {
  std::string name;
  std::vector<endpoint> servers;
  duration connect_timeout = 2s;
  duration timeout = 30s;  // until the response head arrives; also between two body reads
  std::size_t max_idle_per_server = 64;
  unsigned eject_after_failures = 3;
  duration eject_for = 10s;
};

struct route_match {
  // At most one of the three path matchers; none matches every path.
  std::optional<std::string> path;
  std::optional<std::string> path_prefix;
  std::optional<std::string> path_regex;
  std::vector<std::string> methods;  // upper case; empty = any
  std::optional<std::string> host;   // lower case, without port
};

struct route {
  std::string name;
  route_match match;
  std::string upstream;
  bool strip_prefix = false;  // only with match.path_prefix
};

struct gateway_config {
  server_settings server;
  admin_settings admin;
  std::vector<upstream> upstreams;  // in file order; names are unique
  std::vector<route> routes;        // first match wins; names are unique

  const upstream* find_upstream(std::string_view name) const;
};

}  // namespace gw::config
